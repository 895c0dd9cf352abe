#!/usr/bin/env bash
# Benchmark of the logged-in task board, as the Django comparison measures it:
# wrk -t2 -c16 against GET / with a signed-in session, the load spread over
# some number of tenants.
#
#   bench/board.sh [TENANTS_PRESENT] ["SPREAD …"] [DURATION] [TASKS]
#
# Starts a fresh managed cluster and `tenantry serve` (release build) in a
# temporary directory (with TENANTRY_MANAGED_CITUS=true a managed Citus
# coordinator and worker; CITUS_NODES=1 takes the worker out first, so the
# coordinator holds every tenant), seeds TENANTS_PRESENT tenants (default 10) and gives
# the largest SPREAD of them a board of TASKS tasks (default 20) and a
# signed-in session, in bulk in the database. Then, for each SPREAD, runs
# wrk with every request going to a tenant drawn at random from that many.
# Prints req/s, latency percentiles, CPU per request (the server, and
# PostgreSQL's backends) and resident memory. ROLLOUT=1 then times one new
# migration (a column and an index) over every tenant (examples/rollout_bench).
#
# PAIR_WITH=BINARY compares two builds in one sitting instead: a second
# `tenantry serve` (BINARY) runs beside this build's on the same database
# (the next port), and each SPREAD runs PAIRS (6) pairs of DURATION runs,
# this build's then the other's, with the ratio pair by pair (other / this):
# the machine's speed drifts between minutes, not between the two halves of
# a pair.
set -euo pipefail
cd "$(dirname "$0")/.."
present=${1:-10}
spreads=${2:-1}
widest=$(echo $spreads | tr ' ' '\n' | sort -n | tail -1)
duration=${3:-20s}
tasks=${4:-20}
# Each spread is first run unmeasured for this long: what is measured is a
# server that has been up for a while, whose connections know their tenants.
warmup=${WARMUP:-10s}
port=18080
work=$(mktemp -d /tmp/tenantry-bench-XXXXXX)
chmod 755 "$work"
cleanup() {
    for p in ${server:-} ${second:-}; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
cargo build --release --quiet --bin tenantry --example seed_tenants --example seed_boards \
    --example rollout_bench --example board_sql

export TENANTRY_DATA_DIR="$work/data" TENANTRY_BIND="127.0.0.1:$port" RUST_LOG=warn
./target/release/tenantry serve > "$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
node="$work/data"
[ "${TENANTRY_MANAGED_CITUS:-}" = true ] && node="$work/data/citus/coordinator"
db_url="postgres://tenantry:$(cat "$node/pg-password")@127.0.0.1:$(cat "$node/port")/tenantry"
export DATABASE_URL="$db_url"
if [ "${TENANTRY_MANAGED_CITUS:-}" = true ] && [ "${CITUS_NODES:-2}" = 1 ]; then
    worker_port=$(cat "$work/data/citus/worker/port")
    psql -q "$db_url" -c "SELECT citus_remove_node('127.0.0.1', $worker_port)"
fi

./target/release/examples/seed_tenants "$present" "${SEED_JOBS:-2}" bench-password
./target/release/examples/seed_boards "$widest" "$tasks" 2 > "$work/sessions"
psql -q "$db_url" -c "VACUUM ANALYZE" 2>/dev/null || true
# Write the seeding out now, not while the first spread is measured.
psql -q "$db_url" -c "CHECKPOINT" 2>/dev/null || true
sleep 1.5 # let the registry pick the tenants up

lua="$work/spread.lua"
{
    echo "local sessions = {"
    awk '{ printf "  { host = \"%s\", cookie = \"tenantry_session=%s\" },\n", $1, $2 }' "$work/sessions"
    cat <<'LUA'
}
local spread = tonumber(os.getenv("SPREAD"))
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
request = function()
  local s = sessions[math.random(spread)]
  return wrk.format("GET", "/", { ["Host"] = s.host, ["Cookie"] = s.cookie })
end
LUA
} > "$lua"

first=($(head -1 "$work/sessions"))
board() { curl -s -H "Host: ${first[0]}" -H "Cookie: tenantry_session=${first[1]}" "$@" "http://127.0.0.1:$port/"; }
check=$(board -o /dev/null -w '%{http_code}')
[ "$check" = 200 ] || { echo "the board answered $check, not 200" >&2; exit 1; }
echo "page size: $(board | wc -c) bytes"

# CPU time (ms) of the server process and of all PostgreSQL processes.
cpu_ms() {
    local tick; tick=$(getconf CLK_TCK)
    local pids="$*" total=0
    for p in $pids; do
        [ -r /proc/$p/stat ] || continue
        total=$(( total + $(awk '{ print $14 + $15 }' /proc/$p/stat) ))
    done
    echo $(( total * 1000 / tick ))
}
pg_pids() { pgrep -u postgres -f "postgres: tenantry" | tr '\n' ' '; }
# PostgreSQL's CPU: its live backends, plus what the postmaster has reaped
# from the ones that exited (a tenant connection replaced mid-run).
pg_cpu_ms() {
    local tick; tick=$(getconf CLK_TCK)
    local postmaster; postmaster=$(head -1 "$node/pgdata/postmaster.pid")
    local reaped; reaped=$(awk '{ print $14 + $15 + $16 + $17 }' /proc/$postmaster/stat)
    echo $(( $(cpu_ms $(pg_pids)) + reaped * 1000 / tick ))
}

if [ -n "${PAIR_WITH:-}" ]; then
    other=$((port + 1))
    DATABASE_URL="$db_url" TENANTRY_BIND="127.0.0.1:$other" "$PAIR_WITH" serve > "$work/serve-2.log" 2>&1 &
    second=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$other/healthz" >/dev/null && break; sleep 0.2; done
    # req/s and p99 of one run against port $2.
    run() {
        SPREAD=$1 wrk -t2 -c16 -d"$duration" --latency -s "$lua" "http://127.0.0.1:$2/" |
            awk '/Requests\/sec/ { r = $2 } $1 == "99%" { p = $2 } /Non-2xx/ { p = p " NON-2XX" } END { print r, p }'
    }
    for s in $spreads; do
        for p in $port $other; do
            SPREAD=$s wrk -t2 -c16 -d"$warmup" -s "$lua" "http://127.0.0.1:$p/" > /dev/null
        done
        echo "== pairs: spread over $s, wrk -t2 -c16 -d$duration: this build, then $PAIR_WITH"
        for _ in $(seq "${PAIRS:-6}"); do
            a=($(run "$s" $port)); b=($(run "$s" $other))
            awk -v a="${a[0]}" -v b="${b[0]}" -v pa="${a[*]:1}" -v pb="${b[*]:1}" \
                'BEGIN { printf "  %7.0f req/s (p99 %s)   %7.0f req/s (p99 %s)   ratio %.2f\n", a, pa, b, pb, b / a }'
        done
    done
    exit 0
fi

for s in $spreads; do
    SPREAD=$s wrk -t2 -c16 -d"$warmup" -s "$lua" "http://127.0.0.1:$port/" > /dev/null
    echo "== board: $present tenants present, requests spread over $s, wrk -t2 -c16 -d$duration"
    app0=$(cpu_ms $server); pg0=$(pg_cpu_ms)
    out=$(SPREAD=$s wrk -t2 -c16 -d"$duration" --latency -s "$lua" "http://127.0.0.1:$port/")
    app1=$(cpu_ms $server); pg1=$(pg_cpu_ms)
    echo "$out" | grep -E "Requests/sec|Latency|50%|99%|requests in|Non-2xx"
    n=$(echo "$out" | awk '/requests in/ { print $1 }')
    awk -v a=$((app1 - app0)) -v p=$((pg1 - pg0)) -v n="$n" \
        'BEGIN { printf "  CPU per request: server %.3f ms, PostgreSQL %.3f ms\n", a / n, p / n }'
done
if [ -n "${ROLLOUT:-}" ]; then
    echo "== one new migration (a column and an index) over $present tenants, 4 jobs"
    ./target/release/examples/rollout_bench 4 1 split | tail -2
fi
echo "server RSS: $(( $(ps -o rss= -p "$server") / 1024 )) MiB"
# A backend's own memory (its caches and plans), without the shared buffers it maps.
echo "PostgreSQL backends, private memory (MiB): $(for p in $(pg_pids); do
    awk '/^Anonymous:/ { printf "%d ", $2 / 1024 }' /proc/$p/smaps_rollup 2>/dev/null; done)"

# The limit of the page's own SQL: pgbench sending the statement the board
# sends, with the same spread, clients and cores. The board is one statement
# that names its tenant's schema, so each tenant's text is its own: pgbench
# runs one script per tenant (the same text and parameter), which it can do
# for up to 128 tenants. For every spread it also runs the board's SQL in a
# transaction that pins the schema first (how the page sent it before), one
# text for all tenants: its `prepared` mode is then one statement per
# connection re-planned whenever the schema changes, and `extended` parses
# every time.
if [ -n "${PGBENCH:-}" ]; then
    for s in $spreads; do
        [ "$s" -le 128 ] || continue
        scripts=()
        while read -r k schema sid; do
            ./target/release/examples/board_sql "$schema" "sid_$k" > "$work/one-$k.sql"
            scripts+=(-f "$work/one-$k.sql" -D "sid_$k=$sid")
        done < <(head -"$s" "$work/sessions" |
            awk '{ split($1, h, "."); s = h[1]; gsub("-", "_", s); print NR - 1, "t_" s, $2 }')
        for mode in prepared extended; do
            echo "== pgbench -M $mode, the board's statement as the page sends it, spread over $s, -c16 -j2"
            pgbench -n -M $mode -c16 -j2 -T"${duration%s}" "${scripts[@]}" "$db_url" \
                2>&1 | grep -E "^tps|^latency average"
        done
    done
    psql -q "$db_url" -c "CREATE TABLE public.bench_sessions (n int PRIMARY KEY, schema text, sid text)"
    awk '{ split($1, h, "."); s = h[1]; gsub("-", "_", s); printf "%d\tt_%s\t%s\n", NR - 1, s, $2 }' \
        "$work/sessions" | psql -q "$db_url" -c "COPY public.bench_sessions FROM STDIN"
    {
        echo '\set n random(0, :spread - 1)'
        echo 'BEGIN;'
        # The app sends the pin with BEGIN; pgbench cannot send an identifier
        # as a parameter, so one statement looks the session up and pins.
        echo "SELECT sid, set_config('search_path', schema, true) AS pinned,"
        echo "       set_config('plan_cache_mode', 'force_generic_plan', true) AS generic"
        echo '  FROM public.bench_sessions WHERE n = :n \gset'
        ./target/release/examples/board_sql
        echo 'COMMIT;'
    } > "$work/board.sql"
    for s in $spreads; do
        for mode in prepared extended; do
            echo "== pgbench -M $mode, the board's SQL in a pinned transaction, spread over $s, -c16 -j2"
            pgbench -n -M $mode -c16 -j2 -T"${duration%s}" -D spread=$s \
                -f "$work/board.sql" "$db_url" \
                2>&1 | grep -E "^tps|^latency average"
        done
    done
fi

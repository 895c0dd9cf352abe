#!/usr/bin/env bash
# Benchmark of the logged-in task board, as the Django comparison measures it:
# wrk -t2 -c16 against GET / with a signed-in session, the load spread over
# some number of tenants.
#
#   bench/board.sh [TENANTS_PRESENT] ["SPREAD …"] [DURATION] [TASKS]
#
# Starts a fresh managed cluster and `tenantry serve` (release build) in a
# temporary directory, seeds TENANTS_PRESENT tenants (default 10) and gives
# the largest SPREAD of them a board of TASKS tasks (default 20) and a
# signed-in session, in bulk in the database. Then, for each SPREAD, runs
# wrk with every request going to a tenant drawn at random from that many.
# Prints req/s, latency percentiles, CPU per request (the server, and
# PostgreSQL's backends) and resident memory.
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
cleanup() { [ -n "${server:-}" ] && kill "$server" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
cargo build --release --quiet --bin tenantry --example seed_tenants --example seed_boards

export TENANTRY_DATA_DIR="$work/data" TENANTRY_BIND="127.0.0.1:$port" RUST_LOG=warn
./target/release/tenantry serve > "$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
db_url="postgres://tenantry:$(cat "$work/data/pg-password")@127.0.0.1:$(cat "$work/data/port")/tenantry"
export DATABASE_URL="$db_url"

./target/release/examples/seed_tenants "$present" 2 bench-password
./target/release/examples/seed_boards "$widest" "$tasks" 2 > "$work/sessions"
psql -q "$db_url" -c "VACUUM ANALYZE" 2>/dev/null || true
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

for s in $spreads; do
    SPREAD=$s wrk -t2 -c16 -d"$warmup" -s "$lua" "http://127.0.0.1:$port/" > /dev/null
    echo "== board: $present tenants present, requests spread over $s, wrk -t2 -c16 -d$duration"
    app0=$(cpu_ms $server); pg0=$(cpu_ms $(pg_pids))
    out=$(SPREAD=$s wrk -t2 -c16 -d"$duration" --latency -s "$lua" "http://127.0.0.1:$port/")
    app1=$(cpu_ms $server); pg1=$(cpu_ms $(pg_pids))
    echo "$out" | grep -E "Requests/sec|Latency|50%|99%|requests in|Non-2xx"
    n=$(echo "$out" | awk '/requests in/ { print $1 }')
    awk -v a=$((app1 - app0)) -v p=$((pg1 - pg0)) -v n="$n" \
        'BEGIN { printf "  CPU per request: server %.3f ms, PostgreSQL %.3f ms\n", a / n, p / n }'
done
echo "server RSS: $(( $(ps -o rss= -p "$server") / 1024 )) MiB"
# A backend's own memory (its caches and plans), without the shared buffers it maps.
echo "PostgreSQL backends, private memory (MiB): $(for p in $(pg_pids); do
    awk '/^Anonymous:/ { printf "%d ", $2 / 1024 }' /proc/$p/smaps_rollup; done)"

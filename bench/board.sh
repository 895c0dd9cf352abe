#!/usr/bin/env bash
# Benchmark of the logged-in task board, as the Django comparison measures it:
# wrk -t2 -c16 against GET / with a signed-in session.
#
#   bench/board.sh [TENANTS_PRESENT] ["ACTIVE_TENANTS …"] [DURATION]
#
# Starts a fresh managed cluster and `tenantry serve` (release build) in a
# temporary directory, seeds TENANTS_PRESENT tenants (default 10), signs in to
# the largest ACTIVE_TENANTS count of them (default "1") with 20 tasks each,
# then, for each ACTIVE_TENANTS count, runs wrk spreading its requests over
# that many tenants. Prints req/s, latency percentiles and the server's
# resident memory.
set -euo pipefail
cd "$(dirname "$0")/.."
present=${1:-10}
actives=${2:-1}
active=$(echo $actives | tr ' ' '\n' | sort -n | tail -1)
duration=${3:-20s}
port=18080
work=$(mktemp -d /tmp/tenantry-bench-XXXXXX)
chmod 755 "$work"
cleanup() { [ -n "${server:-}" ] && kill "$server" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
cargo build --release --quiet --bin tenantry --example seed_tenants

export TENANTRY_DATA_DIR="$work/data" TENANTRY_BIND="127.0.0.1:$port" RUST_LOG=warn
./target/release/tenantry serve > "$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
db_url="postgres://tenantry:$(cat "$work/data/pg-password")@127.0.0.1:$(cat "$work/data/port")/tenantry"

DATABASE_URL="$db_url" ./target/release/examples/seed_tenants "$present" 2 bench-password
sleep 1 # let the registry pick the tenants up

# Sign in to each active tenant and give it a board of 20 tasks.
lua="$work/spread.lua"
echo "local sessions = {" > "$lua"
for i in $(seq 0 $((active - 1))); do
    slug=$(printf 'seed-%05d' "$i")
    host="$slug.localhost"
    jar="$work/jar-$i"
    page() { curl -s -b "$jar" -c "$jar" -H "Host: $host" "$@"; }
    token() { grep -o 'name="csrf_token" value="[^"]*"' | head -1 | sed 's/.*value="//; s/"$//'; }
    tok=$(page "http://127.0.0.1:$port/login" | token)
    page -o /dev/null --data-urlencode "csrf_token=$tok" --data-urlencode "email=admin@$slug.test" \
        --data-urlencode "password=bench-password" "http://127.0.0.1:$port/login"
    tok=$(page "http://127.0.0.1:$port/" | token)
    for n in $(seq 20); do
        status=$(echo "todo doing done" | cut -d' ' -f$(( (n % 3) + 1 )))
        page -o /dev/null --data-urlencode "csrf_token=$tok" --data-urlencode "title=Task $n of $slug" \
            --data-urlencode "description=Something to do" --data-urlencode "status=$status" \
            "http://127.0.0.1:$port/tasks"
    done
    cookie=$(awk '$6 == "tenantry_session" { print $7 }' "$jar")
    [ -n "$cookie" ] || { echo "login failed for $slug" >&2; exit 1; }
    echo "  { host = \"$host\", cookie = \"tenantry_session=$cookie\" }," >> "$lua"
done
cat >> "$lua" <<'LUA'
}
local n = 0
local active = tonumber(os.getenv("ACTIVE"))
request = function()
  n = n + 1
  local s = sessions[(n % active) + 1]
  return wrk.format("GET", "/", { ["Host"] = s.host, ["Cookie"] = s.cookie })
end
LUA

check=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: seed-00000.localhost" \
    -H "Cookie: $(grep -o 'tenantry_session=[^"]*' "$lua" | head -1)" "http://127.0.0.1:$port/")
[ "$check" = 200 ] || { echo "the board answered $check, not 200" >&2; exit 1; }
echo "page size: $(curl -s -H "Host: seed-00000.localhost" \
    -H "Cookie: $(grep -o 'tenantry_session=[^"]*' "$lua" | head -1)" "http://127.0.0.1:$port/" | wc -c) bytes"

for a in $actives; do
    echo "== board: $present tenants present, requests spread over $a, wrk -t2 -c16 -d$duration"
    ACTIVE=$a wrk -t2 -c16 -d"$duration" --latency -s "$lua" "http://127.0.0.1:$port/" \
        | grep -E "Requests/sec|Latency|50%|99%|requests in|Non-2xx"
done
echo "server RSS: $(( $(ps -o rss= -p "$server") / 1024 )) MiB"

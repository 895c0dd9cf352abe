#!/usr/bin/env bash
# Times the CLI as an operator runs it: a no-op `tenantry migrate` over
# TENANTS tenants (default 1,000), and `tenantry tenant create` (whole process,
# including the argon2 hash; the command also prints the provisioning
# transaction's own time).
#
#   bench/cli.sh [TENANTS]
set -euo pipefail
cd "$(dirname "$0")/.."
tenants=${1:-1000}
port=18081
work=$(mktemp -d /tmp/tenantry-bench-XXXXXX)
chmod 755 "$work"
cleanup() { [ -n "${server:-}" ] && kill "$server" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
command -v hyperfine >/dev/null || { echo "hyperfine is needed: apt-get install hyperfine" >&2; exit 1; }
cargo build --release --quiet --bin tenantry --example seed_tenants

# `serve` keeps the managed cluster running; the commands attach to it.
export TENANTRY_DATA_DIR="$work/data" TENANTRY_BIND="127.0.0.1:$port" RUST_LOG=warn
./target/release/tenantry serve > "$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
export DATABASE_URL="postgres://tenantry:$(cat "$work/data/pg-password")@127.0.0.1:$(cat "$work/data/port")/tenantry"
./target/release/examples/seed_tenants "$tenants" 2

bin=$PWD/target/release/tenantry
echo "== tenantry migrate (no-op) over $tenants tenants"
hyperfine --warmup 1 --runs 10 "$bin migrate" | grep -E "Time|Range"
"$bin" migrate | tail -1
echo "== tenantry migrate --all (visits every ledger) over $tenants tenants"
hyperfine --warmup 1 --runs 5 "$bin migrate --all" | grep -E "Time|Range"

echo "== tenantry tenant create (whole process) with $tenants tenants present"
hyperfine --runs 10 \
    --prepare "$bin tenant delete bench-new --yes >/dev/null 2>&1 || true" \
    "echo 'bench-password' | $bin tenant create bench-new --name 'Bench New' --admin-email a@bench.test --password-stdin" \
    | grep -E "Time|Range"
"$bin" tenant delete bench-new --yes >/dev/null
for i in 1 2 3 4 5; do
    echo 'bench-password' | "$bin" tenant create "bench-new-$i" --name "Bench $i" --admin-email a@bench.test --password-stdin
done

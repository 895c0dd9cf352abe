#!/usr/bin/env bash
# Creating a tenant through the control panel, end to end, beside one
# password hash: a super-admin's POST /tenants (the admin's password hashed,
# the tenant provisioned, the redirect) timed by curl, against one argon2id
# hash timed in process (examples/hash_bench) and the same super-admin's
# POST /login (one verification, as costly as a hash, plus a sign-in's writes).
#
#   bench/panel.sh [TENANTS_PRESENT] [RUNS]
#
# Starts a fresh managed cluster and `tenantry serve` (release build), seeds
# TENANTS_PRESENT tenants (default 10,000) in bulk, then RUNS times (default
# 20) signs in and creates a tenant, pausing between creations so that the
# spare-schema job has a spare ready (SPARES=0 measures the path without).
set -euo pipefail
cd "$(dirname "$0")/.."
present=${1:-10000}
runs=${2:-20}
port=18082
work=$(mktemp -d /tmp/tenantry-bench-XXXXXX)
chmod 755 "$work"
cleanup() { [ -n "${server:-}" ] && kill "$server" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
cargo build --release --quiet --bin tenantry --example seed_tenants --example hash_bench

export TENANTRY_DATA_DIR="$work/data" TENANTRY_BIND="127.0.0.1:$port" RUST_LOG=warn
export TENANTRY_SPARE_SCHEMAS=${SPARES:-4}
./target/release/tenantry serve > "$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
export DATABASE_URL="postgres://tenantry:$(cat "$work/data/pg-password")@127.0.0.1:$(cat "$work/data/port")/tenantry"
./target/release/examples/seed_tenants "$present" 2 bench-password
echo 'bench-password' | ./target/release/tenantry superadmin create --email ops@bench.test --password-stdin >/dev/null
sleep 3 # the spare-schema job's first run

jar="$work/cookies"
url="http://127.0.0.1:$port"
token() { curl -s -b "$jar" -c "$jar" -H "Host: localhost" "$url$1" | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' | head -1; }
login_ms=() create_ms=()
for i in $(seq "$runs"); do
    rm -f "$jar"
    t=$(token /login)
    login=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' -b "$jar" -c "$jar" -H "Host: localhost" \
        --data-urlencode "csrf_token=$t" --data-urlencode "email=ops@bench.test" \
        --data-urlencode "password=bench-password" "$url/login")
    t=$(token /tenants/new)
    create=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' -b "$jar" -c "$jar" -H "Host: localhost" \
        --data-urlencode "csrf_token=$t" --data-urlencode "display_name=Panel $i" \
        --data-urlencode "slug=panel-$i" --data-urlencode "admin_email=admin@panel-$i.test" \
        --data-urlencode "admin_password=a-long-password" --data-urlencode "primary_color=#4f46e5" \
        --data-urlencode "accent_color=#0ea5e9" "$url/tenants")
    [ "${login%% *}" = 303 ] && [ "${create%% *}" = 303 ] \
        || { echo "sign-in answered ${login%% *}, create ${create%% *} (run $i)" >&2; exit 1; }
    login_ms+=("$(awk -v s="${login#* }" 'BEGIN { printf "%.2f", s * 1000 }')")
    create_ms+=("$(awk -v s="${create#* }" 'BEGIN { printf "%.2f", s * 1000 }')")
    sleep 2.5
done
spares=$(psql -Atq "$DATABASE_URL" -c "SELECT count(*) FROM public.tenant_spares")
stats() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1; s += $1 } END {
    printf "mean %.2f ms, p50 %.2f ms, min %.2f ms, max %.2f ms\n", s / NR, a[int((NR + 1) / 2)], a[1], a[NR] }'; }
echo "== $runs runs, $present tenants present, TENANTRY_SPARE_SCHEMAS=$TENANTRY_SPARE_SCHEMAS ($spares spares left)"
echo "POST /login   (one argon2id verification): $(stats "${login_ms[@]}")"
echo "POST /tenants (hash + provisioning):        $(stats "${create_ms[@]}")"
paste <(printf '%s\n' "${create_ms[@]}") <(printf '%s\n' "${login_ms[@]}") \
    | awk '{ d[NR] = $1 - $2; s += d[NR] } END { n = asort(d); printf "POST /tenants minus POST /login, per run: mean %.2f ms, p50 %.2f ms, max %.2f ms\n", s / NR, d[int((n + 1) / 2)], d[n] }'
# The yardstick, in the same sitting (the machine's speed varies by the hour).
hash=$(./target/release/examples/hash_bench "$runs")
echo "$hash"
printf '%s\n' "${create_ms[@]}" | sort -n | awk -v h="$hash" '{ a[NR] = $1 } END {
    match(h, /p50 [0-9.]+/); p = substr(h, RSTART + 4, RLENGTH - 4)
    printf "POST /tenants p50 minus one hash p50: %.2f ms\n", a[int((NR + 1) / 2)] - p }'

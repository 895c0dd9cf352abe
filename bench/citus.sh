#!/usr/bin/env bash
# Tenantry on one node and on two: the same workload on a plain managed
# PostgreSQL, on a managed Citus cluster whose coordinator holds every tenant,
# and on a coordinator plus one worker sharing the tenants (docs/CITUS.md).
#
#   bench/citus.sh [TENANTS] [DURATION]
#
# For each: TENANTS tenants (default 1,000) created one at a time in process
# (the mean create time), the board with its load spread over all of them
# (wrk -t2 -c16), and one new migration over every tenant (4 jobs). Both
# nodes run on this machine's cores: read the figures as Citus's overhead,
# not as a speed-up.
set -euo pipefail
cd "$(dirname "$0")/.."
tenants=${1:-1000}
duration=${2:-20s}
summary() {
    grep -E "^created|^== board|Requests/sec|99%|^migration" | sed 's/^/  /'
}
for setup in postgres citus-1 citus-2; do
    echo "== $setup"
    case $setup in
        postgres) env=() ;;
        citus-1) env=(TENANTRY_MANAGED_CITUS=true CITUS_NODES=1) ;;
        citus-2) env=(TENANTRY_MANAGED_CITUS=true CITUS_NODES=2) ;;
    esac
    env "${env[@]}" SEED_JOBS=1 ROLLOUT=1 bench/board.sh "$tenants" "$tenants" "$duration" 20 | summary
done

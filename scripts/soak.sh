#!/usr/bin/env bash
# The reliability soak (T38c) in release mode: mixed calls, a plugin
# logging to stderr and a new plugin every 10 s, with host and plugin RSS,
# fds and threads sampled every second. Prints first/last/max of each
# sample column. Usage: scripts/soak.sh [seconds] (default 1800).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seconds=${1:-1800}
csv=${GOPLUG_SOAK_CSV:-$root/target/soak.csv}

GOPLUG_SOAK_SECS=$seconds GOPLUG_SOAK_CSV=$csv \
    cargo test --release --locked -p goplug-test --test reliability -- \
    --ignored --exact load::t38c_soak_keeps_rss_fds_and_threads_flat --nocapture

echo "soak of ${seconds}s: samples in $csv"
awk -F, '
    NR == 1 { columns = NF; for (i = 1; i <= NF; i++) name[i] = $i; next }
    NR == 2 { for (i = 1; i <= NF; i++) { first[i] = $i; max[i] = $i } }
    { for (i = 1; i <= NF; i++) { last[i] = $i; if ($i + 0 > max[i] + 0) max[i] = $i } }
    END {
        printf "%-16s %12s %12s %12s\n", "column", "first", "last", "max"
        for (i = 1; i <= columns; i++)
            printf "%-16s %12s %12s %12s\n", name[i], first[i], last[i], max[i]
    }' "$csv"

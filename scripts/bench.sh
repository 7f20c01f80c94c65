#!/usr/bin/env bash
# Benchmarks, not part of the test run: criterion figures for the in-process
# costs, then the side-by-side start-up run against go-plugin v1.8.0, which
# writes BENCHMARKS.md. Usage: scripts/bench.sh [iterations]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
iterations=${1:-30}

cargo build --release --locked -p goplug-example-kv -p goplug-bench
go_bin="$root/target/interop-go-release"
mkdir -p "$go_bin"
(cd interop/go && go build -o "$go_bin/" ./cmd/...)

criterion=$(mktemp)
trap 'rm -f "$criterion"' EXIT
cargo bench --locked -p goplug-bench --bench core -- --warm-up-time 1 --measurement-time 3 | tee "$criterion"
"$root/target/release/startup" --rust-plugin "$root/target/release/kv-rust-grpc" \
    --go-bin-dir "$go_bin" --iterations "$iterations" --out "$root/BENCHMARKS.md"
{
    echo
    echo "In-process costs (criterion, \`cargo bench -p goplug-bench\`; low, estimate, high):"
    echo
    grep -E '^[a-z0-9_/]+ +time:' "$criterion" | sed -E 's/^([^ ]+) +time: +(.*)$/- \`\1\`: \2/'
} >> "$root/BENCHMARKS.md"

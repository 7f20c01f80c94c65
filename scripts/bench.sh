#!/usr/bin/env bash
# Benchmarks, not part of the test run: criterion figures for the in-process
# costs, the side-by-side start-up run against go-plugin v1.8.0, and the
# matrix of every host/plugin pairing under every workload (bench/src/bin/
# matrix.rs). Writes BENCHMARKS.md.
# Usage: scripts/bench.sh [--quick] [start-up iterations]
# --quick: few iterations everywhere, to check that it all runs (a minute or two).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
quick=()
if [[ ${1:-} == --quick ]]; then
    quick=(--quick)
    shift
fi
iterations=${1:-$([[ ${#quick[@]} -gt 0 ]] && echo 5 || echo 30)}

command -v valgrind >/dev/null || {
    echo "scripts/bench.sh: valgrind is required (Debian: apt-get install valgrind)" >&2
    exit 1
}
cargo build --release --locked -p goplug-example-kv -p goplug-bench
go_bin="$root/target/interop-go-release"
mkdir -p "$go_bin"
(cd interop/go && go build -o "$go_bin/" ./cmd/...)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# The Rust plugins as README recommends building them for the smallest and
# fastest start: the `plugin` profile, statically linked (as Go binaries are),
# with the code they run packed together (scripts/plugin-order.sh). A copy
# without the packing is kept for one comparison.
plugin_target=x86_64-unknown-linux-gnu
export RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static"
cargo build --profile plugin --locked --target "$plugin_target" \
    -p goplug-example-kv --bin kv-rust-grpc -p goplug-bench --bin bench-plugin
rust_plugins="$root/target/$plugin_target/plugin"
mkdir -p "$scratch/unordered"
cp "$rust_plugins/bench-plugin" "$scratch/unordered/"
release="$root/target/release"
# The profile run: every protocol and mode the matrix uses, a few calls each.
scripts/plugin-order.sh --package goplug-bench --bin bench-plugin -- sh -c '
    for protocol in grpc netrpc; do
        for tls in "" -automtls; do
            "$0/bench-host" -cmd "BENCH_PROTOCOL=$protocol exec $GOPLUG_ORDER_PLUGIN" \
                -protocol $protocol -workload unary -iterations 200 $tls >/dev/null || exit 1
        done
        "$0/bench-host" -cmd "BENCH_PROTOCOL=$protocol exec $GOPLUG_ORDER_PLUGIN" \
            -protocol $protocol -workload echo -size 65536 -iterations 20 >/dev/null || exit 1
    done
    "$0/bench-host" -cmd "exec $GOPLUG_ORDER_PLUGIN" -workload broker -iterations 100 >/dev/null' \
    "$release"
# The KV plugin: go-plugin's example session, then the start-up run itself
# (both hosts, plain and AutoMTLS) for a couple of launches.
scripts/plugin-order.sh --package goplug-example-kv --bin kv-rust-grpc -- sh -c '
    cd "$1" && KV_PROTO=grpc KV_PLUGIN="$GOPLUG_ORDER_PLUGIN" "$0/kv" put hello world >/dev/null &&
    KV_PROTO=grpc KV_PLUGIN="$GOPLUG_ORDER_PLUGIN" "$0/kv" get hello >/dev/null &&
    "$0/startup" --rust-plugin "$GOPLUG_ORDER_PLUGIN" --go-bin-dir "$2" --iterations 2 >/dev/null' \
    "$release" "$scratch" "$go_bin"
unset RUSTFLAGS
if [[ ${#quick[@]} -gt 0 ]]; then
    bench_args=(--warm-up-time 0.2 --measurement-time 0.5)
else
    bench_args=(--warm-up-time 1 --measurement-time 3)
fi
cargo bench --locked -p goplug-bench --bench core -- "${bench_args[@]}" | tee "$scratch/criterion"
"$root/target/release/startup" --rust-plugin "$rust_plugins/kv-rust-grpc" \
    --go-bin-dir "$go_bin" --iterations "$iterations" \
    --out "$scratch/startup.md" --summary "$scratch/startup.json"
# Idle RSS of the bench plugin with and without the code packing, and of the
# Go bench plugin, each the median of 3 launches by the Rust host.
idle_rss() {
    for _ in 1 2 3; do
        "$release/bench-host" -cmd "exec '$1'" -workload unary -iterations 2000 |
            python3 -c 'import json, sys; print(int(json.load(sys.stdin)["plugin_rss_kib"]))'
    done | sort -n | sed -n 2p
}
rss_go=$(idle_rss "$go_bin/bench-plugin")
rss_packed=$(idle_rss "$rust_plugins/bench-plugin")
rss_unpacked=$(idle_rss "$scratch/unordered/bench-plugin")
status=0
"$root/target/release/matrix" "${quick[@]}" --go-bin-dir "$go_bin" \
    --rust-bin-dir "$root/target/release" --rust-plugin-dir "$rust_plugins" \
    --startup "$scratch/startup.json" \
    --out "$scratch/matrix.md" || status=$?
{
    cat "$scratch/startup.md"
    cat "$scratch/matrix.md"
    echo
    echo "Code packing (\`scripts/plugin-order.sh\`), idle RSS of the gRPC bench plugin after one"
    echo "call, median of 3 launches by the Rust host, this run: Go plugin ${rss_go} KiB; Rust"
    echo "plugin packed ${rss_packed} KiB ($(python3 -c "print(f'{$rss_packed/$rss_go:.2f}')")×), without the packing ${rss_unpacked} KiB"
    echo "($(python3 -c "print(f'{$rss_unpacked/$rss_go:.2f}')")×)."
    cat <<'NOTES'

### What bounds the figures

- Builds: hosts are `cargo build --release`; the Rust plugins are built as README
  recommends for plugins (`--profile plugin`: fat LTO, one codegen unit,
  panic=abort, stripped; statically linked, non-PIE), Go's with plain `go build`
  (static too). The plugin profile alone takes a unary call from 66.7k to 50.7k
  instructions in the plugin (callgrind).
- Per-call cost: callgrind counts per tiny unary call, Rust host: 53.9k
  instructions (75.6k with tonic's `transport::Channel`, before goplug drove h2
  itself); Rust plugin: 50.7k, about 40 % of it in hyper's per-stream task and body
  pipe and tonic's server stack, the rest h2 (HPACK, frame codec, stream store)
  and the socket. Writes are coalesced on both sides, so a request is one `writev`
  and many concurrent calls share writes; what remains per round trip is one
  `epoll_wait` wake-up per side plus tokio's EPOLLOUT wake-ups, against a blocking
  write and read per side for the raw socket floor.
- Runtime flavour: `goplug::plugin::run` builds tokio's multi-thread runtime unless
  the plugin asks for `ServeConfig::runtime(Runtime::CurrentThread)`; `bench-plugin`
  runs on a current-thread runtime (`BENCH_RUNTIME=multi` selects the multi-thread
  one). A host runs on the application's runtime. On 2 cores the current-thread
  runtime gives the lowest latency and, with coalesced writes, the most calls/s.
- Cold start: the goplug host forks the plugin (`fork`, then `exec`) because it sets
  the parent-death signal in the child (`pre_exec`), which `posix_spawn` cannot do;
  Go's `os/exec` uses `clone(CLONE_VFORK)`. A fork copies the host's page tables,
  so its cost grows with the host's memory. Both hosts start the plugin through
  `sh -c 'exec …'`, as go-plugin's examples do.
- 1,000 in-flight callers over gRPC: goplug's plugin server allows 128 concurrent
  HTTP/2 streams and 256 requests in flight per connection (its abuse guards);
  grpc-go allows unbounded streams, so a Go plugin admits every caller at once while
  the rest queue on the host.
- 1 MiB echo: the Rust side decodes `bytes` fields as `bytes::Bytes` (prost's `bytes`
  option, no copy out of the receive buffer); what remains is h2 framing copies and
  glibc malloc growing and trimming its heap for every MiB message.
- Idle RSS: almost all of a goplug plugin's resident memory is its binary's code
  pages, mapped 64 KiB at a time around each page the plugin touches (the kernel's
  fault-around); anonymous memory is about 0.2 MiB against Go's 1.7 MiB
  (`/proc/<pid>/smaps_rollup`). `opt-level = "s"` brings the bench plugin to 3.2 MiB
  at 31 % more instructions per call.
NOTES
    echo
    echo "In-process costs (criterion, \`cargo bench -p goplug-bench\`; low, estimate, high):"
    echo
    grep -E '^[a-z0-9_/]+ +time:' "$scratch/criterion" | sed -E 's/^([^ ]+) +time: +(.*)$/- \`\1\`: \2/'
} > "$root/BENCHMARKS.md"
echo "wrote $root/BENCHMARKS.md"
exit "$status"

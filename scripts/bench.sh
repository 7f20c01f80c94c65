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
# The per-call cost of goplug's `otel` feature: built without it, then with it.
cargo bench --locked -p goplug-bench --bench trace -- "${bench_args[@]}" | tee -a "$scratch/criterion"
cargo bench --locked -p goplug-bench --features otel --bench trace -- "${bench_args[@]}" |
    tee -a "$scratch/criterion"
# The supervisor: its cost per call, and crash (SIGKILL) to the next
# successful call for a Rust and a Go KV plugin.
cargo bench --locked -p goplug-bench --bench supervisor -- "${bench_args[@]}" |
    tee -a "$scratch/criterion"
kills=$([[ ${#quick[@]} -gt 0 ]] && echo 5 || echo 20)
for plugin in "$release/kv-rust-grpc" "$go_bin/kv-plugin-go-grpc"; do
    "$release/recovery" --plugin "$plugin" --kills "$kills" | tee -a "$scratch/recovery"
done
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

- The machine: a 2-core VM whose speed drifts with its neighbours. Within one
  run, the Go/Go column is the reference for every ratio, each cell is the median
  of 5 host runs taken in turns with the other pairings of its row, and the
  socket floor is the median of three measurements; between runs, single figures
  (the floor, 1 MiB echo) moved by up to 2× in this session.
- Builds: hosts are `cargo build --release`; the Rust plugins are built as README
  recommends for plugins (`--profile plugin`: fat LTO, one codegen unit,
  panic=abort, stripped; statically linked, non-PIE), then with the code they run
  packed at the front of the binary (`scripts/plugin-order.sh`, profiled on the
  bench host's workloads under callgrind); Go's with plain `go build` (static
  too). The plugin profile alone takes a unary call from 66.7k to 50.7k
  instructions in the plugin (callgrind).
- Idle RSS: what stays resident of a plugin is mostly its binary's code, which the
  kernel maps in blocks (fault-around, large page-cache folios) around each page
  the plugin runs: unpacked, nearly every 64 KiB block of the Rust code and all of
  static glibc's ended up resident (3.1 MiB of code, 0.6 MiB of read-only data,
  0.3 MiB anonymous). Packed, the 2,000 functions that run sit together and the
  resident code fell to 1.3 MiB (`/proc/<pid>/pagemap`); the rest of the binary
  is never mapped. The line above these notes gives both RSS figures from this run.
- Per-call cost: callgrind counts per tiny unary call, Rust host: 53.9k
  instructions; Rust plugin: 50.7k, about 40 % of it in hyper's per-stream task and
  body pipe and tonic's server stack, the rest h2 (HPACK, frame codec, stream
  store) and the socket. Writes are coalesced on both sides, so a request is one
  `writev` and many concurrent calls share writes.
- 64 callers over gRPC: with current-thread runtimes on both sides, host and
  plugin each used about half a core (`/proc/<pid>/stat` over 3 s): the host's
  64 requests leave in one write, the plugin answers all 64 in one write, and each
  side waits while the other works. This lockstep, not per-call cost, bounds the
  figure. Tried and measured slower in this session: multi-thread runtimes on
  either or both sides (55.7k, 55.1k, 51.8k calls/s against 60.6k; cross-thread
  wake-ups cost more than the overlap gains), and reading in small chunks so that
  each side answers part of a batch early (42-45k against 51k).
- Runtime flavour: `goplug::plugin::run` builds tokio's multi-thread runtime unless
  the plugin asks for `ServeConfig::runtime(Runtime::CurrentThread)`; `bench-plugin`
  runs on a current-thread runtime (`BENCH_RUNTIME=multi` selects the multi-thread
  one). A host runs on the application's runtime.
- Start-up and the N-plugin rows: the goplug host forks the plugin (`fork`, then
  `exec`) because it sets the parent-death signal in the child (`pre_exec`), which
  `posix_spawn` cannot do; Go's `os/exec` uses `clone(CLONE_VFORK)`. After a fork
  every page the host writes takes a copy-on-write fault: 24 % of the host's CPU
  when it started 100 plugins at once (perf). It also makes a private socket
  directory per plugin (so that nothing is left behind after a kill), and on
  ext4 `mkdir` plus the removal were 17 % of the host's CPU. Both are why a Rust
  host starting 100 Go plugins at once is slower than a Go host, while one
  start on its own is not. Both hosts start the plugin through `sh -c 'exec …'`,
  as go-plugin's examples do.
- 1,000 in-flight callers over gRPC: goplug's servers allow 1,024 concurrent
  HTTP/2 streams per connection (grpc-go: unbounded); at 128 a Go host queued on
  its stream quota.
- 1 MiB echo: goplug's servers announce 2 MiB stream / 5 MiB connection windows,
  so a message does not wait for a window update, and the Rust side decodes
  `bytes` fields as `bytes::Bytes` (no copy out of the receive buffer); what
  remains is h2 framing copies and glibc malloc growing and trimming its heap for
  every MiB message (`brk` about 7 times per message, with the page faults that
  follow). Over net/rpc, yamux's 256 KiB windows (go-plugin's) add window-update
  round trips on both sides.
NOTES
    echo
    echo "In-process costs (criterion, \`cargo bench -p goplug-bench\`; low, estimate, high). \`grpc_unary\`:"
    echo "one tiny unary call Rust/Rust in one process; \`otel_off\` built without goplug's \`otel\`"
    echo "feature, \`otel_on\` with it and no subscriber, \`otel_traced\` with an OpenTelemetry layer"
    echo "recording both sides' spans (no exporter):"
    echo
    grep -E '^[a-z0-9_/]+ +time:' "$scratch/criterion" | sed -E 's/^([^ ]+) +time: +(.*)$/- \`\1\`: \2/'
    echo
    echo "\`kv_unary\`: one unary KV call to a Rust KV plugin process through a bare client's"
    echo "channel and through a supervised plugin's. Recovery (\`bench/src/bin/recovery.rs\`):"
    echo "SIGKILL to the next successful call through the supervised channel, restart backoff 0:"
    echo
    sed -E 's/^(.*)$/- `\1`/' "$scratch/recovery"
} > "$root/BENCHMARKS.md"
echo "wrote $root/BENCHMARKS.md"
exit "$status"

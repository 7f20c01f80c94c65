#!/usr/bin/env bash
# Benchmarks, not part of the test run: criterion figures for the in-process
# costs, the side-by-side start-up run against go-plugin v1.8.0, callgrind's
# instructions per call, and the matrix of every host/plugin pairing under
# every workload (bench/src/bin/matrix.rs). Writes BENCHMARKS.md, every
# figure in it from this run.
# Usage: scripts/bench.sh [--quick] [--only LABEL]... [--protocol grpc|netrpc] [start-up iterations]
# --quick: few iterations everywhere, to check that it all runs.
# --only LABEL: only the matrix workloads with these labels (matrix.rs's
#   `workloads`: unary, echo, "concurrent 64", "concurrent 1000", broker,
#   session, scale), e.g. `--only "concurrent 64" --protocol grpc` for the
#   gRPC 64-caller row; the tables go to stdout and BENCHMARKS.md is left
#   alone.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
quick=()
only=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --quick) quick=(--quick); shift ;;
        --only) only+=(--only "$2"); shift 2 ;;
        --protocol) only+=(--protocol "$2"); shift 2 ;;
        --*) echo "scripts/bench.sh: unknown argument $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
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
if [[ ${#only[@]} -gt 0 ]]; then
    # Some matrix rows alone: the tables go to stdout (matrix prints them).
    status=0
    "$release/matrix" "${quick[@]}" "${only[@]}" --go-bin-dir "$go_bin" \
        --rust-bin-dir "$release" --rust-plugin-dir "$rust_plugins" \
        --out "$scratch/matrix.md" || status=$?
    exit "$status"
fi
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
# Instructions per tiny unary call (callgrind), Rust host and Rust plugin:
# both run under callgrind for two call counts, and the difference of their
# totals over the difference of calls leaves start-up and shutdown out.
# Prints "host plugin" (rounded to 100 instructions).
per_call() {
    local plugin=$1 dir n
    dir=$(mktemp -d -p "$scratch")
    local counts=(1000 3000)
    [[ ${#quick[@]} -gt 0 ]] && counts=(200 600)
    for n in "${counts[@]}"; do
        valgrind --quiet --tool=callgrind --log-file="$dir/valgrind-host.%p" \
            --callgrind-out-file="$dir/host.$n" "$release/bench-host" \
            -cmd "exec valgrind --quiet --tool=callgrind --log-file='$dir/valgrind-plugin.%p' --callgrind-out-file='$dir/plugin.$n' '$plugin'" \
            -workload unary -iterations "$n" >/dev/null
    done
    python3 - "$dir" "${counts[@]}" <<'PY'
import sys
folder, low, high = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def total(name):
    with open(f"{folder}/{name}") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("summary:"))
# bench-host's unary workload: one first call, a warm-up of a tenth (at
# most 1,000), then the measured calls.
calls = lambda n: n + min(n // 10, 1000) + 1
per = lambda side: (total(f"{side}.{high}") - total(f"{side}.{low}")) / (calls(high) - calls(low))
print(*(f"{round(per(side), -2):,.0f}" for side in ("host", "plugin")))
PY
}
packed_calls=$(per_call "$rust_plugins/bench-plugin")
release_calls=$(per_call "$release/bench-plugin")
read -r ins_host ins_plugin <<<"$packed_calls"
read -r _ ins_release <<<"$release_calls"
order_functions=$(wc -l <"$rust_plugins/bench-plugin.order")
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
    # Every figure in these notes is a shell variable of this run.
    sed -e "s/@INS_HOST@/$ins_host/; s/@INS_PLUGIN@/$ins_plugin/" \
        -e "s/@INS_RELEASE@/$ins_release/; s/@ORDER_FUNCTIONS@/$order_functions/" <<'NOTES'

### What bounds the figures

- The machine: a small VM shared with other work, whose speed drifts with its
  neighbours. Within one run, the Go/Go column is the reference for every
  ratio and the pairings of a row are measured in turns; between runs, single
  figures (the socket floor, 1 MiB echo) move much more than the ratios, so
  compare figures of one run only.
- Builds: hosts are `cargo build --release`; the Rust plugins are built as README
  recommends for plugins (`--profile plugin`: fat LTO, one codegen unit,
  panic=abort, stripped; statically linked, non-PIE), then with the code they run
  packed at the front of the binary (`scripts/plugin-order.sh`, profiled on the
  bench host's workloads under callgrind); Go's with plain `go build` (static
  too).
- Per-call cost, callgrind in this run (one tiny unary call over gRPC, the
  difference between two runs of different lengths divided by the difference
  of calls, so start-up and shutdown are left out): Rust host @INS_HOST@
  instructions per call; Rust plugin @INS_PLUGIN@ as built for the matrix,
  @INS_RELEASE@ as a plain `--release` build. valgrind does not know
  `pidfd_open`, so under it the host takes its fallback path for the plugin's
  exit; the calls themselves are the same. Most of a call is hyper's
  per-stream task and body pipe, tonic's server stack and h2 (HPACK, frame
  codec, stream store); writes are coalesced on both sides, so a request is one
  `writev` and many concurrent calls share writes.
- Idle RSS: what stays resident of a plugin is mostly its binary's code, which the
  kernel maps in blocks (fault-around, large page-cache folios) around each page
  the plugin runs: unpacked, nearly every block of the Rust code and of static
  glibc ends up resident. Packed, the @ORDER_FUNCTIONS@ functions that ran under
  the profile sit together at the front and the rest of the binary is never
  mapped. The line above these notes gives both RSS figures from this run.
- 64 callers over gRPC: with current-thread runtimes on both sides, the host's
  requests leave in one write, the plugin answers them in one write, and each
  side waits while the other works: this lockstep, not per-call cost, bounds
  the figure. The multi-thread column of the same row measures, in this run,
  what spreading each side's work over more threads gives instead (overlap
  against cross-thread wake-ups).
- Runtime flavour: `goplug::plugin::run` builds tokio's multi-thread runtime unless
  the plugin asks for `ServeConfig::runtime(Runtime::CurrentThread)`; `bench-plugin`
  runs on a current-thread runtime (`BENCH_RUNTIME=multi` selects the multi-thread
  one). A host runs on the application's runtime.
- Start-up and the N-plugin rows: the start-up table launches each plugin
  through `sh -c 'exec …'`, as go-plugin's examples do, and directly, as
  Terraform runs providers; the Terraform-like session row and the N-plugin
  rows use the direct and the shell launch respectively. The goplug host
  starts a plugin as Go's `os/exec` does, with `clone(CLONE_VM | CLONE_VFORK)`
  from its launcher thread (`goplug/src/sys/spawn.rs`): the host's page tables
  are not copied and its pages do not become copy-on-write, so the host's own
  size and the number of plugins it runs no longer slow each launch. Per
  launch it makes one private socket directory (`mkdir` and `rmdir`; this
  machine's `/tmp` is ext4, where both go through the journal and cost the
  most when other processes write), and the plugin binds its socket straight
  in it. What stays above the spawn-and-wait floor, from `perf record` of
  repeated launches: the plugin's own `execve` and start (static glibc's
  start-up asks the CPU for its features and caches with CPUID, which traps to
  the hypervisor in this VM, as does aws-lc's CPU-capability probe; page
  faults on the binary's code), then the socket, the handshake line, the
  HTTP/2 connection and its first health request. AutoMTLS adds two
  certificates (one generated by each side), the TLS 1.3 handshake with client
  authentication (ECDSA P-256 signatures and X25519 on both sides) and its
  round trip.
- gRPC unary against the spinning floor: goplug's runtimes sleep in `epoll`
  between messages, as grpc-go's do, so each call pays the wake-ups of the
  blocking ping-pong (request, then response), and the blocking floor, not the
  spinning one, is what the unary p50 stays near (both ratios are in "Floor of
  this machine"). Reaching the spinning floor would take a core busy-polling on
  each side for as long as a plugin is connected, which a plugin host should
  not do by default.
- Mixed pairings at start-up: a go-plugin host that sets no socket directory
  makes none, and its Go plugin creates its socket straight in `/tmp`; a goplug
  host makes (and removes) a private directory per plugin, which is what
  guarantees that no socket is left behind after a kill, and on this ext4
  `/tmp` that pair of directory operations is most of what separates a Rust
  host from a Go host starting the same Go plugin.
- 1,000 in-flight callers over gRPC: goplug's servers allow 1,024 concurrent
  HTTP/2 streams per connection (grpc-go: unbounded); with a lower limit a Go
  host queues on its stream quota.
- 1 MiB echo: goplug's servers announce 2 MiB stream / 5 MiB connection windows,
  so a message does not wait for a window update, and the Rust side decodes
  `bytes` fields as `bytes::Bytes` (no copy out of the receive buffer); what
  remains is h2 framing copies and glibc malloc growing and trimming its heap
  around every MiB message, with the page faults that follow. Over net/rpc,
  yamux's 256 KiB windows (go-plugin's) add window-update round trips on both
  sides.
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

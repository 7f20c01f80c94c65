#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ (its [[bin]]s) for N seconds each.
#
#   scripts/fuzz.sh [seconds-per-target] [target...]     (default: 30, all)
#
# Needs a nightly toolchain (cargo +nightly): without one it says so and
# exits 0. Installs the pinned cargo-fuzz from crates.io when it is missing.
# The seeds in fuzz/corpus/<target> are only read; inputs a run finds go to
# fuzz/corpus-work/<target> (git-ignored). A crash, a timeout or a leak
# fails the script; libFuzzer leaves the input in fuzz/artifacts/<target>/.
# Reproduce one with: cargo +nightly fuzz run <target> <artifact>
#
# Env: FUZZ_SANITIZER (default address; none builds and runs faster),
# FUZZ_PROFILE (release, the default, for long runs; dev builds in about
# half the time, since cargo-fuzz's release build forces one codegen unit
# per crate, and suits short smokes), FUZZ_TARGET_DIR (cargo's target dir
# for the fuzz build, default fuzz/target).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

CARGO_FUZZ_VERSION=0.13.2
seconds=${1:-30}
shift $(($# > 0 ? 1 : 0))
case $seconds in
    '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [seconds-per-target] [target...]" >&2; exit 2 ;;
esac

if ! nightly=$(cargo +nightly --version 2>/dev/null); then
    echo "scripts/fuzz.sh: no nightly toolchain ('cargo +nightly' failed): skipping the fuzz run"
    exit 0
fi
echo "==> $nightly"

if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
    echo "==> installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install --locked "cargo-fuzz@$CARGO_FUZZ_VERSION"
fi

sanitizer=${FUZZ_SANITIZER:-address}
build_args=(--sanitizer "$sanitizer")
case ${FUZZ_PROFILE:-release} in
    release) ;;
    dev) build_args+=(--dev) ;;
    *) echo "scripts/fuzz.sh: FUZZ_PROFILE is release or dev, not '$FUZZ_PROFILE'" >&2; exit 2 ;;
esac
if [ -n "${FUZZ_TARGET_DIR:-}" ]; then
    build_args+=(--target-dir "$FUZZ_TARGET_DIR")
fi

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
if [ ${#targets[@]} -eq 0 ]; then
    echo "scripts/fuzz.sh: no fuzz targets found ('cargo +nightly fuzz list')" >&2
    exit 1
fi

echo "==> cargo +nightly fuzz build (sanitizer: $sanitizer, profile: ${FUZZ_PROFILE:-release})"
start=$SECONDS
cargo +nightly fuzz build "${build_args[@]}"
echo "    built in $((SECONDS - start)) s"

failed=()
for target in "${targets[@]}"; do
    work="fuzz/corpus-work/$target"
    seeds="fuzz/corpus/$target"
    mkdir -p "$work" "$seeds"
    log=$(mktemp "${TMPDIR:-/tmp}/goplug-fuzz-$target.XXXXXX")
    echo "==> fuzz $target for ${seconds} s"
    # New inputs go to the first corpus directory only.
    if cargo +nightly fuzz run "${build_args[@]}" "$target" "$work" "$seeds" -- \
        -max_total_time="$seconds" -timeout=20 -print_final_stats=1 >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
        cov=$(sed -n 's/^#[0-9]*[[:space:]]*DONE[[:space:]]*cov: \([0-9]*\).*/\1/p' "$log" | tail -n 1)
        echo "    ok: ${runs:-?} runs, coverage ${cov:-?} edges, corpus $(find "$work" -type f | wc -l) new + $(find "$seeds" -type f | wc -l) seeds"
        rm -f "$log"
    else
        if grep -q 'failed to build fuzz script' "$log"; then
            echo "    FAILED: $target did not build"
        else
            echo "    FAILED: $target (the input is under fuzz/artifacts/$target/)"
        fi
        tail -n 60 "$log"
        failed+=("$target")
        rm -f "$log"
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "scripts/fuzz.sh: failing targets: ${failed[*]}" >&2
    exit 1
fi
echo "scripts/fuzz.sh: ${#targets[@]} targets, ${seconds} s each: no crash"

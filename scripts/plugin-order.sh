#!/usr/bin/env bash
# Builds a Rust plugin with the code it runs packed together at the front of
# its text segment, so an idle plugin maps a fraction of its binary.
#
# Why: the kernel maps a binary's code into a process in blocks (fault-around
# and large page-cache folios, 64 KiB and more), not page by page. Functions a
# plugin runs are scattered through several MiB of code (tokio, h2, hyper,
# tonic, goplug, glibc), so nearly every block of the Rust code ends up
# resident: most of an idle plugin's RSS. Ordering the functions that run
# first (lld's --symbol-ordering-file, the layout half of profile-guided
# optimisation) leaves the rest of the binary unmapped.
#
# How: builds the plugin with symbols, runs HOST_COMMAND (which must launch
# the plugin from the path in $GOPLUG_ORDER_PLUGIN and exercise it) with the
# plugin under valgrind's callgrind, lists every function that ran, and
# builds the plugin again with that list as the linker's ordering file.
# Only the plugin's own crate is rebuilt each time: the ordering is a link
# argument of the final crate, and so is the `-C strip=none` of the build
# that is profiled, so dependencies keep their symbol names between the two.
#
# Usage:
#   scripts/plugin-order.sh --package PKG --bin BIN [--profile plugin]
#       [--target x86_64-unknown-linux-gnu] [--out FILE] -- HOST_COMMAND...
# RUSTFLAGS from the environment apply to both builds (use the same ones as
# for the plugin's normal build). The ordered binary replaces the normal one
# under target/TARGET/PROFILE/BIN; the ordering file is written to FILE
# (default target/TARGET/PROFILE/BIN.order).
# Needs: valgrind, and a toolchain that links with lld (Rust's default on
# x86_64 Linux since 1.90).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

package='' bin='' profile=plugin target=x86_64-unknown-linux-gnu out=''
while [[ $# -gt 0 ]]; do
    case $1 in
        --package) package=$2; shift 2 ;;
        --bin) bin=$2; shift 2 ;;
        --profile) profile=$2; shift 2 ;;
        --target) target=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --) shift; break ;;
        *) echo "plugin-order.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [[ -z $package || -z $bin || $# -eq 0 ]]; then
    echo "usage: plugin-order.sh --package PKG --bin BIN [--out FILE] -- HOST_COMMAND..." >&2
    exit 2
fi
command -v valgrind >/dev/null || {
    echo "plugin-order.sh: valgrind is required (Debian: apt-get install valgrind)" >&2
    exit 1
}
binary="$root/target/$target/$profile/$bin"
out=${out:-$binary.order}

build() {
    cargo rustc --quiet --locked --profile "$profile" --target "$target" \
        -p "$package" --bin "$bin" -- "$@"
}

echo "==> $bin: building with symbols"
build -C strip=none
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp "$binary" "$scratch/plugin-with-symbols"
cat >"$scratch/plugin" <<EOF
#!/bin/sh
exec valgrind --quiet --tool=callgrind --compress-strings=no --demangle=no \\
    --log-file="$scratch/valgrind.%p.log" \\
    --callgrind-out-file="$scratch/callgrind.%p" "$scratch/plugin-with-symbols" "\$@"
EOF
chmod +x "$scratch/plugin"

echo "==> $bin: profiling under: $*"
if ! GOPLUG_ORDER_PLUGIN="$scratch/plugin" "$@"; then
    echo "plugin-order.sh: the host command failed; $binary is the build with symbols, not ordered" >&2
    exit 1
fi
shopt -s nullglob

# Every function callgrind saw, in order of first appearance: `fn=` is a
# function that ran, `cfn=` one it called.
python3 - "$out" "$scratch"/callgrind.* <<'PY'
import re, sys
out, profiles = sys.argv[1], sys.argv[2:]
seen, names = set(), []
pattern = re.compile(r"c?fn=(?:\(\d+\) )?(\S.*)$")
for profile in profiles:
    with open(profile, encoding="utf-8", errors="replace") as f:
        for line in f:
            match = pattern.match(line.rstrip("\n"))
            if match:
                name = match.group(1)
                if not name.startswith("0x") and name not in seen:
                    seen.add(name)
                    names.append(name)
if not names:
    sys.exit("plugin-order.sh: callgrind wrote no profile with function names: did the host command launch $GOPLUG_ORDER_PLUGIN?")
with open(out, "w") as f:
    f.write("\n".join(names) + "\n")
print(f"==> {len(names)} functions from {len(profiles)} plugin runs -> {out}")
PY

echo "==> $bin: building with that ordering"
build -C link-arg=-Wl,--symbol-ordering-file="$(realpath "$out")" \
    -C link-arg=-Wl,--no-warn-symbol-ordering
echo "==> $binary"

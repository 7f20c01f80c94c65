#!/usr/bin/env bash
# Runs goplug's whole test suite, interop with real go-plugin v1.8.0 (Go) and
# grpcio (Python) included. Installs what the interop peers need first:
#   - Python: a virtualenv in target/pyvenv with interop/python/requirements.txt
#   - Go: the modules of interop/go (go-plugin v1.8.0) and
#     interop/tfprovider-framework from the Go module proxy
#   - OpenTofu v1.6.3, built once into ~/.cache/goplug (scripts/tofu.sh)
# Needs: cargo, go (>= 1.25; >= 1.26.8 for tests/tf_host's time provider),
# python3 (>= 3.10).
# Fails too when the tests leave a plugin's socket in their temp dir.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

for tool in cargo go python3; do
    command -v "$tool" >/dev/null || { echo "scripts/test.sh: '$tool' is required" >&2; exit 1; }
done

venv="$root/target/pyvenv"
requirements="$root/interop/python/requirements.txt"
stamp="$venv/.requirements"
if ! cmp -s "$requirements" "$stamp" 2>/dev/null; then
    echo "==> installing Python interop packages into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$stamp"
fi
export GOPLUG_PYTHON="$venv/bin/python"

echo "==> downloading Go interop modules"
(cd interop/go && go mod download)
# The Terraform providers the host test drives (goplug-test/tests/tf_host):
# our terraform-plugin-framework provider's modules here; the time
# provider is built by the test itself (go install, cached).
(cd interop/tfprovider-framework && go mod download)

# OpenTofu v1.6.3 for the Terraform provider's end-to-end test, built
# once from the Go module proxy into ~/.cache/goplug (minutes the first
# time, nothing after).
echo "==> OpenTofu v1.6.3 (scripts/tofu.sh)"
GOPLUG_TOFU=$(bash scripts/tofu.sh)
export GOPLUG_TOFU

# Nothing the tests start may leave a socket or a socket directory behind.
# go-plugin names a plugin's socket `plugin<digits>` in the temp dir, goplug
# a plugin's directory `plugin<random>` (holding `plugin.sock`) and a host's
# `goplug-<random>` (the harness's are `goplug-test<random>`). The tests run
# with a TMPDIR of their own, so whatever is left there is this run's,
# whatever else runs on the machine.
suite_tmp=$(mktemp -d "${TMPDIR:-/tmp}/goplug-suite.XXXXXX")
trap 'rm -rf "$suite_tmp"' EXIT
system_tmp_before=$(find /tmp -maxdepth 1 -name 'plugin*' | sort)

echo "==> cargo test (TMPDIR=$suite_tmp)"
status=0
TMPDIR="$suite_tmp" cargo test --workspace --locked "$@" || status=$?

leaked=$(find "$suite_tmp" -mindepth 1 -maxdepth 1 \( -name 'plugin*' -o -name 'goplug-*' \) | sort)
if [ -n "$leaked" ]; then
    echo "scripts/test.sh: the tests left go-plugin/goplug sockets or socket directories" \
        "in their TMPDIR (a killed plugin or host, or a multiplexed Go plugin, which never" \
        "removes its socket: start the host with a TMPDIR the test removes):" >&2
    echo "$leaked" | sed 's/^/  /' >&2
    [ "$status" -ne 0 ] || status=1
fi
# A process that ignores TMPDIR would write to /tmp itself. What appeared
# there may be another program's, so it is named, not failed on.
system_tmp_new=$(comm -13 <(echo "$system_tmp_before") \
    <(find /tmp -maxdepth 1 -name 'plugin*' | sort) | sed '/^$/d')
if [ -n "$system_tmp_new" ]; then
    echo "scripts/test.sh: note: new /tmp/plugin* entries during the run (this suite's" \
        "or another program's):" >&2
    echo "$system_tmp_new" | sed 's/^/  /' >&2
fi
exit "$status"

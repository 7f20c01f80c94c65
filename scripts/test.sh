#!/usr/bin/env bash
# Runs goplug's whole test suite, interop with real go-plugin v1.8.0 (Go) and
# grpcio (Python) included. Installs what the interop peers need first:
#   - Python: a virtualenv in target/pyvenv with interop/python/requirements.txt
#   - Go: the modules of interop/go (go-plugin v1.8.0) and
#     interop/tfprovider-framework from the Go module proxy
#   - OpenTofu v1.6.3, built once into ~/.cache/goplug (scripts/tofu.sh)
# Needs: cargo, go (>= 1.25; >= 1.26.8 for tests/tf_host's time provider),
# python3 (>= 3.10).
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

echo "==> cargo test"
cargo test --workspace --locked "$@"

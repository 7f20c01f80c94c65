#!/usr/bin/env bash
# Builds the Go peers the test suite uses ahead of it, so that .ci/run can
# run this beside the Rust checks (which leave a core idle much of the
# time): OpenTofu v1.6.3 (scripts/tofu.sh, cached in ~/.cache/goplug), and
# Go's build cache warmed for terraform-provider-time v0.14.2, the
# terraform-plugin-framework provider and interop/go's programs (the tests
# build these themselves with the same flags, then only link). Also vets
# the interop Go modules. The suite does not need this script: it builds
# whatever is missing on its own.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

echo "==> go vet (interop peers)"
(cd interop/go && go vet ./...)
(cd interop/tfprovider-framework && go vet ./...)

echo "==> OpenTofu v1.6.3"
bash scripts/tofu.sh >/dev/null

echo "==> Go build cache: Terraform providers and interop programs"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
(cd "$scratch" && GOBIN="$scratch" CGO_ENABLED=0 \
    go install -trimpath github.com/hashicorp/terraform-provider-time@v0.14.2)
(cd interop/tfprovider-framework && CGO_ENABLED=0 go build -o "$scratch/fwdemo" .)
(cd interop/go && go build -o "$scratch/" ./cmd/...)
echo "==> Go peers ready"

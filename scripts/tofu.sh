#!/usr/bin/env bash
# Builds OpenTofu v1.6.3 from the Go module proxy, once, into a cache
# outside the repository, and prints the binary's path. The OpenTofu
# end-to-end test (examples/terraform-provider-goplug/tests/tofu.rs) runs
# it; scripts/test.sh calls this first so the build happens once per run.
#   GOPLUG_CACHE  the cache (default: ${XDG_CACHE_HOME:-$HOME/.cache}/goplug)
# Needs: go (>= 1.21). The first build takes a few minutes.
set -euo pipefail
version=v1.6.3
cache="${GOPLUG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/goplug}"
bin="$cache/tofu-$version/bin"
if [ -x "$bin/tofu" ] && "$bin/tofu" version >/dev/null 2>&1; then
    echo "$bin/tofu"
    exit 0
fi
command -v go >/dev/null || { echo "scripts/tofu.sh: 'go' is required to build OpenTofu $version" >&2; exit 1; }
mkdir -p "$cache"
# Built into a fresh directory, then moved into place: a concurrent or
# interrupted build never leaves a half-written binary behind.
staging=$(mktemp -d "$cache/tofu-build.XXXXXX")
trap 'rm -rf "$staging"' EXIT
echo "scripts/tofu.sh: building OpenTofu $version into $bin (a few minutes the first time)" >&2
if ! GOBIN="$staging" CGO_ENABLED=0 GOFLAGS=-mod=mod timeout 1800 \
    go install -trimpath -ldflags='-s -w' "github.com/opentofu/opentofu/cmd/tofu@$version" >&2; then
    echo "scripts/tofu.sh: building OpenTofu $version failed (see above)" >&2
    exit 1
fi
mkdir -p "$bin"
mv -f "$staging/tofu" "$bin/tofu"
echo "$bin/tofu"

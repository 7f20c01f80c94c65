#!/usr/bin/env bash
# The KV demo: builds the Rust host (`kv`) and plugin (`kv-rust-grpc`), then
# runs go-plugin's example session in a scratch directory:
#   KV_PROTO=grpc KV_PLUGIN=./kv-rust-grpc ./kv put hello world; ./kv get hello
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cargo build --quiet --manifest-path "$root/Cargo.toml" -p goplug-example-kv --bins
bin="$root/target/debug"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
export KV_PROTO=grpc KV_PLUGIN="$bin/kv-rust-grpc"
echo "\$ ./kv put hello world"
"$bin/kv" put hello world
echo "\$ ./kv get hello"
"$bin/kv" get hello

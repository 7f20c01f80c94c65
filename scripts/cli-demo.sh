#!/usr/bin/env bash
# One command: build the goplug CLI and go-plugin v1.8's KV plugin (Go), then
# inspect the Go plugin over AutoMTLS and read and write through both the Go
# and the Rust KV plugins with `goplug call`.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet -p goplug-cli -p goplug-example-kv
mkdir -p target/interop-go
(cd interop/go && go build -o ../../target/interop-go/ ./cmd/kv-plugin-go-grpc)

goplug=target/debug/goplug
go_plugin=target/interop-go/kv-plugin-go-grpc
rust_plugin=target/debug/kv-rust-grpc
cookie=(--cookie-key BASIC_PLUGIN --cookie-value hello)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$go_plugin" "$rust_plugin" "$work/"
cd "$work"

echo "\$ goplug inspect --auto-mtls ./kv-plugin-go-grpc"
"$OLDPWD/$goplug" inspect "${cookie[@]}" --auto-mtls ./kv-plugin-go-grpc 2>/dev/null
for plugin in kv-plugin-go-grpc kv-rust-grpc; do
  echo
  echo "\$ goplug call ./$plugin proto.KV/Put '{\"key\":\"hello\",\"value\":\"d29ybGQ=\"}'"
  "$OLDPWD/$goplug" call "${cookie[@]}" "./$plugin" proto.KV/Put '{"key":"hello","value":"d29ybGQ="}' 2>/dev/null
  echo "\$ goplug call ./$plugin proto.KV/Get '{\"key\":\"hello\"}'"
  "$OLDPWD/$goplug" call "${cookie[@]}" "./$plugin" proto.KV/Get '{"key":"hello"}' 2>/dev/null
done

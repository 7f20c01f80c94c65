//! The KV plugin, in Rust: go-plugin's `examples/grpc/plugin-go-grpc`.
//!
//! Run it through a host (`kv`, or go-plugin's Go host):
//! `KV_PROTO=grpc KV_PLUGIN=./kv-rust-grpc ./kv put hello world`

fn main() -> std::process::ExitCode {
    goplug::plugin::run(goplug_example_kv::serve_config())
}

//! The KV plugin, in Rust: go-plugin's `examples/grpc/plugin-go-grpc`.
//!
//! Run it through a host (`kv`, or go-plugin's Go host):
//! `KV_PROTO=grpc KV_PLUGIN=./kv-rust-grpc ./kv put hello world`
//!
//! With `KV_PLUGIN_DEBUG=1` it starts in debug mode instead (go-plugin's
//! `ServeTestConfig`): it prints its reattach config as one JSON line and
//! serves until interrupted, for a host to attach to.

fn main() -> std::process::ExitCode {
    let config = goplug_example_kv::serve_config();
    if std::env::var_os("KV_PLUGIN_DEBUG").is_some_and(|v| v == "1") {
        goplug::plugin::run_debug(config)
    } else {
        goplug::plugin::run(config)
    }
}

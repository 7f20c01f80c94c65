//! The KV plugin over net/rpc, in Rust: go-plugin's
//! `examples/grpc/plugin-go-netrpc`.
//!
//! `KV_PROTO=netrpc KV_PLUGIN=./kv-rust-netrpc ./kv put hello world`

use goplug::plugin::{ServeConfig, Services};
use goplug_example_kv::{FileKv, HANDSHAKE, PLUGIN_NETRPC, kv_netrpc_server};

fn main() -> std::process::ExitCode {
    goplug::plugin::run(ServeConfig::new(HANDSHAKE).plugins(
        Services::new().netrpc(PLUGIN_NETRPC, |_| {
            kv_netrpc_server(FileKv::new("plugin-rust-netrpc"))
        }),
    ))
}

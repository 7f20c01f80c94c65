//! The plugin of go-plugin's `examples/negotiated`, in Rust: it offers app
//! protocol version 2 over net/rpc and version 3 over gRPC, and serves the
//! highest one its host offers. Copy or link it to `./kv-plugin` next to the
//! host, as the Go example expects.

use goplug::plugin::{ServeConfig, Services};
use goplug_example_kv::{FileKv, HANDSHAKE, kv_netrpc_server, pb};

fn main() -> std::process::ExitCode {
    let v3 = Services::new().grpc("kv", pb::kv_server::KvServer::new(FileKv::versioned(3)));
    let v2 = Services::new().netrpc("kv", |_| kv_netrpc_server(FileKv::versioned(2)));
    goplug::plugin::run(
        ServeConfig::new(HANDSHAKE)
            .version(2, v2)
            .version(3, v3)
            .file_descriptor_set(pb::FILE_DESCRIPTOR_SET),
    )
}

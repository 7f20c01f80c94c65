//! The plugin of go-plugin's `examples/negotiated`, in Rust: it offers app
//! protocol version 3 over gRPC (version 2, over net/rpc, arrives with
//! goplug's net/rpc support). Copy or link it to `./kv-plugin` next to the
//! host, as the Go example expects.

use goplug::plugin::{PluginSet, ServeConfig};
use goplug_example_kv::{FileKv, HANDSHAKE, pb};

fn main() -> std::process::ExitCode {
    let v3 = PluginSet::new().grpc("kv", pb::kv_server::KvServer::new(FileKv::versioned(3)));
    goplug::plugin::run(
        ServeConfig::new(HANDSHAKE)
            .version(3, v3)
            .file_descriptor_set(pb::FILE_DESCRIPTOR_SET),
    )
}

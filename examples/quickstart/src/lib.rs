//! What the quickstart's host and plugin share: the generated code, the
//! handshake, and the plugin declared once with its client type.

/// Code generated from `proto/text.proto` by `build.rs`.
pub mod pb {
    tonic::include_proto!("quickstart.v1");
}

use goplug::HandshakeConfig;
use goplug::host::{Channel, GrpcPlugin};
use pb::text_client::TextClient;

/// Host and plugin must agree on this: the protocol version and the magic
/// cookie (an environment variable the host sets for the plugin).
pub const HANDSHAKE: HandshakeConfig =
    HandshakeConfig::new(1, "QUICKSTART_PLUGIN", "a3f1c2e8-quickstart");

// Makes the generated client dispensable. It must be invoked here, in the
// crate that includes the generated code (Rust's orphan rule).
goplug::grpc_client!(pb::text_client::TextClient);

/// The plugin as the host registers and dispenses it.
pub const TEXT: GrpcPlugin<TextClient<Channel>> = GrpcPlugin::new("text");

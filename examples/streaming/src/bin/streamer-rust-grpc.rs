//! The streamer plugin, in Rust: go-plugin's `examples/streaming/plugin`.
//! The example host runs it as `./plugin/streamer`.

use goplug::plugin::{ServeConfig, Services};
use goplug_example_streaming::{FileStreamer, HANDSHAKE, pb};

fn main() -> std::process::ExitCode {
    // go-plugin's example logs at trace; debug shows the same lines.
    goplug::log::init_with("debug");
    tracing::debug!("plugin launched, about to be served");
    let streamer = pb::streamer_service_server::StreamerServiceServer::new(FileStreamer::default());
    goplug::plugin::run(
        ServeConfig::new(HANDSHAKE).plugins(Services::new().grpc("streamer", streamer)),
    )
}

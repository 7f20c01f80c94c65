//! The counter plugin, in Rust: go-plugin's
//! `examples/bidirectional/plugin-go-grpc`. Run it through a host:
//! `COUNTER_PLUGIN=./counter-rust-grpc ./counter put a 3`

use goplug::plugin::{ServeConfig, Services};
use goplug_example_bidirectional::{FileCounter, HANDSHAKE, pb};

fn main() -> std::process::ExitCode {
    let plugins = Services::new().grpc_with_broker("counter", |broker| {
        pb::counter_server::CounterServer::new(FileCounter::new(broker.clone()))
    });
    goplug::plugin::run(ServeConfig::new(HANDSHAKE).plugins(plugins))
}

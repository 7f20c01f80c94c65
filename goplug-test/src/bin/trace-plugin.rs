//! go-plugin's bidirectional counter plugin, traced: every span it
//! finishes goes to the file named by `TRACE_OUT_PLUGIN` (see
//! `goplug_test::spanfile`). goplug's `otel` feature joins the host's trace
//! at start-up (`TRACEPARENT`) and on every call, the callback included.

use goplug::plugin::{ServeConfig, Services};
use goplug_example_bidirectional::{FileCounter, HANDSHAKE, pb};

fn main() -> std::process::ExitCode {
    let provider = goplug_test::spanfile::init("rust-plugin", "TRACE_OUT_PLUGIN");
    let plugins = Services::new().grpc_with_broker("counter", |broker| {
        pb::counter_server::CounterServer::new(FileCounter::new(broker.clone()))
    });
    let code = goplug::plugin::run(ServeConfig::new(HANDSHAKE).plugins(plugins));
    if let Some(provider) = provider {
        let _ = provider.shutdown();
    }
    code
}

//! The benchmark plugin in Rust: the Bench service over gRPC (with the
//! broker callback), or `Plugin.Echo` over net/rpc with `BENCH_PROTOCOL=netrpc`.
//!
//! `BENCH_RUNTIME=multi` serves on tokio's multi-thread runtime (what
//! `goplug::plugin::run` builds); the default is the current-thread one.

use std::process::ExitCode;
use std::time::Duration;

use goplug::plugin::{ServeConfig, Services};
use goplug_bench::{BenchService, HANDSHAKE, PLUGIN_NAME, netrpc_server, pb, runtime};

fn main() -> ExitCode {
    let plugins = if std::env::var("BENCH_PROTOCOL").as_deref() == Ok("netrpc") {
        Services::new().netrpc(PLUGIN_NAME, |_| netrpc_server())
    } else {
        Services::new().grpc_with_broker(PLUGIN_NAME, |broker| {
            pb::bench_server::BenchServer::new(BenchService::with_broker(broker.clone()))
        })
    };
    let flavour = std::env::var("BENCH_RUNTIME").unwrap_or_default();
    let runtime = match runtime(&flavour) {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("bench-plugin: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let served = runtime.block_on(goplug::plugin::serve(
        ServeConfig::new(HANDSHAKE).plugins(plugins),
    ));
    runtime.shutdown_timeout(Duration::from_millis(200));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-plugin: {e}");
            ExitCode::FAILURE
        }
    }
}

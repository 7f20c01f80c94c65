//! The benchmark service shared by `bench-plugin` and `bench-host`, and the
//! measuring helpers the hosts and the `matrix` driver share. interop/go's
//! `bench-plugin` and `bench-host` implement the same service and flags.

use std::time::Duration;

use goplug::broker::GrpcBroker;
use goplug::netrpc::rpc::NetRpcServer;
use tonic::{Request, Response, Status};

pub mod floor;

/// Generated code of `proto/bench.proto`.
#[allow(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    clippy::all
)]
pub mod pb {
    tonic::include_proto!("bench");
}

goplug::grpc_client!(pb::bench_client::BenchClient);

/// The handshake of the benchmark plugins (Go and Rust alike).
pub const HANDSHAKE: goplug::HandshakeConfig =
    goplug::HandshakeConfig::new(1, "BENCH_PLUGIN", "bench");

/// The plugin's name in both protocols' plugin sets.
pub const PLUGIN_NAME: &str = "bench";

/// The tiny message of the unary and concurrent rows.
pub const TINY: &[u8] = b"0123456789abcdef";

/// Packs the `Callback` request: broker id in the high half, calls in the low.
pub fn callback_spec(broker_id: u32, calls: u32) -> u64 {
    (u64::from(broker_id) << 32) | u64::from(calls)
}

/// The Bench service: `Echo` everywhere, `Callback` where a broker is given
/// (the plugin; the host serves Echo alone on its broker).
#[derive(Clone, Debug, Default)]
pub struct BenchService {
    broker: Option<GrpcBroker>,
}

impl BenchService {
    /// The plugin's service, calling back through `broker`.
    pub fn with_broker(broker: GrpcBroker) -> Self {
        Self {
            broker: Some(broker),
        }
    }
}

#[tonic::async_trait]
impl pb::bench_server::Bench for BenchService {
    async fn echo(&self, request: Request<pb::Payload>) -> Result<Response<pb::Payload>, Status> {
        Ok(Response::new(request.into_inner()))
    }

    async fn callback(&self, request: Request<pb::Count>) -> Result<Response<pb::Count>, Status> {
        let broker = self
            .broker
            .as_ref()
            .ok_or_else(|| Status::unimplemented("no broker to call back through"))?;
        let spec = request.into_inner().value;
        let (id, calls) = ((spec >> 32) as u32, spec as u32);
        let channel = broker
            .dial(id)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let mut host = pb::bench_client::BenchClient::new(channel);
        for _ in 0..calls {
            host.echo(pb::Payload {
                data: bytes::Bytes::from_static(TINY),
            })
            .await?;
        }
        Ok(Response::new(pb::Count {
            value: u64::from(calls),
        }))
    }
}

/// The net/rpc side: `Plugin.Echo([]byte) []byte`.
pub fn netrpc_server() -> NetRpcServer {
    NetRpcServer::new().method("Echo", |data: Vec<u8>| async move { Ok::<_, String>(data) })
}

/// Resident memory of a process, from `/proc/PID/status`.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The `p` quantile (0..=1) of `values`, nearest rank; zero when empty.
pub fn percentile(values: &[Duration], p: f64) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[rank]
}

/// Which tokio runtime to build: the flavour is a 2x factor for small
/// calls on 2 cores, so both binaries let the run choose.
pub fn runtime(flavour: &str) -> std::io::Result<tokio::runtime::Runtime> {
    match flavour {
        "multi" => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
        _ => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    }
}

//! go-plugin's `examples/bidirectional`, for goplug: a counter plugin that,
//! on every `put`, calls back into the host's `AddHelper` (served through
//! the broker under an id passed in the request) to add the new value to
//! the stored one. Wire-compatible with the Go example on either side.

use goplug::broker::GrpcBroker;
use tonic::{Request, Response, Status};

/// Generated code of `proto/kv.proto`.
#[allow(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    clippy::all
)]
pub mod pb {
    tonic::include_proto!("proto");
}

goplug::grpc_client!(
    pb::counter_client::CounterClient,
    pb::add_helper_client::AddHelperClient
);

/// The handshake of go-plugin's examples.
pub const HANDSHAKE: goplug::HandshakeConfig =
    goplug::HandshakeConfig::new(1, "BASIC_PLUGIN", "hello");

/// The host's side of the callback: `Sum(a, b) = a + b`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Adder;

#[tonic::async_trait]
impl pb::add_helper_server::AddHelper for Adder {
    async fn sum(
        &self,
        request: Request<pb::SumRequest>,
    ) -> Result<Response<pb::SumResponse>, Status> {
        let pb::SumRequest { a, b } = request.into_inner();
        let r = a
            .checked_add(b)
            .ok_or_else(|| Status::out_of_range("sum overflows int64"))?;
        Ok(Response::new(pb::SumResponse { r }))
    }
}

/// The plugin's counter: each key is a file `kv_<key>` holding
/// `{"Value":N}`, as the Go example stores it.
#[derive(Clone, Debug)]
pub struct FileCounter {
    broker: GrpcBroker,
}

impl FileCounter {
    /// A counter that dials the host's helpers through `broker`.
    pub fn new(broker: GrpcBroker) -> Self {
        Self { broker }
    }
}

fn file_of(key: &str) -> Result<String, Status> {
    if key.is_empty() || key.contains('/') || key.contains('\0') {
        return Err(Status::invalid_argument(format!("invalid key {key:?}")));
    }
    Ok(format!("kv_{key}"))
}

async fn read_value(file: &str) -> Result<i64, Status> {
    let raw = tokio::fs::read(file)
        .await
        .map_err(|e| Status::unknown(format!("open {file}: {e}")))?;
    let data: serde_json::Value =
        serde_json::from_slice(&raw).map_err(|e| Status::unknown(format!("{file}: {e}")))?;
    data.get("Value")
        .and_then(serde_json::Value::as_i64)
        .ok_or_else(|| Status::unknown(format!("{file}: no integer \"Value\"")))
}

#[tonic::async_trait]
impl pb::counter_server::Counter for FileCounter {
    async fn get(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::GetResponse>, Status> {
        let value = read_value(&file_of(&request.get_ref().key)?).await?;
        Ok(Response::new(pb::GetResponse { value }))
    }

    async fn put(&self, request: Request<pb::PutRequest>) -> Result<Response<pb::Empty>, Status> {
        let pb::PutRequest {
            add_server,
            key,
            value,
        } = request.into_inner();
        let file = file_of(&key)?;
        // As the Go plugin: a missing or unreadable value counts as 0.
        let old = read_value(&file).await.unwrap_or(0);
        let channel = self
            .broker
            .dial(add_server)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let mut helper = pb::add_helper_client::AddHelperClient::new(channel);
        let sum = helper
            .sum(pb::SumRequest { a: old, b: value })
            .await?
            .into_inner()
            .r;
        let stored = serde_json::json!({ "Value": sum }).to_string();
        tokio::fs::write(&file, stored)
            .await
            .map_err(|e| Status::unknown(format!("write {file}: {e}")))?;
        Ok(Response::new(pb::Empty {}))
    }
}

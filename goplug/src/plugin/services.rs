//! go-plugin's internal services as a Rust plugin serves them.

use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::grpc::pb;

/// `plugin.GRPCController`: `Shutdown` makes the plugin exit.
#[derive(Debug)]
pub(crate) struct Controller {
    pub(crate) shutdown: CancellationToken,
}

#[tonic::async_trait]
impl pb::grpc_controller_server::GrpcController for Controller {
    async fn shutdown(&self, _request: Request<pb::Empty>) -> Result<Response<pb::Empty>, Status> {
        tracing::debug!("host requested shutdown");
        // The server drains in-flight requests, so this reply still goes out.
        self.shutdown.cancel();
        Ok(Response::new(pb::Empty {}))
    }
}

/// `plugin.GRPCStdio`: the stream stays open, carrying nothing, until the
/// plugin shuts down. A plugin that mirrors no stdio behaves like a Go
/// plugin that writes nothing to `os.Stdout`; hosts see a healthy service
/// instead of "stdio service not available".
#[derive(Debug)]
pub(crate) struct Stdio {
    pub(crate) shutdown: CancellationToken,
}

#[tonic::async_trait]
impl pb::grpc_stdio_server::GrpcStdio for Stdio {
    type StreamStdioStream = ReceiverStream<Result<pb::StdioData, Status>>;

    async fn stream_stdio(
        &self,
        _request: Request<()>,
    ) -> Result<Response<Self::StreamStdioStream>, Status> {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = tx.closed() => {}
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

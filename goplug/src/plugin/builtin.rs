//! go-plugin's internal services as a Rust plugin serves them.

use std::sync::Mutex;

use tokio::sync::mpsc;
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

/// `plugin.GRPCStdio`: what the plugin writes to stdout after the
/// handshake, in chunks of up to 1 KiB, as go-plugin's Go plugins send what
/// they write to `os.Stdout`. Backpressured: when the host does not read,
/// the plugin's writes block, and nothing is dropped.
#[derive(Debug)]
pub(crate) struct Stdio {
    pub(crate) shutdown: CancellationToken,
    pub(crate) output: Mutex<Option<mpsc::Receiver<pb::StdioData>>>,
}

/// The write end of the stdout pipe, to be put on fd 1 once the
/// handshake line (which must reach the real stdout) is out.
#[derive(Debug)]
pub(crate) struct StdoutRedirect(std::os::fd::OwnedFd);

impl StdoutRedirect {
    pub(crate) fn apply(self) -> std::io::Result<()> {
        rustix::stdio::dup2_stdout(&self.0)?;
        Ok(())
    }
}

/// A pipe for the plugin's stdout, and the `StdioData` chunks read from it.
/// The chunks flow before the host connects, so none can be missed. At
/// `shutdown` what is left in the pipe is still read, then the chunks end:
/// the write end is the plugin's own fd 1, so the pipe never reaches EOF,
/// and output written just before the plugin stops would otherwise be lost
/// (go-plugin#298).
pub(crate) fn capture_stdout(
    shutdown: CancellationToken,
) -> std::io::Result<(mpsc::Receiver<pb::StdioData>, StdoutRedirect)> {
    use tokio::io::AsyncReadExt as _;
    let (read, write) = rustix::pipe::pipe()?;
    let mut pipe = tokio::net::unix::pipe::Receiver::from_owned_fd(read)?;
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        // go-plugin's chunk size (grpcStdioBuffer).
        let mut buffer = vec![0u8; 1024];
        let chunk = |data: &[u8]| pb::StdioData {
            channel: pb::stdio_data::Channel::Stdout as i32,
            data: data.to_vec(),
        };
        loop {
            let n = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                read = pipe.read(&mut buffer) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                },
            };
            if tx.send(chunk(&buffer[..n])).await.is_err() {
                return;
            }
        }
        // What is in the pipe now, bounded: a thread still writing must
        // not keep the plugin from stopping. A plain non-blocking read(2),
        // not `try_read`: tokio's `try_read` answers from the readiness it
        // cached, which is stale when the reactor has not yet seen the
        // last writes, and the tail of the output would be dropped.
        let mut left = MAX_STDOUT_AFTER_SHUTDOWN;
        while left > 0 {
            let n = match rustix::io::read(&pipe, &mut buffer[..]) {
                Err(rustix::io::Errno::INTR) => continue,
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            left = left.saturating_sub(n);
            if tx.send(chunk(&buffer[..n])).await.is_err() {
                return;
            }
        }
    });
    Ok((rx, StdoutRedirect(write)))
}

/// How much stdout is still forwarded once the plugin is stopping: more
/// than a pipe holds (64 KiB by default on Linux).
const MAX_STDOUT_AFTER_SHUTDOWN: usize = 1 << 20;

#[tonic::async_trait]
impl pb::grpc_stdio_server::GrpcStdio for Stdio {
    type StreamStdioStream = ReceiverStream<Result<pb::StdioData, Status>>;

    async fn stream_stdio(
        &self,
        _request: Request<()>,
    ) -> Result<Response<Self::StreamStdioStream>, Status> {
        let output = self.output.lock().ok().and_then(|mut output| output.take());
        let (tx, rx) = mpsc::channel(1);
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            let Some(mut output) = output else {
                // go-plugin: "must only be called ONCE". A second caller
                // gets an empty stream that ends with the plugin.
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    () = tx.closed() => {}
                }
                return;
            };
            // Until the capture ends: at shutdown it still sends what was
            // printed before, then ends.
            while let Some(data) = output.recv().await {
                if tx.send(Ok(data)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// `plugin.GRPCBroker/StartStream`: the host's announcements come in, this
/// side's go out. One stream per connection, as in go-plugin.
#[derive(Debug)]
pub(crate) struct Broker {
    pub(crate) broker: crate::grpc::broker::GrpcBroker,
    pub(crate) outgoing: Mutex<Option<mpsc::Receiver<pb::ConnInfo>>>,
}

#[tonic::async_trait]
impl pb::grpc_broker_server::GrpcBroker for Broker {
    type StartStreamStream = ReceiverStream<Result<pb::ConnInfo, Status>>;

    async fn start_stream(
        &self,
        request: Request<tonic::Streaming<pb::ConnInfo>>,
    ) -> Result<Response<Self::StartStreamStream>, Status> {
        let Some(mut outgoing) = self.outgoing.lock().ok().and_then(|mut o| o.take()) else {
            return Err(Status::failed_precondition(
                "the broker stream is already open",
            ));
        };
        let broker = self.broker.clone();
        tokio::spawn(async move { broker.receive(request.into_inner()).await });
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            while let Some(info) = outgoing.recv().await {
                if tx.send(Ok(info)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

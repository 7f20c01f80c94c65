//! A connected plugin becoming a [`Client`]: the one place the client's
//! state is assembled and its background tasks (broker stream, stdio copy)
//! start, whether the host launched the plugin or attached to it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::process::PluginProcess;
use super::sandbox::SandboxReport;
use super::socket_dir::SocketDir;
use super::stdio::{self, SyncSink};
use super::ticket::AutoMtlsKeys;
use super::version::VersionCell;
use super::{Client, PluginSet, netrpc, runner};
use crate::grpc::broker::{BrokerTls, GrpcBroker};
use crate::grpc::pb;
use crate::protocol::{PluginAddress, Protocol};
use crate::sys::group::Gid;
use crate::transport::Channel;
use crate::transport::mux::Muxer;
use crate::transport::tls::TlsVersion;

/// How the host came to the plugin, which decides how it lets go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    /// The host launched it.
    Launched { keep_running: bool },
    /// The host attached to it; in test mode it is never stopped.
    Attached { test: bool },
}

/// The connection to a plugin: gRPC (or the net/rpc session) and what was
/// negotiated.
pub(super) struct Connection {
    pub(super) channel: Channel,
    pub(super) protocol: Protocol,
    pub(super) version: u32,
    pub(super) address: PluginAddress,
    /// The TLS version the connection negotiated, once it has.
    pub(super) negotiated_tls: Option<Arc<std::sync::Mutex<Option<TlsVersion>>>>,
    /// The multiplexed session, when the broker is multiplexed.
    pub(super) mux: Option<Arc<Muxer>>,
    /// The connection of a net/rpc plugin.
    pub(super) netrpc: Option<netrpc::NetRpcConnection>,
}

/// A connected plugin, before its broker and stdio tasks start.
pub(super) struct Connected {
    pub(super) connection: Connection,
    pub(super) plugins: PluginSet,
    pub(super) process: PluginProcess,
    pub(super) socket_dir: SocketDir,
    pub(super) mode: Mode,
    pub(super) started: Instant,
    pub(super) shutdown_grace: Duration,
    /// The group let into the host's brokered servers' sockets.
    pub(super) socket_group: Option<Gid>,
    pub(super) broker_tls: Option<BrokerTls>,
    pub(super) sync: (Option<SyncSink>, Option<SyncSink>),
    /// The AutoMTLS material, for a reattach ticket.
    pub(super) auto_mtls_keys: Option<AutoMtlsKeys>,
    /// What the sandbox could not apply, for a sandboxed launch.
    pub(super) sandbox: Option<SandboxReport>,
}

/// The client's background tasks and the broker they serve.
pub(super) struct Background {
    pub(super) stdio_task: TaskGuard,
    /// Becomes true when the synced stdout/stderr stream has ended.
    pub(super) stdio_done: tokio::sync::watch::Receiver<bool>,
    pub(super) broker: GrpcBroker,
    pub(super) broker_closed: tokio_util::sync::DropGuard,
    pub(super) broker_task: TaskGuard,
}

impl Connected {
    /// Starts the broker stream and stdio copying.
    pub(super) fn into_client(self) -> Client {
        let Self {
            connection,
            plugins,
            process,
            socket_dir,
            mode,
            started,
            shutdown_grace,
            socket_group,
            broker_tls,
            sync: (sync_stdout, sync_stderr),
            auto_mtls_keys,
            sandbox,
        } = self;
        let broker_closed = CancellationToken::new();
        let (broker_tx, broker_rx) = tokio::sync::mpsc::channel(16);
        let broker = GrpcBroker::new(
            broker_tx,
            crate::transport::listen::SocketBase {
                dir: socket_dir.path().to_path_buf(),
                group: socket_group,
                private: true,
            },
            broker_tls,
            broker_closed.clone(),
        )
        .with_translator(Arc::new(runner::BrokerTranslator(process.running_arc())))
        .with_mux(
            connection
                .mux
                .clone()
                .map(|mux| tokio::sync::watch::channel(Some(mux)).1),
        );
        // A net/rpc plugin has neither GRPCBroker nor GRPCStdio: its stdio
        // streams are copied by the net/rpc connection.
        let grpc = connection.netrpc.is_none();
        let broker_task = TaskGuard(grpc.then(|| {
            tokio::spawn(run_broker(
                connection.channel.clone(),
                broker.clone(),
                Announcements {
                    outgoing: broker_rx,
                    closed: Box::pin(broker_closed.clone().cancelled_owned()),
                },
            ))
        }));
        // Without GRPCStdio there is nothing to wait for.
        let (stdio_copied, stdio_done) = tokio::sync::watch::channel(!grpc);
        let stdio_task = TaskGuard(grpc.then(|| {
            let copy = stdio::copy(
                connection.channel.clone(),
                process.name().to_owned(),
                sync_stdout,
                sync_stderr,
            );
            tokio::spawn(async move {
                copy.await;
                let _ = stdio_copied.send(true);
            })
        }));
        Client {
            process,
            socket_dir,
            connection,
            plugins,
            background: Background {
                stdio_task,
                stdio_done,
                broker,
                broker_closed: broker_closed.drop_guard(),
                broker_task,
            },
            mode,
            shutdown_grace,
            start_duration: started.elapsed(),
            plugin_version: VersionCell::new(),
            auto_mtls_keys,
            sandbox,
        }
    }
}

/// Opens `plugin.GRPCBroker/StartStream` and delivers the plugin's
/// announcements to the broker. Plugins without a broker (Python's
/// example) answer Unimplemented; their brokered dials time out.
async fn run_broker(channel: Channel, broker: GrpcBroker, outgoing: Announcements) {
    let mut client = pb::grpc_broker_client::GrpcBrokerClient::new(channel)
        .max_decoding_message_size(crate::grpc::HOST_MAX_MESSAGE_SIZE);
    match client.start_stream(outgoing).await {
        Ok(response) => broker.receive(response.into_inner()).await,
        Err(status) => tracing::debug!("the plugin has no broker: {status}"),
    }
}

/// The host's half of the broker stream. It ends when the client shuts
/// down: while it is open the plugin's graceful shutdown waits on it (its
/// 500 ms drain), whereas go-plugin's host closes the whole connection.
struct Announcements {
    outgoing: tokio::sync::mpsc::Receiver<pb::ConnInfo>,
    closed: std::pin::Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>,
}

impl tokio_stream::Stream for Announcements {
    type Item = pb::ConnInfo;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<pb::ConnInfo>> {
        if self.closed.as_mut().poll(cx).is_ready() {
            return std::task::Poll::Ready(None);
        }
        self.outgoing.poll_recv(cx)
    }
}

/// A background task that ends with its owner.
#[derive(Debug)]
pub(super) struct TaskGuard(Option<tokio::task::JoinHandle<()>>);

impl TaskGuard {
    /// Lets the task finish on its own, for at most `timeout`.
    pub(super) async fn finish(mut self, timeout: Duration) {
        if let Some(task) = self.0.as_mut() {
            let _ = tokio::time::timeout(timeout, task).await;
        }
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

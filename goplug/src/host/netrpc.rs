//! The host side of go-plugin's net/rpc protocol (its `RPCClient`): one
//! connection (through TLS when configured), a yamux session over it, and
//! the control, stdout and stderr streams opened at once, in that order.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::stdio::SyncSink;
use crate::error::{Error, Result};
use crate::netrpc::mux_broker::MuxBroker;
use crate::netrpc::rpc::RpcClient;
use crate::protocol::handshake::PluginAddress;
use crate::transport::dial::{self as connect, TlsConnect};
use crate::yamux;

/// Bound on `Control.Ping` and on dispensing.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// A connected net/rpc plugin.
#[derive(Debug)]
pub(crate) struct NetRpcConnection {
    session: yamux::Session,
    control: RpcClient,
    broker: MuxBroker,
    stdio: Vec<tokio::task::JoinHandle<()>>,
}

/// Connects to a net/rpc plugin at `address`.
pub(crate) async fn connect(
    address: &PluginAddress,
    timeout: Duration,
    tls: Option<TlsConnect>,
    (sync_stdout, sync_stderr): (Option<SyncSink>, Option<SyncSink>),
) -> Result<NetRpcConnection> {
    let failed = |reason: String, error: Option<crate::error::BoxError>| Error::Connect {
        address: address.to_string(),
        reason,
        error,
    };
    let raw = tokio::time::timeout(timeout, connect::dial_socket(address))
        .await
        .map_err(|_| failed(format!("no connection within {timeout:?}"), None))?
        .map_err(|e| failed(e.to_string(), Some(Box::new(e))))?;
    let (session, incoming) = match tls {
        None => yamux_client(raw),
        Some(tls) => {
            let connector = tokio_rustls::TlsConnector::from(tls.config);
            let stream = tokio::time::timeout(timeout, connector.connect(tls.server_name, raw))
                .await
                .map_err(|_| failed(format!("no TLS handshake within {timeout:?}"), None))?
                .map_err(|e| Error::Tls {
                    context: "connecting to the plugin",
                    reason: format!("TLS handshake with {address} failed: {e}"),
                    error: Some(Box::new(e)),
                })?;
            if let (Ok(mut negotiated), Some(version)) =
                (tls.negotiated.lock(), stream.get_ref().1.protocol_version())
            {
                *negotiated = crate::transport::tls::TlsVersion::from_rustls(version);
            }
            yamux_client(stream)
        }
    };
    // SYN goes out with each open, before anything is written: a Go plugin
    // accepts all three before it serves control.
    let open = |what: &'static str| {
        let session = session.clone();
        async move {
            session.open().await.map_err(|e| Error::Connect {
                address: address.to_string(),
                reason: format!("opening the {what} stream: {e}"),
                error: Some(Box::new(e)),
            })
        }
    };
    let control = open("control").await?;
    let stdout = open("stdout").await?;
    let stderr = open("stderr").await?;
    let broker = MuxBroker::new(session.clone());
    tokio::spawn(broker.clone().run(incoming));
    let stdio = vec![
        tokio::spawn(copy_to(stdout, sync_stdout)),
        tokio::spawn(copy_to(stderr, sync_stderr)),
    ];
    let connection = NetRpcConnection {
        session,
        control: RpcClient::new(control),
        broker,
        stdio,
    };
    // Like the gRPC connect: fail `start`, not the first call.
    tokio::time::timeout(timeout.max(Duration::from_secs(1)), connection.ping())
        .await
        .map_err(|_| failed("the plugin did not answer Control.Ping".to_owned(), None))?
        .map_err(|e| failed(e.to_string(), Some(Box::new(e))))?;
    Ok(connection)
}

fn yamux_client<T>(io: T) -> (yamux::Session, yamux::Incoming)
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    yamux::Session::new(io, yamux::Mode::Client, yamux::Config::default())
}

/// Copies a stdio stream to the host's writer (or drains it).
async fn copy_to(mut stream: yamux::Stream, sink: Option<SyncSink>) {
    match sink {
        Some(mut sink) => {
            let _ = tokio::io::copy(&mut stream, &mut sink).await;
            let _ = sink.flush().await;
        }
        None => {
            let _ = tokio::io::copy(&mut stream, &mut tokio::io::sink()).await;
        }
    }
}

impl NetRpcConnection {
    /// `Control.Ping`.
    pub(crate) async fn ping(&self) -> Result<()> {
        tokio::time::timeout(
            CALL_TIMEOUT,
            self.control.call::<bool, ()>("Control.Ping", &true),
        )
        .await
        .map_err(|_| Error::Timeout {
            operation: "Control.Ping",
            timeout: CALL_TIMEOUT,
        })?
    }

    /// `Dispenser.Dispense(name)`, then a client on the brokered stream.
    pub(crate) async fn dispense(&self, name: &str) -> Result<RpcClient> {
        self.dispenser().dispense(name).await
    }

    /// What dispenses this connection's plugins, apart from it.
    pub(crate) fn dispenser(&self) -> Dispenser {
        Dispenser {
            control: self.control.clone(),
            broker: self.broker.clone(),
        }
    }

    pub(crate) fn broker(&self) -> &MuxBroker {
        &self.broker
    }

    /// `Control.Quit` (go-plugin's `RPCClient.Close`); whether the plugin
    /// acknowledged it or ended the connection (it is quitting).
    pub(crate) async fn quit(&self, timeout: Duration) -> bool {
        matches!(
            tokio::time::timeout(
                timeout,
                self.control.call::<bool, ()>("Control.Quit", &true)
            )
            .await,
            // The connection ending instead of the reply: the plugin is on
            // its way out (it may exit before its reply leaves), so it gets
            // the grace period rather than a kill.
            Ok(Ok(()) | Err(crate::error::Error::NetRpc { .. }))
        )
    }

    /// Closes the session; the stdio copies finish with what arrived.
    pub(crate) async fn close(self, timeout: Duration) {
        self.session.close();
        for task in self.stdio {
            let _ = tokio::time::timeout(timeout, task).await;
        }
    }
}

/// Dispenses a net/rpc plugin's clients; cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Dispenser {
    control: RpcClient,
    broker: MuxBroker,
}

impl Dispenser {
    /// `Dispenser.Dispense(name)`, then a client on the brokered stream.
    pub(crate) async fn dispense(&self, name: &str) -> Result<RpcClient> {
        let id: u32 = tokio::time::timeout(
            CALL_TIMEOUT,
            self.control.call("Dispenser.Dispense", &name.to_owned()),
        )
        .await
        .map_err(|_| Error::Timeout {
            operation: "Dispenser.Dispense",
            timeout: CALL_TIMEOUT,
        })??;
        let stream = self.broker.dial(id).await?;
        Ok(RpcClient::new(stream))
    }
}

/// A channel whose every call fails: what [`Client::channel`] returns for a
/// net/rpc plugin, which has no gRPC connection.
///
/// [`Client::channel`]: super::Client::channel
pub(crate) fn unavailable_channel() -> crate::transport::Channel {
    crate::transport::Channel::unavailable("the plugin speaks net/rpc: it has no gRPC channel")
}

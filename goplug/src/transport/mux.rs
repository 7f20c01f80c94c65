//! go-plugin's multiplexed gRPC broker (`PLUGIN_MULTIPLEX_GRPC`, go-plugin
//! ≥ 1.6): one connection between host and plugin carries a yamux session;
//! the host's first stream is the main gRPC connection, and every brokered
//! connection is another stream, announced by a "knock" on the broker's
//! `StartStream` instead of a socket address. That lets plugins run where
//! the host cannot reach new sockets (containers), with one listener.
//!
//! ```text
//!  host (yamux client)                          plugin (yamux server)
//!   dial the plugin's address once ───────────▶ accept the first connection
//!   stream 1: main gRPC ──────────────────────▶ main gRPC server
//!
//!   dial(id):  ConnInfo{id, knock} ───────────▶ an acceptor for id? queue id
//!              ◀─── ConnInfo{id, knock, ack, error}
//!              open a stream ─────────────────▶ next accepted stream → id's server
//! ```
//!
//! The plugin side routes each accepted stream to the oldest pending knock,
//! else to the main server, so brokered connections are made one at a time
//! (go-plugin's rule; each side's dials take a lock). Both roles answer a
//! knock for an id nobody serves with an error ack at once; go-plugin's
//! host lets the dialer time out and its plugin breaks its main listener.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;

use crate::sync::lock;
use crate::yamux;

/// How long a host's brokered listener waits for the stream a knock
/// announced (go-plugin's broker timeout).
const KNOCKED_STREAM_TIMEOUT: Duration = Duration::from_secs(5);

/// One side's end of the multiplexed connection.
#[derive(Debug)]
pub(crate) struct Muxer {
    session: yamux::Session,
    role: Role,
}

#[derive(Debug)]
enum Role {
    /// The host: streams the plugin opens are accepted by whichever
    /// listener a knock unblocked.
    #[cfg_attr(not(feature = "host"), expect(dead_code, reason = "the host side"))]
    Host {
        incoming: Arc<tokio::sync::Mutex<yamux::Incoming>>,
        listeners: Mutex<HashMap<u32, mpsc::Sender<()>>>,
    },
    /// The plugin: a router task hands accepted streams to knocked ids or
    /// to the main server.
    #[cfg_attr(not(feature = "plugin"), expect(dead_code, reason = "the plugin side"))]
    Plugin {
        knocks: Arc<Mutex<VecDeque<u32>>>,
        acceptors: Arc<Mutex<HashMap<u32, mpsc::Sender<MuxStream>>>>,
    },
}

impl Muxer {
    /// The host's side over `io`, a fresh connection to the plugin.
    #[cfg(feature = "host")]
    pub(crate) fn host<T>(io: T) -> Arc<Self>
    where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (session, incoming) =
            yamux::Session::new(io, yamux::Mode::Client, yamux::Config::default());
        Arc::new(Self {
            session,
            role: Role::Host {
                incoming: Arc::new(tokio::sync::Mutex::new(incoming)),
                listeners: Mutex::new(HashMap::new()),
            },
        })
    }

    /// The plugin's side over `io`, the host's one connection. Returns the
    /// main server's incoming streams.
    #[cfg(feature = "plugin")]
    pub(crate) fn plugin<T>(io: T) -> (Arc<Self>, mpsc::Receiver<MuxStream>)
    where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (session, mut incoming) =
            yamux::Session::new(io, yamux::Mode::Server, yamux::Config::default());
        let knocks: Arc<Mutex<VecDeque<u32>>> = Arc::default();
        let acceptors: Arc<Mutex<HashMap<u32, mpsc::Sender<MuxStream>>>> = Arc::default();
        let (main_tx, main_rx) = mpsc::channel(16);
        {
            let (knocks, acceptors) = (knocks.clone(), acceptors.clone());
            tokio::spawn(async move {
                while let Some(stream) = incoming.accept().await {
                    let stream = MuxStream(stream);
                    let knocked = lock(&knocks).pop_front();
                    let Some(id) = knocked else {
                        if main_tx.send(stream).await.is_err() {
                            return;
                        }
                        continue;
                    };
                    let acceptor = lock(&acceptors).get(&id).cloned();
                    match acceptor {
                        Some(acceptor) => {
                            tracing::debug!(id, "sending conn to brokered listener");
                            let _ = acceptor.send(stream).await;
                        }
                        None => tracing::debug!(id, "a knocked stream has no listener any more"),
                    }
                }
            });
        }
        (
            Arc::new(Self {
                session,
                role: Role::Plugin { knocks, acceptors },
            }),
            main_rx,
        )
    }

    /// Opens a stream to the other side (after a knock, for the broker).
    pub(crate) async fn open(&self) -> io::Result<MuxStream> {
        self.session
            .open()
            .await
            .map(MuxStream)
            .map_err(|e| io::Error::other(format!("error dialling new stream: {e}")))
    }

    /// Registers a brokered server for `id`: the returned streams are the
    /// connections the other side makes to it after knocking.
    pub(crate) fn listen(&self, id: u32) -> mpsc::Receiver<io::Result<MuxStream>> {
        let (tx, rx) = mpsc::channel(1);
        match &self.role {
            Role::Host {
                incoming,
                listeners,
            } => {
                let (permit_tx, mut permits) = mpsc::channel::<()>(1);
                lock(listeners).insert(id, permit_tx);
                let incoming = incoming.clone();
                tokio::spawn(async move {
                    while permits.recv().await.is_some() {
                        let accepted = {
                            let mut incoming = incoming.lock().await;
                            tokio::time::timeout(KNOCKED_STREAM_TIMEOUT, incoming.accept()).await
                        };
                        let item = match accepted {
                            Ok(Some(stream)) => Ok(MuxStream(stream)),
                            Ok(None) => return,
                            Err(_) => Err(io::Error::new(
                                io::ErrorKind::TimedOut,
                                format!("no stream for broker id {id} after its knock"),
                            )),
                        };
                        if tx.send(item).await.is_err() {
                            return;
                        }
                    }
                });
            }
            Role::Plugin { acceptors, .. } => {
                let (stream_tx, mut streams) = mpsc::channel::<MuxStream>(1);
                lock(acceptors).insert(id, stream_tx);
                tokio::spawn(async move {
                    while let Some(stream) = streams.recv().await {
                        if tx.send(Ok(stream)).await.is_err() {
                            return;
                        }
                    }
                });
            }
        }
        rx
    }

    /// Forgets the brokered server for `id`.
    pub(crate) fn unlisten(&self, id: u32) {
        match &self.role {
            Role::Host { listeners, .. } => {
                lock(listeners).remove(&id);
            }
            Role::Plugin { acceptors, .. } => {
                lock(acceptors).remove(&id);
            }
        }
    }

    /// The other side knocked for `id`: routes its next stream there.
    /// The error text goes back in the ack (go-plugin's `no listener for id N`).
    pub(crate) fn accept_knock(&self, id: u32) -> Result<(), String> {
        let no_listener = || format!("no listener for id {id}");
        match &self.role {
            Role::Host { listeners, .. } => {
                let permit = lock(listeners).get(&id).cloned().ok_or_else(no_listener)?;
                permit
                    .try_send(())
                    .map_err(|_| format!("a connection to id {id} is already being made"))
            }
            Role::Plugin { knocks, acceptors } => {
                if !lock(acceptors).contains_key(&id) {
                    return Err(no_listener());
                }
                lock(knocks).push_back(id);
                Ok(())
            }
        }
    }

    /// Ends the session: every stream on it fails.
    pub(crate) fn close(&self) {
        self.session.go_away();
    }
}

/// A yamux stream as a connection tonic can serve.
#[derive(Debug)]
pub(crate) struct MuxStream(yamux::Stream);

impl AsyncRead for MuxStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for MuxStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for MuxStream {
    type ConnectInfo = ();

    fn connect_info(&self) -> Self::ConnectInfo {}
}

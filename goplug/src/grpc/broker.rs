//! go-plugin's gRPC broker (`plugin.GRPCBroker`, classic mode): either side
//! serves an extra gRPC server under a numeric id, tells the other side
//! where it listens over the `StartStream` stream, and the other side dials
//! it by id. The id itself travels in the application's own messages (for
//! example a callback server's id in a request), as in go-plugin.
//!
//! Ids start at 1 on each side; waits are 5 s, as go-plugin's. Under
//! AutoMTLS brokered connections use the same certificates, both ways.
//!
//! In multiplexed mode (`PLUGIN_MULTIPLEX_GRPC`, see the host's
//! `ClientBuilder::grpc_broker_multiplex`)
//! the same calls make yamux streams over the one host–plugin connection
//! instead of new sockets; the API does not change.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::transport::Channel;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::grpc::GrpcService;
use crate::grpc::pb;
use crate::protocol::handshake::PluginAddress;
use crate::sync::lock;
use crate::transport::AddrTranslator;
use crate::transport::dial::{self as connect, TlsConnect};
use crate::transport::listen::{SocketBase, bind_unix_in};
use crate::transport::mux::Muxer;

/// go-plugin's broker timeouts: waiting for a connection's address, and
/// how long an address nobody dialed is kept.
const BROKER_TIMEOUT: Duration = Duration::from_secs(5);

/// TLS of brokered connections: the same as the main connection.
#[derive(Clone, Debug)]
pub(crate) struct BrokerTls {
    pub(crate) server: Arc<rustls::ServerConfig>,
    pub(crate) client: TlsConnect,
}

/// One side's broker. Cheap to clone; all clones are the same broker.
#[derive(Clone)]
pub struct GrpcBroker {
    inner: Arc<Inner>,
}

struct Inner {
    next_id: AtomicU32,
    outgoing: mpsc::Sender<pb::ConnInfo>,
    /// Announcements and dials, under one lock so an announcement that
    /// races a dial is never parked where the dial already looked.
    rendezvous: Mutex<Rendezvous>,
    socket_base: SocketBase,
    tls: Option<BrokerTls>,
    closed: CancellationToken,
    /// Host side: the runner's address translation.
    translator: Option<Arc<dyn AddrTranslator>>,
    /// Multiplexed mode: brokered connections are streams of this session,
    /// which a plugin only has once the host has connected.
    mux: Option<tokio::sync::watch::Receiver<Option<Arc<Muxer>>>>,
    /// One knock and stream at a time (go-plugin's `dialMutex`): the other
    /// side routes streams to knocks in order.
    mux_dial: tokio::sync::Mutex<()>,
}

impl fmt::Debug for GrpcBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcBroker")
            .field("next_id", &self.inner.next_id.load(Ordering::Relaxed))
            .field("tls", &self.inner.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// A brokered server: it serves until this is dropped, [`stop`]ped, or the
/// broker closes.
///
/// [`stop`]: BrokeredServer::stop
#[derive(Debug)]
#[must_use = "the server stops when this is dropped"]
pub struct BrokeredServer {
    id: u32,
    stop: CancellationToken,
}

impl BrokeredServer {
    /// The broker id the server was announced under.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Stops the server and removes its socket.
    pub fn stop(self) {}
}

impl Drop for BrokeredServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl GrpcBroker {
    /// A broker whose announcements go out on `outgoing`.
    pub(crate) fn new(
        outgoing: mpsc::Sender<pb::ConnInfo>,
        socket_base: SocketBase,
        tls: Option<BrokerTls>,
        closed: CancellationToken,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                next_id: AtomicU32::new(0),
                outgoing,
                rendezvous: Mutex::new(Rendezvous::default()),
                socket_base,
                tls,
                closed,
                translator: None,
                mux: None,
                mux_dial: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Switches to multiplexed mode over the session `mux` holds (or will).
    pub(crate) fn with_mux(
        mut self,
        mux: Option<tokio::sync::watch::Receiver<Option<Arc<Muxer>>>>,
    ) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.mux = mux;
        }
        self
    }

    /// The multiplexed session, in multiplexed mode: waits (5 s) for a
    /// plugin's host to connect.
    async fn muxer(&self, id: u32) -> Result<Option<Arc<Muxer>>> {
        let Some(mux) = &self.inner.mux else {
            return Ok(None);
        };
        let mut mux = mux.clone();
        match tokio::time::timeout(BROKER_TIMEOUT, mux.wait_for(Option::is_some)).await {
            Ok(Ok(muxer)) => Ok(muxer.clone()),
            _ => Err(Error::broker(
                id,
                "timed out waiting for the multiplexed connection to be established".to_owned(),
            )),
        }
    }

    /// Translates addresses through the runner of the plugin (host side).
    #[cfg(feature = "host")]
    pub(crate) fn with_translator(mut self, translator: Arc<dyn AddrTranslator>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.translator = Some(translator);
        }
        self
    }

    /// A new id for [`accept_and_serve`](Self::accept_and_serve): 1, 2, …
    pub fn next_id(&self) -> u32 {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Serves `service` on a new socket and announces it to the other side
    /// under `id`. Returns once the server accepts connections.
    ///
    /// # Errors
    ///
    /// [`Error::Listen`] when no socket can be made, [`Error::Broker`] when
    /// the announcement cannot be sent (the connection is gone).
    pub async fn accept_and_serve<S>(&self, id: u32, service: S) -> Result<BrokeredServer>
    where
        S: GrpcService,
    {
        if let Some(mux) = self.muxer(id).await? {
            return Ok(self.accept_and_serve_mux(mux, id, service));
        }
        let listener = bind_unix_in(&self.inner.socket_base)?;
        let local = listener.address()?;
        let address = match &self.inner.translator {
            Some(translator) => translator.host_to_plugin(local),
            None => local,
        };
        let stop = self.inner.closed.child_token();
        let server = crate::transport::serve::server_builder().add_service(service);
        let tls = self.inner.tls.as_ref().map(|tls| tls.server.clone());
        let serving = stop.clone();
        tokio::spawn(async move {
            if let Err(e) =
                crate::transport::serve::serve_listener(server, listener, tls, &serving).await
            {
                tracing::debug!(id, "brokered server stopped: {e}");
            }
        });
        let info = pb::ConnInfo {
            service_id: id,
            network: address.network().to_owned(),
            address: address.address_string(),
            knock: None,
        };
        self.inner.outgoing.send(info).await.map_err(|_| {
            Error::broker(
                id,
                "the broker stream to the other side is closed".to_owned(),
            )
        })?;
        Ok(BrokeredServer { id, stop })
    }

    /// Connects to the server the other side announced under `id`, waiting
    /// up to 5 s for the announcement.
    ///
    /// # Errors
    ///
    /// [`Error::Broker`] with go-plugin's "timeout waiting for connection
    /// info" when nothing is announced in time; connection errors.
    pub async fn dial(&self, id: u32) -> Result<Channel> {
        if let Some(mux) = self.muxer(id).await? {
            return self.dial_mux(mux, id).await;
        }
        let info = self.wait_for(id).await?;
        let address = match info.network.as_str() {
            "unix" => PluginAddress::Unix(PathBuf::from(&info.address)),
            "tcp" => PluginAddress::Tcp(info.address.parse().map_err(|_| {
                Error::broker(id, format!("invalid tcp address {:?}", info.address))
            })?),
            other => {
                return Err(Error::broker(id, format!("unknown network {other:?}")));
            }
        };
        let address = match &self.inner.translator {
            Some(translator) => translator.plugin_to_host(address),
            None => address,
        };
        let tls = self.inner.tls.as_ref().map(|tls| tls.client.clone());
        connect::connect(&address, BROKER_TIMEOUT, tls).await
    }

    /// Multiplexed `accept_and_serve`: no socket, no announcement; the
    /// server gets the streams the other side opens after knocking for `id`.
    fn accept_and_serve_mux<S>(&self, mux: Arc<Muxer>, id: u32, service: S) -> BrokeredServer
    where
        S: GrpcService,
    {
        let streams = tokio_stream::wrappers::ReceiverStream::new(mux.listen(id));
        let stop = self.inner.closed.child_token();
        let server = crate::transport::serve::server_builder().add_service(service);
        let tls = self.inner.tls.as_ref().map(|tls| tls.server.clone());
        let serving = stop.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::transport::serve::serve_on(server, streams, tls, &serving).await
            {
                tracing::debug!(id, "brokered server stopped: {e}");
            }
            mux.unlisten(id);
        });
        BrokeredServer { id, stop }
    }

    /// Multiplexed `dial`: each connection (and reconnection) knocks for
    /// `id`, waits for the ack, then opens a stream.
    async fn dial_mux(&self, mux: Arc<Muxer>, id: u32) -> Result<Channel> {
        let broker = self.clone();
        let dialer: connect::Dialer = Arc::new(move || {
            let (broker, mux) = (broker.clone(), mux.clone());
            Box::pin(async move {
                let _one_at_a_time = broker.inner.mux_dial.lock().await;
                broker.knock(id).await.map_err(|e| {
                    std::io::Error::other(format!("failed to knock before dialling: {e}"))
                })?;
                Ok(Box::new(mux.open().await?) as connect::BoxedIo)
            })
        });
        let tls = self.inner.tls.as_ref().map(|tls| tls.client.clone());
        let label = PluginAddress::Unix(PathBuf::from(format!("multiplexed-broker-id-{id}")));
        connect::connect_with(dialer, &label, BROKER_TIMEOUT, tls)
            .await
            .map_err(|e| Error::Broker {
                id,
                reason: e.to_string(),
                error: Some(Box::new(e)),
            })
    }

    /// Sends a knock for `id` and waits (5 s) for the other side's ack.
    async fn knock(&self, id: u32) -> Result<()> {
        let knock = knock_info(id, false, String::new());
        self.inner.outgoing.send(knock).await.map_err(|_| {
            Error::broker(
                id,
                "the broker stream to the other side is closed".to_owned(),
            )
        })?;
        let ack = self.wait_for(id).await.map_err(|_| {
            Error::broker(
                id,
                format!("timeout waiting for multiplexing knock handshake on id {id}"),
            )
        })?;
        match ack.knock {
            Some(knock) if knock.knock && knock.ack && knock.error.is_empty() => Ok(()),
            Some(knock) if knock.knock && knock.ack => Err(Error::broker(
                id,
                format!("failed to knock for id {id}: {}", knock.error),
            )),
            other => Err(Error::broker(
                id,
                format!(
                    "handshake failed for multiplexing on id {id}; expected knock and ack, but got {other:?}"
                ),
            )),
        }
    }

    /// Answers the other side's knock for `id`.
    fn answer_knock(&self, id: u32) {
        let muxer = self.inner.mux.as_ref().and_then(|mux| mux.borrow().clone());
        let error = match muxer {
            Some(mux) => mux.accept_knock(id).err().unwrap_or_default(),
            None => "this side does not multiplex its broker".to_owned(),
        };
        let ack = knock_info(id, true, error);
        let outgoing = self.inner.outgoing.clone();
        tokio::spawn(async move {
            let _ = outgoing.send(ack).await;
        });
    }

    async fn wait_for(&self, id: u32) -> Result<pb::ConnInfo> {
        let receiver = {
            let mut rendezvous = lock(&self.inner.rendezvous);
            if let Some((info, _)) = rendezvous.announced.remove(&id) {
                return Ok(info);
            }
            let (tx, rx) = oneshot::channel();
            rendezvous.waiting.insert(id, tx);
            rx
        };
        let outcome = tokio::time::timeout(BROKER_TIMEOUT, receiver).await;
        lock(&self.inner.rendezvous).waiting.remove(&id);
        match outcome {
            Ok(Ok(info)) => Ok(info),
            Ok(Err(_)) | Err(_) => Err(Error::broker(
                id,
                "timeout waiting for connection info".to_owned(),
            )),
        }
    }

    /// Handles an announcement from the other side.
    pub(crate) fn deliver(&self, info: pb::ConnInfo) {
        if info
            .knock
            .as_ref()
            .is_some_and(|knock| knock.knock && !knock.ack)
        {
            self.answer_knock(info.service_id);
            return;
        }
        let id = info.service_id;
        let mut rendezvous = lock(&self.inner.rendezvous);
        let info = match rendezvous.waiting.remove(&id) {
            // A dial that timed out a moment ago left a closed sender:
            // park the announcement for the next dial instead.
            Some(waiter) => match waiter.send(info) {
                Ok(()) => return,
                Err(info) => info,
            },
            None => info,
        };
        rendezvous
            .announced
            .retain(|_, (_, at)| at.elapsed() < BROKER_TIMEOUT);
        rendezvous.announced.insert(id, (info, Instant::now()));
    }

    /// Reads the other side's announcements until the stream ends.
    pub(crate) async fn receive(&self, mut inbound: tonic::Streaming<pb::ConnInfo>) {
        loop {
            tokio::select! {
                message = inbound.message() => match message {
                    Ok(Some(info)) => self.deliver(info),
                    Ok(None) => return,
                    Err(status) => {
                        tracing::debug!("broker stream ended: {status}");
                        return;
                    }
                },
                () = self.inner.closed.cancelled() => return,
            }
        }
    }
}

#[derive(Default)]
struct Rendezvous {
    /// Addresses the peer announced that nobody has dialed yet.
    announced: HashMap<u32, (pb::ConnInfo, Instant)>,
    /// Dials waiting for the peer's announcement.
    waiting: HashMap<u32, oneshot::Sender<pb::ConnInfo>>,
}

/// A knock (`ack` false) or its answer, as go-plugin's multiplexed broker sends them.
fn knock_info(id: u32, ack: bool, error: String) -> pb::ConnInfo {
    pb::ConnInfo {
        service_id: id,
        network: String::new(),
        address: String::new(),
        knock: Some(pb::conn_info::Knock {
            knock: true,
            ack,
            error,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker() -> GrpcBroker {
        let (outgoing, _) = mpsc::channel(1);
        GrpcBroker::new(
            outgoing,
            SocketBase {
                dir: std::env::temp_dir(),
                group: None,
                private: false,
            },
            None,
            CancellationToken::new(),
        )
    }

    fn announcement(id: u32) -> pb::ConnInfo {
        pb::ConnInfo {
            service_id: id,
            network: "unix".to_owned(),
            address: format!("/tmp/plugin{id}"),
            knock: None,
        }
    }

    /// Announcements racing dials on other threads: every dial gets its
    /// address, whichever side comes first (a parked announcement used to
    /// be missed by a dial that registered in between).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_announcement_reaches_its_dial_whatever_the_order() {
        let broker = broker();
        let mut dials = Vec::new();
        for id in 1..=10_000 {
            let dialing = broker.clone();
            dials.push(tokio::spawn(async move { dialing.wait_for(id).await }));
            let announcing = broker.clone();
            tokio::spawn(async move { announcing.deliver(announcement(id)) });
        }
        for (id, dial) in (1..).zip(dials) {
            let info = dial.await.expect("dial task").expect("announcement");
            assert_eq!(info.service_id, id);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_dial_without_an_announcement_times_out_with_go_plugins_text() {
        let error = broker().wait_for(7).await.expect_err("nothing announced");
        assert!(
            error
                .to_string()
                .contains("timeout waiting for connection info"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn an_announcement_before_the_dial_is_kept_for_it() {
        let broker = broker();
        broker.deliver(announcement(3));
        let info = broker.wait_for(3).await.expect("parked announcement");
        assert_eq!(info.address, "/tmp/plugin3");
    }
}

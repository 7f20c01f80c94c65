//! go-plugin's `MuxBroker`: extra yamux streams of a net/rpc connection,
//! named by a numeric id. The dialer opens a stream and writes the id (u32,
//! little-endian); the acceptor answers with the same four bytes. Ids
//! start at 1 on each side; every wait is 5 s, as go-plugin's.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::sync::lock;
use crate::yamux;

/// go-plugin's MuxBroker timeout, for accepts, acks and unclaimed streams.
pub(crate) const MUX_BROKER_TIMEOUT: Duration = Duration::from_secs(5);

/// One side's broker of a net/rpc connection. Cheap to clone.
#[derive(Clone)]
pub struct MuxBroker {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None` for a broker of no connection.
    session: Option<yamux::Session>,
    next_id: AtomicU32,
    /// Streams that arrived for an id nobody has accepted yet.
    arrived: Mutex<HashMap<u32, (yamux::Stream, Instant)>>,
    /// Accepts waiting for their id's stream.
    waiting: Mutex<HashMap<u32, oneshot::Sender<yamux::Stream>>>,
}

impl std::fmt::Debug for MuxBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MuxBroker")
            .field("next_id", &self.inner.next_id.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl MuxBroker {
    /// A broker over `session`; [`run`](Self::run) must get its incoming streams.
    pub(crate) fn new(session: yamux::Session) -> Self {
        Self::over(Some(session))
    }

    /// A broker of no connection, given to a supervised plugin's client:
    /// a broker belongs to one process, so it cannot follow restarts.
    /// Its `accept` and `dial` fail at once.
    #[cfg(feature = "host")]
    pub(crate) fn detached() -> Self {
        Self::over(None)
    }

    fn over(session: Option<yamux::Session>) -> Self {
        Self {
            inner: Arc::new(Inner {
                session,
                next_id: AtomicU32::new(0),
                arrived: Mutex::new(HashMap::new()),
                waiting: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// A new id to [`accept`](Self::accept) on: 1, 2, …
    pub fn next_id(&self) -> u32 {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Reads the id of every stream the other side opens and hands the
    /// stream to whoever accepts that id. Ends with the session.
    pub(crate) async fn run(self, mut incoming: yamux::Incoming) {
        while let Some(mut stream) = incoming.accept().await {
            let broker = self.clone();
            tokio::spawn(async move {
                let mut id = [0u8; 4];
                match tokio::time::timeout(MUX_BROKER_TIMEOUT, stream.read_exact(&mut id)).await {
                    Ok(Ok(_)) => broker.arrive(u32::from_le_bytes(id), stream),
                    Ok(Err(e)) => {
                        tracing::debug!("[ERR] plugin: error reading broker stream id: {e}")
                    }
                    Err(_) => tracing::debug!("a broker stream sent no id within 5 s"),
                }
            });
        }
    }

    fn connected(&self, id: u32) -> Result<&yamux::Session> {
        self.inner.session.as_ref().ok_or_else(|| {
            broker_error(
                id,
                "the broker of a supervised plugin belongs to no process: \
                 it does not survive restarts; dispense from a `Client` to use one"
                    .to_owned(),
            )
        })
    }

    fn arrive(&self, id: u32, stream: yamux::Stream) {
        // Both maps under their locks, in the order `accept` takes them, so
        // a stream and its accept cannot miss each other.
        let mut waiting = lock(&self.inner.waiting);
        if let Some(waiter) = waiting.remove(&id) {
            drop(waiting);
            // An accept that gave up in the meantime drops (closes) it.
            let _ = waiter.send(stream);
            return;
        }
        let mut arrived = lock(&self.inner.arrived);
        // Unclaimed streams are dropped (closed) after 5 s, as go-plugin's.
        arrived.retain(|_, (_, at)| at.elapsed() < MUX_BROKER_TIMEOUT);
        arrived.insert(id, (stream, Instant::now()));
    }

    /// Waits (5 s) for the other side to dial `id`, acknowledges, and
    /// returns the stream.
    ///
    /// # Errors
    ///
    /// [`Error::Broker`] with go-plugin's "timeout waiting for accept".
    pub async fn accept(&self, id: u32) -> Result<yamux::Stream> {
        self.connected(id)?;
        let early = {
            let mut waiting = lock(&self.inner.waiting);
            let mut arrived = lock(&self.inner.arrived);
            match arrived.remove(&id) {
                Some((stream, at)) if at.elapsed() < MUX_BROKER_TIMEOUT => Ok(stream),
                _ => {
                    let (tx, rx) = oneshot::channel();
                    waiting.insert(id, tx);
                    Err(rx)
                }
            }
        };
        let mut stream = match early {
            Ok(stream) => stream,
            Err(rx) => {
                let outcome = tokio::time::timeout(MUX_BROKER_TIMEOUT, rx).await;
                lock(&self.inner.waiting).remove(&id);
                match outcome {
                    Ok(Ok(stream)) => stream,
                    _ => return Err(broker_error(id, "timeout waiting for accept".to_owned())),
                }
            }
        };
        let ack = async {
            stream.write_all(&id.to_le_bytes()).await?;
            stream.flush().await
        };
        tokio::time::timeout(MUX_BROKER_TIMEOUT, ack)
            .await
            .map_err(|_| broker_error(id, "timeout acknowledging the stream".to_owned()))?
            .map_err(|e| broker_error(id, format!("acknowledging the stream: {e}")))?;
        Ok(stream)
    }

    /// Opens a stream to the other side's `id` and waits (5 s) for its ack.
    ///
    /// # Errors
    ///
    /// [`Error::Broker`]: the session is gone, no ack in time, or go-plugin's
    /// "bad ack".
    pub async fn dial(&self, id: u32) -> Result<yamux::Stream> {
        let session = self.connected(id)?;
        let dialing = async {
            let mut stream = session
                .open()
                .await
                .map_err(|e| broker_error(id, format!("opening a stream: {e}")))?;
            stream
                .write_all(&id.to_le_bytes())
                .await
                .map_err(|e| broker_error(id, format!("sending the id: {e}")))?;
            let mut ack = [0u8; 4];
            stream
                .read_exact(&mut ack)
                .await
                .map_err(|e| broker_error(id, format!("reading the ack: {e}")))?;
            let ack = u32::from_le_bytes(ack);
            if ack != id {
                return Err(broker_error(id, format!("bad ack: {ack} (expected {id})")));
            }
            Ok(stream)
        };
        tokio::time::timeout(MUX_BROKER_TIMEOUT, dialing)
            .await
            .map_err(|_| broker_error(id, "timeout waiting for the stream's ack".to_owned()))?
    }
}

fn broker_error(id: u32, reason: String) -> Error {
    Error::broker(id, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (MuxBroker, MuxBroker) {
        let (a, b) = tokio::io::duplex(1 << 16);
        let (client, client_in) =
            yamux::Session::new(a, yamux::Mode::Client, yamux::Config::default());
        let (server, server_in) =
            yamux::Session::new(b, yamux::Mode::Server, yamux::Config::default());
        let (host, plugin) = (MuxBroker::new(client), MuxBroker::new(server));
        tokio::spawn(host.clone().run(client_in));
        tokio::spawn(plugin.clone().run(server_in));
        (host, plugin)
    }

    #[tokio::test]
    async fn dial_and_accept_meet_in_either_order() {
        let (host, plugin) = pair();
        let id = plugin.next_id();
        assert_eq!(id, 1);
        // Accept first, then dial.
        let accepting = tokio::spawn({
            let plugin = plugin.clone();
            async move { plugin.accept(id).await }
        });
        let mut dialed = host.dial(id).await.unwrap();
        let mut accepted = accepting.await.unwrap().unwrap();
        dialed.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        accepted.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        // Dial first: the stream waits for the accept.
        let dialing = tokio::spawn({
            let host = host.clone();
            async move { host.dial(7).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _accepted = plugin.accept(7).await.unwrap();
        dialing.await.unwrap().unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn unmatched_ids_time_out_with_go_plugins_text() {
        let (host, plugin) = pair();
        let err = plugin.accept(3).await.unwrap_err();
        assert!(
            err.to_string().contains("timeout waiting for accept"),
            "{err}"
        );
        let err = host.dial(4).await.unwrap_err();
        assert!(matches!(err, Error::Broker { id: 4, .. }), "{err:?}");
    }
}

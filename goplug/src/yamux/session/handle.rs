//! The handles: [`Session`] to open streams, ping and close, and
//! [`Incoming`] for the streams the peer opens.

use std::fmt;
use std::future::poll_fn;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::super::frame::{self, GO_AWAY_NORMAL, Header};
use super::super::stream::{Stream, StreamState};
use super::super::{Config, Mode, YamuxError};
use super::shared::{Guard, Shared};
use super::state::CloseMode;
use super::{reader, timer, writer};

/// A yamux session: a cheap, cloneable handle to open streams, ping and
/// close. See the [module docs](crate::yamux).
#[derive(Clone)]
pub struct Session {
    shared: Arc<Shared>,
    guard: Arc<Guard>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("mode", &self.shared.mode)
            .field("closed", &self.shared.lock().closed)
            .finish()
    }
}

impl Session {
    /// Starts a session over `io`, spawning its tasks on the current tokio
    /// runtime (panics outside one).
    pub fn new<T>(io: T, mode: Mode, config: Config) -> (Session, Incoming)
    where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let shared = Arc::new(Shared::new(mode, config));
        let (rd, wr) = tokio::io::split(io);
        tokio::spawn(reader::reader_task(shared.clone(), rd));
        tokio::spawn(writer::writer_task(shared.clone(), wr));
        tokio::spawn(timer::timer_task(shared.clone()));
        let guard = Arc::new(Guard(shared.clone()));
        let incoming = Incoming {
            shared: shared.clone(),
            guard: guard.clone(),
        };
        (Session { shared, guard }, incoming)
    }

    /// Opens a stream. The SYN goes out at once; this does not wait for the
    /// peer's ACK (data may be written right away). Waits only while
    /// `accept_backlog` of our streams are unacknowledged.
    pub async fn open(&self) -> Result<Stream, YamuxError> {
        self.check_open()?;
        let Ok(permit) = self.shared.open_permits.clone().acquire_owned().await else {
            return Err(self.closed_error());
        };
        let shared = &self.shared;
        let mut inner = shared.lock();
        if let Some(cause) = &inner.closed {
            return Err(cause.clone());
        }
        if inner.remote_go_away {
            return Err(YamuxError::RemoteGoAway {
                code: GO_AWAY_NORMAL,
            });
        }
        let Ok(id) = u32::try_from(inner.next_id) else {
            return Err(YamuxError::StreamsExhausted);
        };
        inner.next_id += 2;
        inner
            .streams
            .insert(id, StreamState::new(true, Some(permit)));
        if let Some(timeout) = shared.config.open_timeout {
            inner
                .open_deadlines
                .push_back((Instant::now() + timeout, id));
            shared.timer_wake.notify_one();
        }
        shared.mark_ready(&mut inner, id);
        drop(inner);
        Ok(Stream::new(id, shared.clone(), self.guard.clone()))
    }

    fn check_open(&self) -> Result<(), YamuxError> {
        let inner = self.shared.lock();
        if let Some(cause) = &inner.closed {
            return Err(cause.clone());
        }
        if inner.remote_go_away {
            return Err(YamuxError::RemoteGoAway {
                code: GO_AWAY_NORMAL,
            });
        }
        Ok(())
    }

    fn closed_error(&self) -> YamuxError {
        self.shared
            .lock()
            .closed
            .clone()
            .unwrap_or(YamuxError::SessionClosed)
    }

    /// Pings the peer and returns the round-trip time; fails after the
    /// write timeout.
    pub async fn ping(&self) -> Result<Duration, YamuxError> {
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut inner = self.shared.lock();
            if let Some(cause) = &inner.closed {
                return Err(cause.clone());
            }
            let id = inner.next_ping_id;
            inner.next_ping_id = id.wrapping_add(1);
            inner.pings.insert(id, tx);
            self.shared
                .push_control(&mut inner, Header::ping(frame::Flags::SYN, id));
            id
        };
        let start = Instant::now();
        let timeout = self.shared.config.write_timeout;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(())) => Ok(start.elapsed()),
            Ok(Err(_)) => Err(self.closed_error()),
            Err(_) => {
                self.shared.lock().pings.remove(&id);
                Err(YamuxError::PingTimeout { timeout })
            }
        }
    }

    /// Sends GoAway(normal): the peer may open no more streams (we refuse
    /// them with RST); existing streams go on.
    pub fn go_away(&self) {
        let mut inner = self.shared.lock();
        if inner.closed.is_none() && !inner.local_go_away {
            inner.local_go_away = true;
            self.shared
                .push_control(&mut inner, Header::go_away(GO_AWAY_NORMAL));
        }
    }

    /// Closes the session, without waiting: what streams already wrote is
    /// still sent, then GoAway(normal), then the connection is shut down
    /// (see [`closed`](Self::closed)). Every stream fails with
    /// [`YamuxError::SessionClosed`] from now on. Dropping every handle
    /// does the same.
    pub fn close(&self) {
        self.shared
            .close(YamuxError::SessionClosed, CloseMode::Drain);
    }

    /// Waits until the session has ended, however it ended, and its
    /// connection is shut down. After [`close`](Self::close) that takes at
    /// most about twice the write timeout.
    pub async fn closed(&self) {
        loop {
            let mut notified = pin!(self.shared.finished.notified());
            notified.as_mut().enable();
            if self.shared.lock().writer_finished {
                return;
            }
            notified.await;
        }
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().closed.is_some()
    }

    /// Why the session ended, if it has.
    pub fn close_reason(&self) -> Option<YamuxError> {
        self.shared.lock().closed.clone()
    }

    /// Which end this is.
    pub fn mode(&self) -> Mode {
        self.shared.mode
    }

    #[cfg(test)]
    pub(in crate::yamux) fn shared_weak(&self) -> std::sync::Weak<Shared> {
        Arc::downgrade(&self.shared)
    }

    #[cfg(test)]
    pub(in crate::yamux) fn with_inner<R>(
        &self,
        f: impl FnOnce(&mut super::state::Inner) -> R,
    ) -> R {
        f(&mut self.shared.lock())
    }
}

/// The streams the peer opens, in order. Dropping it refuses further
/// streams (and those not yet accepted) with RST.
pub struct Incoming {
    shared: Arc<Shared>,
    guard: Arc<Guard>,
}

impl fmt::Debug for Incoming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Incoming")
            .field("mode", &self.shared.mode)
            .finish_non_exhaustive()
    }
}

impl Incoming {
    /// The next stream the peer opened; `None` once the session has ended.
    /// Sends the ACK at once.
    pub async fn accept(&mut self) -> Option<Stream> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Poll version of [`accept`](Self::accept).
    pub fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<Option<Stream>> {
        let shared = &self.shared;
        let mut inner = shared.lock();
        if inner.closed.is_some() {
            return Poll::Ready(None);
        }
        while let Some(id) = inner.accept_queue.pop_front() {
            let Some(st) = inner.streams.get_mut(&id) else {
                continue;
            };
            if st.reset.is_none() {
                st.pending_flags |= frame::Flags::ACK;
                shared.mark_ready(&mut inner, id);
            }
            drop(inner);
            return Poll::Ready(Some(Stream::new(id, shared.clone(), self.guard.clone())));
        }
        inner.accept_waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl tokio_stream::Stream for Incoming {
    type Item = Stream;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Stream>> {
        self.get_mut().poll_accept(cx)
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        let mut inner = self.shared.lock();
        inner.incoming_alive = false;
        inner.accept_waker = None;
        while let Some(id) = inner.accept_queue.pop_front() {
            if let Some(st) = inner.streams.get_mut(&id) {
                st.dropped = true;
                st.set_reset(YamuxError::StreamReset { id }, true);
                self.shared.mark_ready(&mut inner, id);
            }
        }
    }
}

//! The session: shared state, the handles, and the reader, writer and
//! timer tasks.
//!
//! All state sits behind one `std::sync::Mutex` (never held across an
//! await). The reader parses frames and updates it; streams and handles
//! update it and mark streams "ready"; the writer turns ready streams and
//! queued control frames into bytes. Frames are computed when the writer
//! gets to them, so a stream never has more than one window update or one
//! frame of data queued.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::poll_fn;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{
    AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter, ReadHalf, WriteHalf,
};
use tokio::sync::{Notify, Semaphore, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::frame::{self, FrameType, GO_AWAY_NORMAL, GO_AWAY_PROTOCOL_ERROR, HEADER_LEN, Header};
use super::stream::{OutFrame, Stream, StreamState};
use super::{Config, Mode, ProtocolError, YamuxError};

/// Control frames (ping replies, RSTs of refused streams) queued beyond
/// this stop the reader until the writer catches up: a ping flood costs the
/// flooder, not our memory.
pub(super) const CONTROL_LIMIT: usize = 1024;

/// The writer writes at most about this much per flush.
const BATCH_BYTES: usize = 256 * 1024;

/// What the writer does once the session is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CloseMode {
    /// Write what is queued, then GoAway(normal).
    Drain,
    /// Write GoAway(code) only.
    GoAway(u32),
    /// Write nothing more.
    Abort,
}

#[derive(Clone, Copy, Debug)]
enum Keepalive {
    Off,
    /// Next ping at this instant.
    Idle(Instant),
    /// Ping `id` sent, no reply yet; give up at the instant.
    Waiting(u32, Instant),
}

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) streams: HashMap<u32, StreamState>,
    /// Streams with something for the writer, each at most once.
    ready: VecDeque<u32>,
    /// Session-level frames and RSTs of streams we do not keep.
    pub(super) control: VecDeque<Header>,
    /// Inbound streams waiting for `accept`.
    accept_queue: VecDeque<u32>,
    accept_waker: Option<Waker>,
    incoming_alive: bool,
    /// Next id we open (u64: no overflow at the end of the id space).
    next_id: u64,
    /// Highest id the peer opened.
    max_inbound_id: u32,
    local_go_away: bool,
    remote_go_away: bool,
    /// Why the session ended, once it has.
    pub(super) closed: Option<YamuxError>,
    close_mode: CloseMode,
    writer_finished: bool,
    pings: HashMap<u32, oneshot::Sender<()>>,
    next_ping_id: u32,
    keepalive: Keepalive,
    /// Outbound streams waiting for ACK, in deadline order.
    open_deadlines: VecDeque<(Instant, u32)>,
    /// Dropped streams waiting for the peer's FIN, in deadline order.
    close_deadlines: VecDeque<(Instant, u32)>,
}

pub(super) struct Shared {
    inner: Mutex<Inner>,
    pub(super) config: Config,
    mode: Mode,
    /// Wakes the writer.
    writer_wake: Notify,
    /// Wakes the timer.
    timer_wake: Notify,
    /// Wakes a reader waiting for room in the control queue.
    space: Notify,
    /// Wakes `closed()` callers when the writer is done.
    finished: Notify,
    /// Stops the reader and the timer.
    cancel: CancellationToken,
    /// Outbound streams not yet ACKed (Go's `synCh`).
    open_permits: Arc<Semaphore>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// Held by every handle; the last one to go closes the session.
#[derive(Debug)]
pub(super) struct Guard(Arc<Shared>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.close(YamuxError::SessionClosed, CloseMode::Drain);
    }
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_local(&self, id: u32) -> bool {
        (id % 2 == 1) == (self.mode == Mode::Client)
    }

    /// Queues stream `id` for the writer.
    pub(super) fn mark_ready(&self, inner: &mut Inner, id: u32) {
        if let Some(st) = inner.streams.get_mut(&id)
            && !st.in_ready
        {
            st.in_ready = true;
            inner.ready.push_back(id);
            self.writer_wake.notify_one();
        }
    }

    fn push_control(&self, inner: &mut Inner, header: Header) {
        inner.control.push_back(header);
        self.writer_wake.notify_one();
    }

    fn maybe_forget(&self, inner: &mut Inner, id: u32) {
        if inner.streams.get(&id).is_some_and(StreamState::finished) {
            inner.streams.remove(&id);
        }
    }

    fn close(&self, cause: YamuxError, mode: CloseMode) {
        let mut inner = self.lock();
        self.close_locked(&mut inner, cause, mode);
    }

    fn close_locked(&self, inner: &mut Inner, cause: YamuxError, mode: CloseMode) {
        if inner.closed.is_some() {
            return;
        }
        match &cause {
            YamuxError::SessionClosed => tracing::debug!("yamux session closed"),
            cause => tracing::debug!(%cause, "yamux session ended"),
        }
        inner.closed = Some(cause);
        inner.close_mode = mode;
        for st in inner.streams.values_mut() {
            st.wake_all();
        }
        if let Some(waker) = inner.accept_waker.take() {
            waker.wake();
        }
        inner.pings.clear();
        self.open_permits.close();
        self.cancel.cancel();
        self.writer_wake.notify_one();
        self.timer_wake.notify_one();
        self.space.notify_waiters();
    }

    /// The handle of stream `id` is gone.
    pub(super) fn drop_stream(&self, id: u32) {
        let mut inner = self.lock();
        let closed = inner.closed.is_some();
        let Some(st) = inner.streams.get_mut(&id) else {
            return;
        };
        st.dropped = true;
        st.read_waker = None;
        st.write_waker = None;
        st.recv_buf.clear();
        st.recv_len = 0;
        if st.reset.is_none() && !closed {
            st.fin_requested = true;
            let linger = !st.remote_fin;
            self.mark_ready(&mut inner, id);
            if linger && let Some(timeout) = self.config.close_timeout {
                inner
                    .close_deadlines
                    .push_back((Instant::now() + timeout, id));
                self.timer_wake.notify_one();
            }
        }
        self.maybe_forget(&mut inner, id);
    }

    // ---- reader ------------------------------------------------------

    /// Reads frames until the connection or the peer fails.
    async fn read_loop<R: AsyncRead + Unpin>(&self, rd: &mut R) -> YamuxError {
        loop {
            let mut bytes = [0u8; HEADER_LEN];
            if let Err(e) = rd.read_exact(&mut bytes).await {
                return self.read_error(e);
            }
            let result = match Header::decode(&bytes) {
                Err(e) => Err(ProtocolError::from(e).into()),
                Ok(header) => match header.kind {
                    FrameType::Data | FrameType::WindowUpdate => {
                        self.on_stream_frame(header, rd).await
                    }
                    FrameType::Ping => {
                        self.on_ping(header);
                        Ok(())
                    }
                    FrameType::GoAway => self.on_go_away(header),
                },
            };
            if let Err(e) = result {
                return e;
            }
            self.wait_for_control_space().await;
        }
    }

    fn read_error(&self, e: std::io::Error) -> YamuxError {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            if self.lock().remote_go_away {
                YamuxError::RemoteGoAway {
                    code: GO_AWAY_NORMAL,
                }
            } else {
                YamuxError::ConnectionClosed
            }
        } else {
            e.into()
        }
    }

    async fn wait_for_control_space(&self) {
        loop {
            let mut notified = pin!(self.space.notified());
            notified.as_mut().enable();
            {
                let inner = self.lock();
                if inner.control.len() < CONTROL_LIMIT || inner.closed.is_some() {
                    return;
                }
            }
            notified.await;
        }
    }

    async fn on_stream_frame<R: AsyncRead + Unpin>(
        &self,
        header: Header,
        rd: &mut R,
    ) -> Result<(), YamuxError> {
        let id = header.stream_id;
        let flags = header.flags;
        if id == 0 {
            return Err(ProtocolError::StreamIdZero { kind: header.kind }.into());
        }
        let len = if header.kind == FrameType::Data {
            header.length
        } else {
            0
        };
        // Phase 1: open, ACK, window; check and reserve the receive window.
        let known = {
            let mut inner = self.lock();
            if flags.contains(frame::Flags::SYN) {
                self.open_inbound(&mut inner, id)?;
            }
            let next_id = inner.next_id;
            let max_inbound_id = inner.max_inbound_id;
            match inner.streams.get_mut(&id) {
                None => {
                    let never_opened = if self.is_local(id) {
                        u64::from(id) >= next_id
                    } else {
                        id > max_inbound_id
                    };
                    if never_opened {
                        return Err(ProtocolError::UnknownStream { id }.into());
                    }
                    let window = self.config.receive_window;
                    if len > window {
                        return Err(ProtocolError::WindowExceeded { id, len, window }.into());
                    }
                    false
                }
                Some(st) => {
                    if flags.contains(frame::Flags::ACK) && st.outbound && !st.acked {
                        st.acked = true;
                        st.permit = None;
                    }
                    if header.kind == FrameType::WindowUpdate && header.length > 0 {
                        let delta = header.length;
                        let window = st.send_window;
                        st.send_window = window
                            .checked_add(delta)
                            .ok_or(ProtocolError::WindowOverflow { id, window, delta })?;
                        st.wake_write();
                    }
                    if len > st.recv_window {
                        let window = st.recv_window;
                        return Err(ProtocolError::WindowExceeded { id, len, window }.into());
                    }
                    st.recv_window -= len;
                    true
                }
            }
        };
        // The payload, read without the lock.
        let mut payload = None;
        if len > 0 {
            if known {
                // Read into spare capacity: no zeroing pass over each frame.
                let mut buf = BytesMut::with_capacity(len as usize);
                let mut limited = (&mut *rd).take(u64::from(len));
                while buf.len() < len as usize {
                    match limited.read_buf(&mut buf).await {
                        Ok(0) => {
                            return Err(self.read_error(std::io::ErrorKind::UnexpectedEof.into()));
                        }
                        Ok(_) => {}
                        Err(e) => return Err(self.read_error(e)),
                    }
                }
                payload = Some(buf.freeze());
            } else {
                tracing::trace!(id, len, "yamux: discarding data for a closed stream");
                let mut limited = (&mut *rd).take(u64::from(len));
                match tokio::io::copy(&mut limited, &mut tokio::io::sink()).await {
                    Ok(n) if n == u64::from(len) => {}
                    Ok(_) => return Err(self.read_error(std::io::ErrorKind::UnexpectedEof.into())),
                    Err(e) => return Err(self.read_error(e)),
                }
            }
        }
        if !known {
            return Ok(());
        }
        // Phase 2: deliver the data, then FIN and RST (in that order, so
        // that data arriving with FIN is read before EOF).
        let mut inner = self.lock();
        let window = self.config.receive_window;
        let Some(st) = inner.streams.get_mut(&id) else {
            return Ok(());
        };
        let mut ready = false;
        if let Some(data) = payload {
            if st.reset.is_none() && !st.dropped && !st.remote_fin {
                st.recv_len += data.len();
                st.recv_buf.push_back(data);
                st.wake_read();
            } else {
                // Nobody will read it: credit it back at once.
                ready = st.window_update_due(window);
            }
        }
        if flags.contains(frame::Flags::FIN) && !st.remote_fin {
            st.remote_fin = true;
            st.wake_read();
        }
        if flags.contains(frame::Flags::RST) {
            st.set_reset(YamuxError::StreamReset { id }, false);
        }
        if ready {
            self.mark_ready(&mut inner, id);
        }
        self.maybe_forget(&mut inner, id);
        Ok(())
    }

    /// A SYN for stream `id`: queue it for `accept`, or refuse it with RST.
    fn open_inbound(&self, inner: &mut Inner, id: u32) -> Result<(), YamuxError> {
        if self.is_local(id) {
            return Err(ProtocolError::WrongParity { id }.into());
        }
        if inner.streams.contains_key(&id) {
            return Err(ProtocolError::DuplicateStream { id }.into());
        }
        inner.max_inbound_id = inner.max_inbound_id.max(id);
        if inner.local_go_away
            || !inner.incoming_alive
            || inner.accept_queue.len() >= self.config.accept_backlog
        {
            tracing::debug!(id, "yamux: refusing inbound stream");
            self.push_control(inner, Header::window_update(id, frame::Flags::RST, 0));
            return Ok(());
        }
        inner.streams.insert(id, StreamState::new(false, None));
        inner.accept_queue.push_back(id);
        if let Some(waker) = inner.accept_waker.take() {
            waker.wake();
        }
        Ok(())
    }

    fn on_ping(&self, header: Header) {
        let mut inner = self.lock();
        if header.flags.contains(frame::Flags::SYN) {
            self.push_control(&mut inner, Header::ping(frame::Flags::ACK, header.length));
        } else if header.flags.contains(frame::Flags::ACK) {
            if let Keepalive::Waiting(id, _) = inner.keepalive
                && id == header.length
            {
                if let Some(interval) = self.config.keepalive_interval {
                    inner.keepalive = Keepalive::Idle(Instant::now() + interval);
                }
                self.timer_wake.notify_one();
            } else if let Some(tx) = inner.pings.remove(&header.length) {
                let _ = tx.send(());
            }
        }
    }

    fn on_go_away(&self, header: Header) -> Result<(), YamuxError> {
        match header.length {
            GO_AWAY_NORMAL => {
                tracing::debug!("yamux: peer sent GoAway (normal)");
                self.lock().remote_go_away = true;
                Ok(())
            }
            code => Err(YamuxError::RemoteGoAway { code }),
        }
    }

    // ---- writer ------------------------------------------------------

    /// Moves what is due into `frames`; `flushing` gets the streams whose
    /// data or FIN is among them.
    fn collect(&self, inner: &mut Inner, frames: &mut Vec<OutFrame>, flushing: &mut Vec<u32>) {
        let before = inner.control.len();
        frames.extend(inner.control.drain(..).map(|header| (header, None)));
        if before >= CONTROL_LIMIT {
            self.space.notify_waiters();
        }
        let window = self.config.receive_window;
        let mut bytes = 0;
        while bytes < BATCH_BYTES {
            let Some(id) = inner.ready.pop_front() else {
                break;
            };
            let Some(st) = inner.streams.get_mut(&id) else {
                continue;
            };
            st.in_ready = false;
            let first = frames.len();
            if st.take_frames(id, window, frames) {
                flushing.push(id);
            }
            bytes += frames[first..]
                .iter()
                .map(|(_, body)| HEADER_LEN + body.as_ref().map_or(0, Bytes::len))
                .sum::<usize>();
            self.maybe_forget(inner, id);
        }
    }

    fn flushed(&self, flushing: &mut Vec<u32>) {
        let mut inner = self.lock();
        for id in flushing.drain(..) {
            if let Some(st) = inner.streams.get_mut(&id) {
                st.unflushed = false;
                st.wake_write();
            }
            self.maybe_forget(&mut inner, id);
        }
    }

    async fn write_loop<W: AsyncWrite + Unpin>(&self, wr: &mut W) {
        let timeout = self.config.write_timeout;
        let mut frames = Vec::new();
        let mut flushing = Vec::new();
        let mut drain_deadline = None;
        loop {
            let mut notified = pin!(self.writer_wake.notified());
            notified.as_mut().enable();
            let finish = {
                let mut inner = self.lock();
                match (inner.closed.is_some(), inner.close_mode) {
                    (false, _) => {
                        self.collect(&mut inner, &mut frames, &mut flushing);
                        None
                    }
                    (true, CloseMode::Drain) => {
                        self.collect(&mut inner, &mut frames, &mut flushing);
                        frames.is_empty().then_some(Some(GO_AWAY_NORMAL))
                    }
                    (true, CloseMode::GoAway(code)) => Some(Some(code)),
                    (true, CloseMode::Abort) => Some(None),
                }
            };
            if let Some(go_away) = finish {
                let last = async {
                    if let Some(code) = go_away {
                        wr.write_all(&Header::go_away(code).encode()).await?;
                    }
                    wr.flush().await?;
                    wr.shutdown().await
                };
                let _ = tokio::time::timeout(timeout, last).await;
                return;
            }
            if frames.is_empty() {
                notified.await;
                continue;
            }
            let deadline = if self.lock().closed.is_some() {
                *drain_deadline.get_or_insert_with(|| Instant::now() + timeout)
            } else {
                Instant::now() + timeout
            };
            let write = async {
                for (header, body) in &frames {
                    wr.write_all(&header.encode()).await?;
                    if let Some(body) = body {
                        wr.write_all(body).await?;
                    }
                }
                wr.flush().await
            };
            match tokio::time::timeout_at(deadline, write).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    self.close(e.into(), CloseMode::Abort);
                    return;
                }
                Err(_) => {
                    self.close(YamuxError::WriteTimeout { timeout }, CloseMode::Abort);
                    return;
                }
            }
            frames.clear();
            self.flushed(&mut flushing);
        }
    }

    // ---- timer -------------------------------------------------------

    /// Handles what is due at `now`; returns when to look again.
    fn expire(&self, inner: &mut Inner, now: Instant) -> Option<Instant> {
        let timeout = self.config.write_timeout;
        match inner.keepalive {
            Keepalive::Idle(at) if at <= now => {
                let id = inner.next_ping_id;
                inner.next_ping_id = id.wrapping_add(1);
                self.push_control(inner, Header::ping(frame::Flags::SYN, id));
                inner.keepalive = Keepalive::Waiting(id, now + timeout);
            }
            Keepalive::Waiting(_, at) if at <= now => {
                tracing::warn!(?timeout, "yamux keepalive failed: no ping reply");
                self.close_locked(
                    inner,
                    YamuxError::KeepaliveTimeout { timeout },
                    CloseMode::Abort,
                );
                return None;
            }
            _ => {}
        }
        while let Some(&(at, id)) = inner.open_deadlines.front() {
            let pending = inner
                .streams
                .get(&id)
                .is_some_and(|st| !st.acked && st.reset.is_none());
            if pending && at > now {
                break;
            }
            inner.open_deadlines.pop_front();
            if pending && let Some(st) = inner.streams.get_mut(&id) {
                let timeout = self.config.open_timeout.unwrap_or_default();
                tracing::debug!(id, ?timeout, "yamux: stream not acknowledged, resetting it");
                st.set_reset(YamuxError::OpenTimeout { id, timeout }, true);
                self.mark_ready(inner, id);
            }
        }
        while let Some(&(at, id)) = inner.close_deadlines.front() {
            let lingering = inner
                .streams
                .get(&id)
                .is_some_and(|st| st.dropped && st.reset.is_none());
            if lingering && at > now {
                break;
            }
            inner.close_deadlines.pop_front();
            if lingering && let Some(st) = inner.streams.get_mut(&id) {
                tracing::debug!(
                    id,
                    "yamux: peer never closed a dropped stream, resetting it"
                );
                st.set_reset(YamuxError::StreamClosed { id }, true);
                self.mark_ready(inner, id);
            }
        }
        let keepalive = match inner.keepalive {
            Keepalive::Off => None,
            Keepalive::Idle(at) | Keepalive::Waiting(_, at) => Some(at),
        };
        [
            keepalive,
            inner.open_deadlines.front().map(|d| d.0),
            inner.close_deadlines.front().map(|d| d.0),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    async fn timer_loop(&self) {
        loop {
            let mut notified = pin!(self.timer_wake.notified());
            notified.as_mut().enable();
            let next = {
                let mut inner = self.lock();
                if inner.closed.is_some() {
                    return;
                }
                self.expire(&mut inner, Instant::now())
            };
            match next {
                Some(at) => {
                    tokio::select! {
                        _ = notified => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => notified.await,
            }
        }
    }
}

async fn reader_task<T: AsyncRead>(shared: Arc<Shared>, rd: ReadHalf<T>) {
    // Frame headers are read through the buffer; a payload at least this
    // large bypasses it. 16 KiB, not more: every net/rpc plugin connection
    // (and brokered one) has one, and its pages stay resident in the host.
    let mut rd = BufReader::with_capacity(16 * 1024, rd);
    let cause = tokio::select! {
        _ = shared.cancel.cancelled() => return,
        cause = shared.read_loop(&mut rd) => cause,
    };
    let mode = match cause {
        YamuxError::Protocol(_) => {
            tracing::warn!(%cause, "yamux: closing the session");
            CloseMode::GoAway(GO_AWAY_PROTOCOL_ERROR)
        }
        _ => CloseMode::Abort,
    };
    shared.close(cause, mode);
}

async fn writer_task<T: AsyncWrite>(shared: Arc<Shared>, wr: WriteHalf<T>) {
    /// Tells `closed()` the writer is done, even if the task is
    /// dropped with its runtime.
    struct Finished(Arc<Shared>);
    impl Drop for Finished {
        fn drop(&mut self) {
            self.0.lock().writer_finished = true;
            self.0.finished.notify_waiters();
        }
    }
    let finished = Finished(shared);
    let mut wr = BufWriter::with_capacity(64 * 1024, wr);
    finished.0.write_loop(&mut wr).await;
}

async fn timer_task(shared: Arc<Shared>) {
    tokio::select! {
        _ = shared.cancel.cancelled() => {}
        () = shared.timer_loop() => {}
    }
}

/// A yamux session: a cheap, cloneable handle to open streams, ping and
/// close. See the [module docs](super).
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
        let now = Instant::now();
        let keepalive = match config.keepalive_interval {
            Some(interval) => Keepalive::Idle(now + interval),
            None => Keepalive::Off,
        };
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                streams: HashMap::new(),
                ready: VecDeque::new(),
                control: VecDeque::new(),
                accept_queue: VecDeque::new(),
                accept_waker: None,
                incoming_alive: true,
                next_id: match mode {
                    Mode::Client => 1,
                    Mode::Server => 2,
                },
                max_inbound_id: 0,
                local_go_away: false,
                remote_go_away: false,
                closed: None,
                close_mode: CloseMode::Abort,
                writer_finished: false,
                pings: HashMap::new(),
                next_ping_id: 0,
                keepalive,
                open_deadlines: VecDeque::new(),
                close_deadlines: VecDeque::new(),
            }),
            open_permits: Arc::new(Semaphore::new(
                config.accept_backlog.min(Semaphore::MAX_PERMITS),
            )),
            config,
            mode,
            writer_wake: Notify::new(),
            timer_wake: Notify::new(),
            space: Notify::new(),
            finished: Notify::new(),
            cancel: CancellationToken::new(),
        });
        let (rd, wr) = tokio::io::split(io);
        tokio::spawn(reader_task(shared.clone(), rd));
        tokio::spawn(writer_task(shared.clone(), wr));
        tokio::spawn(timer_task(shared.clone()));
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
    pub(super) fn shared_weak(&self) -> std::sync::Weak<Shared> {
        Arc::downgrade(&self.shared)
    }

    #[cfg(test)]
    pub(super) fn with_inner<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
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

//! The session state and how inbound frames change it, with no I/O: the
//! reader feeds it headers and payloads, the tasks act on what it asks for.

use std::collections::{HashMap, VecDeque};
use std::task::Waker;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::super::frame::{self, FrameType, GO_AWAY_NORMAL, Header};
use super::super::stream::StreamState;
use super::super::{Config, Mode, ProtocolError, YamuxError};
use super::CONTROL_LIMIT;

/// What the writer does once the session is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CloseMode {
    /// Write what is queued, then GoAway(normal).
    Drain,
    /// Write GoAway(code) only.
    GoAway(u32),
    /// Write nothing more.
    Abort,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Keepalive {
    Off,
    /// Next ping at this instant.
    Idle(Instant),
    /// Ping `id` sent, no reply yet; give up at the instant.
    Waiting(u32, Instant),
}

/// Tasks to wake once the lock is released; collected so that the state
/// changes stay free of the tasks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Wake {
    /// Something was queued for the writer.
    pub(super) writer: bool,
    /// A deadline changed.
    pub(super) timer: bool,
}

/// What the reader does with a frame's payload after [`Inner::on_header`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Then {
    /// The frame is handled; it has no payload.
    Done,
    /// Skip this many payload bytes: the stream is gone.
    Discard(u32),
    /// Read this many payload bytes (maybe 0) and pass them, with the same
    /// header, to [`Inner::on_payload`].
    Deliver(u32),
}

#[derive(Debug)]
pub(in crate::yamux) struct Inner {
    pub(super) mode: Mode,
    pub(in crate::yamux) streams: HashMap<u32, StreamState>,
    /// Streams with something for the writer, each at most once.
    pub(super) ready: VecDeque<u32>,
    /// Session-level frames and RSTs of streams we do not keep.
    pub(in crate::yamux) control: VecDeque<Header>,
    /// Inbound streams waiting for `accept`.
    pub(super) accept_queue: VecDeque<u32>,
    pub(super) accept_waker: Option<Waker>,
    pub(super) incoming_alive: bool,
    /// Next id we open (u64: no overflow at the end of the id space).
    pub(super) next_id: u64,
    /// Highest id the peer opened.
    pub(super) max_inbound_id: u32,
    pub(super) local_go_away: bool,
    pub(super) remote_go_away: bool,
    /// Why the session ended, once it has.
    pub(in crate::yamux) closed: Option<YamuxError>,
    pub(super) close_mode: CloseMode,
    pub(super) writer_finished: bool,
    pub(super) pings: HashMap<u32, oneshot::Sender<()>>,
    pub(super) next_ping_id: u32,
    pub(super) keepalive: Keepalive,
    /// Outbound streams waiting for ACK, in deadline order.
    pub(super) open_deadlines: VecDeque<(Instant, u32)>,
    /// Dropped streams waiting for the peer's FIN, in deadline order.
    pub(super) close_deadlines: VecDeque<(Instant, u32)>,
    /// Owed to the tasks; see [`Wake`].
    pub(super) wake: Wake,
}

impl Inner {
    pub(super) fn new(mode: Mode, config: &Config, now: Instant) -> Self {
        Inner {
            mode,
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
            keepalive: match config.keepalive_interval {
                Some(interval) => Keepalive::Idle(now + interval),
                None => Keepalive::Off,
            },
            open_deadlines: VecDeque::new(),
            close_deadlines: VecDeque::new(),
            wake: Wake::default(),
        }
    }

    pub(super) fn is_local(&self, id: u32) -> bool {
        (id % 2 == 1) == (self.mode == Mode::Client)
    }

    /// Queues stream `id` for the writer.
    pub(super) fn mark_ready(&mut self, id: u32) {
        if let Some(st) = self.streams.get_mut(&id)
            && !st.in_ready
        {
            st.in_ready = true;
            self.ready.push_back(id);
            self.wake.writer = true;
        }
    }

    pub(super) fn push_control(&mut self, header: Header) {
        self.control.push_back(header);
        self.wake.writer = true;
    }

    /// Whether the reader must wait for the writer before the next frame.
    pub(super) fn control_full(&self) -> bool {
        self.control.len() >= CONTROL_LIMIT && self.closed.is_none()
    }

    pub(super) fn maybe_forget(&mut self, id: u32) {
        if self.streams.get(&id).is_some_and(StreamState::finished) {
            self.streams.remove(&id);
        }
    }

    /// First step for every inbound frame: all but a data frame's payload.
    /// Flow control is checked, and the window reserved, before the payload
    /// is read.
    pub(super) fn on_header(
        &mut self,
        config: &Config,
        header: Header,
    ) -> Result<Then, YamuxError> {
        match header.kind {
            FrameType::Data | FrameType::WindowUpdate => self.on_stream_header(config, header),
            FrameType::Ping => {
                self.on_ping(config, header);
                Ok(Then::Done)
            }
            FrameType::GoAway => match header.length {
                GO_AWAY_NORMAL => {
                    tracing::debug!("yamux: peer sent GoAway (normal)");
                    self.remote_go_away = true;
                    Ok(Then::Done)
                }
                code => Err(YamuxError::RemoteGoAway { code }),
            },
        }
    }

    /// Open, ACK, window update; checks and reserves the receive window.
    fn on_stream_header(&mut self, config: &Config, header: Header) -> Result<Then, YamuxError> {
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
        if flags.contains(frame::Flags::SYN) {
            self.open_inbound(config, id)?;
        }
        let never_opened = if self.is_local(id) {
            u64::from(id) >= self.next_id
        } else {
            id > self.max_inbound_id
        };
        let Some(st) = self.streams.get_mut(&id) else {
            if never_opened {
                return Err(ProtocolError::UnknownStream { id }.into());
            }
            let window = config.receive_window;
            if len > window {
                return Err(ProtocolError::WindowExceeded { id, len, window }.into());
            }
            return Ok(if len > 0 {
                Then::Discard(len)
            } else {
                Then::Done
            });
        };
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
        Ok(Then::Deliver(len))
    }

    /// A SYN for stream `id`: queue it for `accept`, or refuse it with RST.
    fn open_inbound(&mut self, config: &Config, id: u32) -> Result<(), YamuxError> {
        if self.is_local(id) {
            return Err(ProtocolError::WrongParity { id }.into());
        }
        if self.streams.contains_key(&id) {
            return Err(ProtocolError::DuplicateStream { id }.into());
        }
        self.max_inbound_id = self.max_inbound_id.max(id);
        if self.local_go_away
            || !self.incoming_alive
            || self.accept_queue.len() >= config.accept_backlog
        {
            tracing::debug!(id, "yamux: refusing inbound stream");
            self.push_control(Header::window_update(id, frame::Flags::RST, 0));
            return Ok(());
        }
        self.streams.insert(id, StreamState::new(false, None));
        self.accept_queue.push_back(id);
        if let Some(waker) = self.accept_waker.take() {
            waker.wake();
        }
        Ok(())
    }

    /// Second step after [`Then::Deliver`]: the data, then FIN and RST (in
    /// that order, so that data arriving with FIN is read before EOF).
    pub(super) fn on_payload(&mut self, config: &Config, header: Header, payload: Option<Bytes>) {
        let id = header.stream_id;
        let flags = header.flags;
        let window = config.receive_window;
        // The stream may have been forgotten while the payload was read.
        let Some(st) = self.streams.get_mut(&id) else {
            return;
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
            self.mark_ready(id);
        }
        self.maybe_forget(id);
    }

    fn on_ping(&mut self, config: &Config, header: Header) {
        if header.flags.contains(frame::Flags::SYN) {
            self.push_control(Header::ping(frame::Flags::ACK, header.length));
        } else if header.flags.contains(frame::Flags::ACK) {
            if let Keepalive::Waiting(id, _) = self.keepalive
                && id == header.length
            {
                if let Some(interval) = config.keepalive_interval {
                    self.keepalive = Keepalive::Idle(Instant::now() + interval);
                }
                self.wake.timer = true;
            } else if let Some(tx) = self.pings.remove(&header.length) {
                let _ = tx.send(());
            }
        }
    }
}

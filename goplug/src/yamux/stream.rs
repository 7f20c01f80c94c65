//! One multiplexed stream: its state inside the session, and the handle.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::OwnedSemaphorePermit;

use super::YamuxError;
use super::frame::{Flags, Header, INITIAL_WINDOW};
use super::session::{Guard, Shared};

/// A frame for the writer: a header and, for data frames, the payload.
pub(super) type OutFrame = (Header, Option<Bytes>);

/// A stream as the session sees it. Lives in the session's map from the
/// SYN until the handle is gone and the stream is closed both ways or reset.
#[derive(Debug)]
pub(super) struct StreamState {
    /// We opened it.
    pub(super) outbound: bool,
    /// SYN (outbound) or ACK (inbound, once accepted) still to be sent.
    pub(super) pending_flags: Flags,
    /// Outbound: the peer acknowledged it.
    pub(super) acked: bool,
    /// Outbound, not yet acknowledged: a slot of the open backlog.
    pub(super) permit: Option<OwnedSemaphorePermit>,
    /// This side shut down (or dropped) the stream: FIN is due.
    pub(super) fin_requested: bool,
    /// The FIN was handed to the writer.
    pub(super) fin_sent: bool,
    /// The peer sent FIN: no more data will come.
    pub(super) remote_fin: bool,
    /// Reset (by the peer, or by us on a timeout): why.
    pub(super) reset: Option<YamuxError>,
    /// We must send RST.
    pub(super) rst_pending: bool,
    /// The handle is gone (or, inbound, will never exist).
    pub(super) dropped: bool,
    /// Bytes we may still send.
    pub(super) send_window: u32,
    /// Bytes the peer may still send us.
    pub(super) recv_window: u32,
    /// Received, not yet read.
    pub(super) recv_buf: VecDeque<Bytes>,
    pub(super) recv_len: usize,
    /// Written, not yet handed to the writer (at most one frame's worth).
    pub(super) out: BytesMut,
    /// Data or FIN handed to the writer, not yet flushed to the connection.
    pub(super) unflushed: bool,
    /// Queued in the session's ready list.
    pub(super) in_ready: bool,
    pub(super) read_waker: Option<Waker>,
    pub(super) write_waker: Option<Waker>,
}

impl StreamState {
    pub(super) fn new(outbound: bool, permit: Option<OwnedSemaphorePermit>) -> Self {
        StreamState {
            outbound,
            pending_flags: if outbound { Flags::SYN } else { Flags::NONE },
            acked: false,
            permit,
            fin_requested: false,
            fin_sent: false,
            remote_fin: false,
            reset: None,
            rst_pending: false,
            dropped: false,
            send_window: INITIAL_WINDOW,
            recv_window: INITIAL_WINDOW,
            recv_buf: VecDeque::new(),
            recv_len: 0,
            out: BytesMut::new(),
            unflushed: false,
            in_ready: false,
            read_waker: None,
            write_waker: None,
        }
    }

    pub(super) fn wake_read(&mut self) {
        if let Some(waker) = self.read_waker.take() {
            waker.wake();
        }
    }

    pub(super) fn wake_write(&mut self) {
        if let Some(waker) = self.write_waker.take() {
            waker.wake();
        }
    }

    pub(super) fn wake_all(&mut self) {
        self.wake_read();
        self.wake_write();
    }

    /// Resets the stream: buffers go, waiters wake with `cause`.
    pub(super) fn set_reset(&mut self, cause: YamuxError, send_rst: bool) {
        if self.reset.is_some() {
            return;
        }
        self.reset = Some(cause);
        // No RST for a stream whose SYN never went out.
        self.rst_pending = send_rst && !self.pending_flags.contains(Flags::SYN);
        self.recv_buf.clear();
        self.recv_len = 0;
        self.out.clear();
        self.permit = None;
        self.pending_flags = Flags::NONE;
        self.wake_all();
    }

    /// Credit we can give back: the window minus what is buffered minus
    /// what the peer may still send.
    fn window_delta(&self, window: u32) -> u32 {
        let buffered = u32::try_from(self.recv_len).unwrap_or(u32::MAX);
        window
            .saturating_sub(buffered)
            .saturating_sub(self.recv_window)
    }

    /// hashicorp's rule: update once at least half the window is free again.
    pub(super) fn window_update_due(&self, window: u32) -> bool {
        !self.remote_fin && self.reset.is_none() && self.window_delta(window) >= window / 2
    }

    fn take_delta(&mut self, window: u32) -> u32 {
        let delta = self.window_delta(window);
        self.recv_window += delta;
        delta
    }

    /// Whether the session may forget the stream.
    pub(super) fn finished(&self) -> bool {
        self.dropped
            && !self.in_ready
            && !self.unflushed
            && !self.rst_pending
            && (self.reset.is_some() || (self.fin_sent && self.remote_fin))
    }

    /// Moves what is due on the wire into `frames`: SYN/ACK first (always
    /// as a window update of its own), then data, FIN, credit. Returns
    /// whether data or FIN went out (the caller tracks the flush).
    ///
    /// FIN always travels in a window update of its own, after the data, as
    /// hashicorp/yamux sends it: its receiver applies a data frame's flags
    /// before it buffers the frame's bytes, so a reader woken in between
    /// sees the stream closed and empty, returns EOF, and the data is lost.
    pub(super) fn take_frames(&mut self, id: u32, window: u32, frames: &mut Vec<OutFrame>) -> bool {
        if self.rst_pending {
            self.rst_pending = false;
            frames.push((Header::window_update(id, Flags::RST, 0), None));
            return false;
        }
        if self.reset.is_some() {
            return false;
        }
        if !self.pending_flags.is_empty() {
            let flags = std::mem::take(&mut self.pending_flags);
            let delta = self.take_delta(window);
            frames.push((Header::window_update(id, flags, delta), None));
        }
        let mut wrote = false;
        if !self.out.is_empty() {
            let data = self.out.split().freeze();
            // `out` never holds more than one frame (max_frame_size: u32).
            let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
            frames.push((Header::data(id, Flags::NONE, len), Some(data)));
            self.wake_write();
            wrote = true;
        }
        if self.fin_requested && !self.fin_sent && self.out.is_empty() {
            self.fin_sent = true;
            let delta = if self.window_update_due(window) {
                self.take_delta(window)
            } else {
                0
            };
            frames.push((Header::window_update(id, Flags::FIN, delta), None));
            wrote = true;
        }
        if self.window_update_due(window) {
            let delta = self.take_delta(window);
            frames.push((Header::window_update(id, Flags::NONE, delta), None));
        }
        if wrote {
            self.unflushed = true;
        }
        wrote
    }
}

/// A yamux stream: tokio `AsyncRead + AsyncWrite`.
///
/// `poll_shutdown` sends FIN (half-close: reading goes on until the peer's
/// FIN). Dropping the stream sends FIN too if it was not sent; what the peer
/// sends afterwards is discarded (and credited back, so the peer never
/// stalls). I/O errors carry a [`YamuxError`] as their inner error.
pub struct Stream {
    id: u32,
    shared: Arc<Shared>,
    _guard: Arc<Guard>,
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream").field("id", &self.id).finish()
    }
}

impl Stream {
    pub(super) fn new(id: u32, shared: Arc<Shared>, guard: Arc<Guard>) -> Self {
        Stream {
            id,
            shared,
            _guard: guard,
        }
    }

    /// The stream id: odd if the client opened it, even if the server did.
    pub fn id(&self) -> u32 {
        self.id
    }
}

/// Session-level error for an operation on a stream that is no longer known.
fn gone(closed: Option<YamuxError>, id: u32) -> io::Error {
    closed.unwrap_or(YamuxError::StreamClosed { id }).into()
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let id = self.id;
        let shared = &self.shared;
        let window = shared.config.receive_window;
        let mut inner = shared.lock();
        let closed = inner.closed.clone();
        let Some(st) = inner.streams.get_mut(&id) else {
            return Poll::Ready(Err(gone(closed, id)));
        };
        if let Some(cause) = &st.reset {
            return Poll::Ready(Err(cause.clone().into()));
        }
        if st.recv_len > 0 {
            while buf.remaining() > 0 {
                let Some(chunk) = st.recv_buf.front_mut() else {
                    break;
                };
                let n = chunk.len().min(buf.remaining());
                buf.put_slice(&chunk.split_to(n));
                st.recv_len -= n;
                if chunk.is_empty() {
                    st.recv_buf.pop_front();
                }
            }
            let due = closed.is_none() && st.window_update_due(window);
            if due {
                shared.mark_ready(&mut inner, id);
            }
            return Poll::Ready(Ok(()));
        }
        if st.remote_fin || buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        if let Some(cause) = closed {
            return Poll::Ready(Err(cause.into()));
        }
        st.read_waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let id = self.id;
        let shared = &self.shared;
        let max_frame = shared.config.max_frame_size as usize;
        let mut inner = shared.lock();
        if let Some(cause) = &inner.closed {
            return Poll::Ready(Err(cause.clone().into()));
        }
        let Some(st) = inner.streams.get_mut(&id) else {
            return Poll::Ready(Err(gone(None, id)));
        };
        if let Some(cause) = &st.reset {
            return Poll::Ready(Err(cause.clone().into()));
        }
        if st.fin_requested {
            return Poll::Ready(Err(YamuxError::StreamClosed { id }.into()));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let room = max_frame.saturating_sub(st.out.len());
        let n = buf.len().min(st.send_window as usize).min(room);
        if n == 0 {
            st.write_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        st.out.extend_from_slice(&buf[..n]);
        // n <= send_window, a u32.
        st.send_window -= n as u32;
        shared.mark_ready(&mut inner, id);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let id = self.id;
        let mut inner = self.shared.lock();
        let closed = inner.closed.clone();
        let Some(st) = inner.streams.get_mut(&id) else {
            return Poll::Ready(Err(gone(closed, id)));
        };
        if st.out.is_empty() && !st.unflushed {
            return Poll::Ready(Ok(()));
        }
        if let Some(cause) = st.reset.clone().or(closed) {
            return Poll::Ready(Err(cause.into()));
        }
        st.write_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let id = self.id;
        let shared = &self.shared;
        let mut inner = shared.lock();
        let closed = inner.closed.clone();
        let Some(st) = inner.streams.get_mut(&id) else {
            return Poll::Ready(Err(gone(closed, id)));
        };
        if st.fin_sent && st.out.is_empty() && !st.unflushed {
            return Poll::Ready(Ok(()));
        }
        if let Some(cause) = st.reset.clone().or(closed) {
            return Poll::Ready(Err(cause.into()));
        }
        st.write_waker = Some(cx.waker().clone());
        if !st.fin_requested {
            st.fin_requested = true;
            shared.mark_ready(&mut inner, id);
        }
        Poll::Pending
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.shared.drop_stream(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yamux::frame::FrameType;

    /// (kind, flags, payload length) of each frame `take_frames` emits.
    fn emitted(st: &mut StreamState) -> Vec<(FrameType, Flags, usize)> {
        let mut frames = Vec::new();
        st.take_frames(1, INITIAL_WINDOW, &mut frames);
        frames
            .into_iter()
            .map(|(header, data)| (header.kind, header.flags, data.map_or(0, |d| d.len())))
            .collect()
    }

    #[test]
    fn fin_never_rides_on_a_data_frame() {
        // Data written, then shutdown, both before the writer runs: the
        // data goes first without FIN, the FIN in a window update after it.
        let mut st = StreamState::new(true, None);
        st.out.extend_from_slice(b"hello");
        st.fin_requested = true;
        assert_eq!(
            emitted(&mut st),
            [
                (FrameType::WindowUpdate, Flags::SYN, 0),
                (FrameType::Data, Flags::NONE, 5),
                (FrameType::WindowUpdate, Flags::FIN, 0),
            ]
        );
        assert!(st.fin_sent);
        // Nothing more is due.
        assert_eq!(emitted(&mut st), []);
    }

    #[test]
    fn a_shutdown_without_data_sends_fin_alone() {
        let mut st = StreamState::new(false, None);
        st.fin_requested = true;
        assert_eq!(emitted(&mut st), [(FrameType::WindowUpdate, Flags::FIN, 0)]);
    }
}

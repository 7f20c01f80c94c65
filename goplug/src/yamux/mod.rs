//! A stream multiplexer wire-compatible with [hashicorp/yamux] (v0.1.x),
//! the one go-plugin uses for net/rpc connections and the gRPC broker.
//!
//! goplug uses it for net/rpc connections and the multiplexed gRPC broker;
//! it is public for applications that need extra streams of their own.
//!
//! [hashicorp/yamux]: https://github.com/hashicorp/yamux/blob/master/spec.md
//!
//! # Why not the `yamux` crate
//!
//! The libp2p `yamux` crate speaks the same frames, but:
//!
//! - it sends SYN and ACK lazily, with a stream's first data frame. go-plugin's
//!   net/rpc server `Accept()`s three streams (control, stdout, stderr) before
//!   it serves any, so a host that opens them and waits deadlocks; and
//!   hashicorp/yamux ≥ 0.1.0 aborts the **whole session** when a stream it
//!   opened is not ACKed within 75 s, which is what happens when a Rust plugin
//!   accepts the stdout/stderr streams and stays silent;
//! - it is poll-based, so it needs a driver task and a command channel
//!   anyway;
//! - it sends no keepalive pings, where Go pings every 30 s.
//!
//! This implementation is small and tokio-native: SYN goes out when a stream
//! is opened and ACK when it is accepted, keepalives work like Go's, and the
//! frame codec ([`frame`]) is pure and easy to fuzz.
//!
//! # Shape
//!
//! [`Session::new`] splits a connection into a cloneable [`Session`] handle
//! (open streams, ping, close) and an [`Incoming`] queue of streams the peer
//! opened. A [`Stream`] is a tokio `AsyncRead + AsyncWrite`; shutting it down
//! half-closes it (FIN), dropping it closes it. Three tasks run per session:
//! a reader that parses frames, a writer that owns the write half, and a
//! timer for keepalives and timeouts. They end when the connection fails or
//! when every handle (session clones, `Incoming`, streams) is gone.
//!
//! # Where this differs from hashicorp/yamux on purpose
//!
//! - A stream that the peer does not ACK within the open timeout is reset on
//!   its own; Go closes the whole session.
//! - Unknown flag bits, SYNs with our parity and frames for streams that
//!   were never opened are protocol errors; Go ignores them.
//! - A dropped stream whose peer never closes its side is reset after the
//!   close timeout; a stream that is only half-closed stays open.
//! - Memory is bounded on everything the peer controls: per-stream buffers by
//!   the receive window, the accept queue by the backlog, pending replies by
//!   a fixed cap (beyond it the session stops reading until they are sent).

pub mod frame;
mod session;
mod stream;
#[cfg(test)]
mod tests;

use std::io;
use std::sync::Arc;
use std::time::Duration;

pub use frame::{FrameError, FrameType};
pub use session::{Incoming, Session};
pub use stream::Stream;

/// Which end of the connection this is; it decides stream ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Opens odd stream ids from 1 (go-plugin's host).
    Client,
    /// Opens even stream ids from 2 (go-plugin's plugin).
    Server,
}

/// Session settings; the defaults are hashicorp/yamux's `DefaultConfig`.
#[derive(Clone, Debug)]
pub struct Config {
    pub(crate) receive_window: u32,
    pub(crate) keepalive_interval: Option<Duration>,
    pub(crate) write_timeout: Duration,
    pub(crate) open_timeout: Option<Duration>,
    pub(crate) close_timeout: Option<Duration>,
    pub(crate) accept_backlog: usize,
    pub(crate) max_frame_size: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            receive_window: frame::INITIAL_WINDOW,
            keepalive_interval: Some(Duration::from_secs(30)),
            write_timeout: Duration::from_secs(10),
            open_timeout: Some(Duration::from_secs(75)),
            close_timeout: Some(Duration::from_secs(300)),
            accept_backlog: 256,
            max_frame_size: 64 * 1024,
        }
    }
}

impl Config {
    /// The receive window of each stream (default and minimum 256 KiB, the
    /// window both sides assume initially). A larger one is announced with
    /// the SYN or ACK.
    #[must_use]
    pub fn receive_window(self, bytes: u32) -> Self {
        Config {
            receive_window: bytes.max(frame::INITIAL_WINDOW),
            ..self
        }
    }

    /// How often to ping the peer (default 30 s); `None` sends no pings.
    #[must_use]
    pub fn keepalive_interval(self, interval: Option<Duration>) -> Self {
        Config {
            keepalive_interval: interval,
            ..self
        }
    }

    /// How long a ping may go unanswered and a write to the connection may
    /// block before the session is closed (default 10 s, Go's
    /// `ConnectionWriteTimeout`).
    #[must_use]
    pub fn write_timeout(self, timeout: Duration) -> Self {
        Config {
            write_timeout: timeout,
            ..self
        }
    }

    /// How long an opened stream may wait for the peer's ACK before it is
    /// reset (default 75 s); `None` waits forever.
    #[must_use]
    pub fn open_timeout(self, timeout: Option<Duration>) -> Self {
        Config {
            open_timeout: timeout,
            ..self
        }
    }

    /// How long a dropped stream waits for the peer's FIN before it is reset
    /// (default 5 min, Go's `StreamCloseTimeout`); `None` waits forever.
    #[must_use]
    pub fn close_timeout(self, timeout: Option<Duration>) -> Self {
        Config {
            close_timeout: timeout,
            ..self
        }
    }

    /// How many inbound streams may wait for [`Incoming::accept`] (default
    /// 256, at least 1); more are reset. It also caps our own streams that
    /// wait for the peer's ACK: [`Session::open`] waits beyond it, as in Go.
    #[must_use]
    pub fn accept_backlog(self, streams: usize) -> Self {
        Config {
            accept_backlog: streams.max(1),
            ..self
        }
    }

    /// The largest data frame payload we send (default 64 KiB, at least 1).
    #[must_use]
    pub fn max_frame_size(self, bytes: u32) -> Self {
        Config {
            max_frame_size: bytes.max(1),
            ..self
        }
    }
}

/// Everything that can go wrong in a yamux session or stream.
///
/// When a session ends, every pending and later operation on it and its
/// streams fails with the error that ended it.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum YamuxError {
    /// The peer broke the protocol; we sent GoAway(protocol error).
    #[error("yamux protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// The session was closed on this side.
    #[error("yamux session closed")]
    SessionClosed,
    /// The connection reached end of file.
    #[error("yamux connection closed by the peer")]
    ConnectionClosed,
    /// The peer sent GoAway: with code 0 it accepts no new streams, with
    /// any other code (1 protocol error, 2 internal error) the session is over.
    #[error("yamux peer sent GoAway ({})", go_away_text(*.code))]
    RemoteGoAway {
        /// The GoAway error code.
        code: u32,
    },
    /// The peer reset the stream.
    #[error("yamux stream {id} reset by the peer")]
    StreamReset {
        /// The stream id.
        id: u32,
    },
    /// The peer did not ACK the stream in time; we reset it.
    #[error("yamux stream {id} not acknowledged by the peer within {timeout:?}")]
    OpenTimeout {
        /// The stream id.
        id: u32,
        /// The open timeout.
        timeout: Duration,
    },
    /// Writing after this side shut the stream down.
    #[error("yamux stream {id} is closed for writing")]
    StreamClosed {
        /// The stream id.
        id: u32,
    },
    /// A keepalive ping got no reply in time; the session was closed.
    #[error("yamux keepalive failed: no ping reply within {timeout:?}")]
    KeepaliveTimeout {
        /// The write timeout.
        timeout: Duration,
    },
    /// A [`Session::ping`] got no reply in time.
    #[error("no yamux ping reply within {timeout:?}")]
    PingTimeout {
        /// The write timeout.
        timeout: Duration,
    },
    /// Writing to the connection blocked too long; the session was closed.
    #[error("yamux connection write did not finish within {timeout:?}")]
    WriteTimeout {
        /// The write timeout.
        timeout: Duration,
    },
    /// Every stream id of our parity was used.
    #[error("yamux stream ids exhausted")]
    StreamsExhausted,
    /// Reading or writing the connection failed.
    #[error("yamux connection I/O error: {0}")]
    Io(#[source] Arc<io::Error>),
}

/// How the peer broke the protocol.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A header that is not valid yamux.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A data or window update frame for stream 0 (the session).
    #[error("{kind:?} frame for stream 0")]
    StreamIdZero {
        /// The frame type.
        kind: FrameType,
    },
    /// The peer opened a stream with an id of our parity.
    #[error("peer opened stream {id}, an id reserved for our side")]
    WrongParity {
        /// The stream id.
        id: u32,
    },
    /// The peer opened a stream that is already open.
    #[error("peer opened stream {id} twice")]
    DuplicateStream {
        /// The stream id.
        id: u32,
    },
    /// A frame for a stream id that neither side ever opened.
    #[error("frame for stream {id}, which was never opened")]
    UnknownStream {
        /// The stream id.
        id: u32,
    },
    /// A data frame larger than the stream's remaining receive window.
    #[error("{len}-byte data frame for stream {id} exceeds its receive window ({window} bytes)")]
    WindowExceeded {
        /// The stream id.
        id: u32,
        /// The payload length.
        len: u32,
        /// The window that was left.
        window: u32,
    },
    /// A window update that overflows the send window.
    #[error("window update of {delta} for stream {id} overflows its send window ({window} bytes)")]
    WindowOverflow {
        /// The stream id.
        id: u32,
        /// The send window before the update.
        window: u32,
        /// The delta.
        delta: u32,
    },
}

fn go_away_text(code: u32) -> String {
    match code {
        frame::GO_AWAY_NORMAL => "normal termination".to_owned(),
        frame::GO_AWAY_PROTOCOL_ERROR => "protocol error".to_owned(),
        frame::GO_AWAY_INTERNAL_ERROR => "internal error".to_owned(),
        other => format!("unknown code {other}"),
    }
}

impl From<io::Error> for YamuxError {
    fn from(error: io::Error) -> Self {
        YamuxError::Io(Arc::new(error))
    }
}

impl From<YamuxError> for io::Error {
    fn from(error: YamuxError) -> Self {
        let kind = match &error {
            YamuxError::Protocol(_) => io::ErrorKind::InvalidData,
            YamuxError::SessionClosed | YamuxError::StreamClosed { .. } => {
                io::ErrorKind::BrokenPipe
            }
            YamuxError::ConnectionClosed | YamuxError::RemoteGoAway { .. } => {
                io::ErrorKind::ConnectionAborted
            }
            YamuxError::StreamReset { .. } => io::ErrorKind::ConnectionReset,
            YamuxError::OpenTimeout { .. }
            | YamuxError::KeepaliveTimeout { .. }
            | YamuxError::PingTimeout { .. }
            | YamuxError::WriteTimeout { .. } => io::ErrorKind::TimedOut,
            YamuxError::StreamsExhausted => io::ErrorKind::Other,
            YamuxError::Io(e) => e.kind(),
        };
        io::Error::new(kind, error)
    }
}

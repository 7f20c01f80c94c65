//! The session: shared state, the handles, and the reader, writer and
//! timer tasks.
//!
//! All state sits behind one `std::sync::Mutex` (never held across an
//! await). The reader parses frames and hands them to the state machine in
//! [`state`], which updates it; streams and handles update it and mark
//! streams "ready"; the writer turns ready streams and queued control frames
//! into bytes. Frames are computed when the writer gets to them, so a stream
//! never has more than one window update or one frame of data queued.

mod handle;
mod reader;
mod shared;
mod state;
#[cfg(test)]
mod state_tests;
mod timer;
#[cfg(test)]
mod timer_tests;
mod writer;

pub use handle::{Incoming, Session};
pub(super) use shared::{Guard, Shared};

/// Control frames (ping replies, RSTs of refused streams) queued beyond
/// this stop the reader until the writer catches up: a ping flood costs the
/// flooder, not our memory.
pub(super) const CONTROL_LIMIT: usize = 1024;

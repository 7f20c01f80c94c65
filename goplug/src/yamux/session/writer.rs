//! The writer task: it owns the write half and turns queued control frames
//! and ready streams into bytes, computing each frame when it gets to it.

use std::pin::pin;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter, WriteHalf};
use tokio::time::Instant;

use super::super::YamuxError;
use super::super::frame::{GO_AWAY_NORMAL, HEADER_LEN, Header};
use super::super::stream::OutFrame;
use super::CONTROL_LIMIT;
use super::shared::Shared;
use super::state::{CloseMode, Inner};

/// The writer writes at most about this much per flush.
const BATCH_BYTES: usize = 256 * 1024;

pub(super) async fn writer_task<T: AsyncWrite>(shared: Arc<Shared>, wr: WriteHalf<T>) {
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

impl Shared {
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
            inner.maybe_forget(id);
        }
    }

    fn flushed(&self, flushing: &mut Vec<u32>) {
        let mut inner = self.lock();
        for id in flushing.drain(..) {
            if let Some(st) = inner.streams.get_mut(&id) {
                st.unflushed = false;
                st.wake_write();
            }
            inner.maybe_forget(id);
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
}

//! What the tasks and handles share: the locked state and the signals
//! between them.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::super::frame::Header;
use super::super::{Config, Mode, YamuxError};
use super::state::{CloseMode, Inner};

pub(in crate::yamux) struct Shared {
    inner: Mutex<Inner>,
    pub(in crate::yamux) config: Config,
    pub(super) mode: Mode,
    /// Wakes the writer.
    pub(super) writer_wake: Notify,
    /// Wakes the timer.
    pub(super) timer_wake: Notify,
    /// Wakes a reader waiting for room in the control queue.
    pub(super) space: Notify,
    /// Wakes `closed()` callers when the writer is done.
    pub(super) finished: Notify,
    /// Stops the reader and the timer.
    pub(super) cancel: CancellationToken,
    /// Outbound streams not yet ACKed (Go's `synCh`).
    pub(super) open_permits: Arc<Semaphore>,
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
pub(in crate::yamux) struct Guard(pub(super) Arc<Shared>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.close(YamuxError::SessionClosed, CloseMode::Drain);
    }
}

impl Shared {
    pub(super) fn new(mode: Mode, config: Config) -> Self {
        Shared {
            inner: Mutex::new(Inner::new(mode, &config, Instant::now())),
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
        }
    }

    pub(in crate::yamux) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the tasks that `inner`'s last changes concern.
    pub(super) fn wake(&self, inner: &mut Inner) {
        let wake = std::mem::take(&mut inner.wake);
        if wake.writer {
            self.writer_wake.notify_one();
        }
        if wake.timer {
            self.timer_wake.notify_one();
        }
    }

    /// Queues stream `id` for the writer.
    pub(in crate::yamux) fn mark_ready(&self, inner: &mut Inner, id: u32) {
        inner.mark_ready(id);
        self.wake(inner);
    }

    pub(super) fn push_control(&self, inner: &mut Inner, header: Header) {
        inner.push_control(header);
        self.wake(inner);
    }

    pub(super) fn close(&self, cause: YamuxError, mode: CloseMode) {
        let mut inner = self.lock();
        self.close_locked(&mut inner, cause, mode);
    }

    pub(super) fn close_locked(&self, inner: &mut Inner, cause: YamuxError, mode: CloseMode) {
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
    pub(in crate::yamux) fn drop_stream(&self, id: u32) {
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
        inner.maybe_forget(id);
    }
}

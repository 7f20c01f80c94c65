//! Keepalives, open timeouts and close timeouts: [`Inner::expire`] decides,
//! the timer task sleeps until the next deadline.

use std::pin::pin;
use std::sync::Arc;

use tokio::time::Instant;

use super::super::frame::{self, Header};
use super::super::{Config, YamuxError};
use super::shared::Shared;
use super::state::{CloseMode, Inner, Keepalive};

pub(super) async fn timer_task(shared: Arc<Shared>) {
    tokio::select! {
        _ = shared.cancel.cancelled() => {}
        () = shared.timer_loop() => {}
    }
}

impl Shared {
    async fn timer_loop(&self) {
        loop {
            let mut notified = pin!(self.timer_wake.notified());
            notified.as_mut().enable();
            let next = {
                let mut inner = self.lock();
                if inner.closed.is_some() {
                    return;
                }
                let next = inner.expire(&self.config, Instant::now());
                self.wake(&mut inner);
                match next {
                    Ok(next) => next,
                    Err(cause) => {
                        self.close_locked(&mut inner, cause, CloseMode::Abort);
                        None
                    }
                }
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

impl Inner {
    /// Handles what is due at `now`; returns when to look again, or why
    /// the session must end.
    pub(super) fn expire(
        &mut self,
        config: &Config,
        now: Instant,
    ) -> Result<Option<Instant>, YamuxError> {
        let timeout = config.write_timeout;
        match self.keepalive {
            Keepalive::Idle(at) if at <= now => {
                let id = self.next_ping_id;
                self.next_ping_id = id.wrapping_add(1);
                self.push_control(Header::ping(frame::Flags::SYN, id));
                self.keepalive = Keepalive::Waiting(id, now + timeout);
            }
            Keepalive::Waiting(_, at) if at <= now => {
                tracing::warn!(?timeout, "yamux keepalive failed: no ping reply");
                return Err(YamuxError::KeepaliveTimeout { timeout });
            }
            _ => {}
        }
        while let Some(&(at, id)) = self.open_deadlines.front() {
            let pending = self
                .streams
                .get(&id)
                .is_some_and(|st| !st.acked && st.reset.is_none());
            if pending && at > now {
                break;
            }
            self.open_deadlines.pop_front();
            if pending && let Some(st) = self.streams.get_mut(&id) {
                let timeout = config.open_timeout.unwrap_or_default();
                tracing::debug!(id, ?timeout, "yamux: stream not acknowledged, resetting it");
                st.set_reset(YamuxError::OpenTimeout { id, timeout }, true);
                self.mark_ready(id);
            }
        }
        while let Some(&(at, id)) = self.close_deadlines.front() {
            let lingering = self
                .streams
                .get(&id)
                .is_some_and(|st| st.dropped && st.reset.is_none());
            if lingering && at > now {
                break;
            }
            self.close_deadlines.pop_front();
            if lingering && let Some(st) = self.streams.get_mut(&id) {
                tracing::debug!(
                    id,
                    "yamux: peer never closed a dropped stream, resetting it"
                );
                st.set_reset(YamuxError::StreamClosed { id }, true);
                self.mark_ready(id);
            }
        }
        let keepalive = match self.keepalive {
            Keepalive::Off => None,
            Keepalive::Idle(at) | Keepalive::Waiting(_, at) => Some(at),
        };
        Ok([
            keepalive,
            self.open_deadlines.front().map(|d| d.0),
            self.close_deadlines.front().map(|d| d.0),
        ]
        .into_iter()
        .flatten()
        .min())
    }
}

//! The supervised plugin's shared state, and the route its channel takes:
//! calls go to the current process, wait while it restarts, or fail fast.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, broadcast, watch};

use super::policy::{RestartPolicy, WhenDown};
use super::status::{Record, SupervisorEvent};
use crate::transport::{Channel, Route, RouteFuture};

/// Where calls go now.
#[derive(Clone, Debug)]
pub(super) enum Current {
    Up(Channel),
    Down,
    CircuitOpen,
    Stopped,
}

/// What a supervised plugin's worker, its handles and its channel share.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) name: String,
    pub(super) policy: RestartPolicy,
    pub(super) record: Mutex<Record>,
    pub(super) current: watch::Sender<Current>,
    pub(super) events: broadcast::Sender<SupervisorEvent>,
    pub(super) reset: Notify,
}

impl Shared {
    pub(super) fn new(name: String, policy: RestartPolicy) -> Arc<Self> {
        Arc::new(Self {
            name,
            policy,
            record: Mutex::new(Record::new()),
            current: watch::Sender::new(Current::Down),
            events: broadcast::Sender::new(256),
            reset: Notify::new(),
        })
    }

    /// The record; a panic elsewhere while it was held leaves it usable.
    pub(super) fn record(&self) -> MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends an event to whoever listens (nobody is fine).
    pub(super) fn report(&self, event: SupervisorEvent) {
        tracing::debug!(plugin = %self.name, ?event, "supervisor");
        let _ = self.events.send(event);
    }

    fn unavailable(&self, current: &Current) -> tonic::Status {
        let record = self.record();
        let why = match current {
            Current::CircuitOpen => format!(
                "its circuit is open after {} failures; it is not restarted until reset",
                record.recent_failures
            ),
            Current::Stopped => "its supervisor has shut it down".to_owned(),
            Current::Down | Current::Up(_) => match record.state {
                super::PluginState::Restarting { backoff } => {
                    format!("it is restarting (next start in {backoff:?})")
                }
                _ => "it is starting".to_owned(),
            },
        };
        let last = record
            .last_error
            .as_deref()
            .map(|error| format!("; last failure: {error}"))
            .unwrap_or_default();
        tonic::Status::unavailable(format!("plugin {:?} is down: {why}{last}", self.name))
    }
}

impl Route for Shared {
    fn current(&self, deadline: Option<Duration>) -> RouteFuture<'_> {
        self.record().calls_in_flight += 1;
        Box::pin(async move {
            let mut current = self.current.subscribe();
            let now = current.borrow_and_update().clone();
            match (now, self.policy.when_down) {
                (Current::Up(channel), _) => Ok(channel),
                (down @ (Current::CircuitOpen | Current::Stopped), _)
                | (down, WhenDown::FailFast) => Err(self.unavailable(&down)),
                (Current::Down, WhenDown::Wait(bound)) => {
                    let wait = deadline.unwrap_or(bound);
                    let up = tokio::time::timeout(
                        wait,
                        current.wait_for(|now| !matches!(now, Current::Down)),
                    )
                    .await;
                    let now = match up {
                        Ok(Ok(now)) => now.clone(),
                        Ok(Err(_)) => Current::Stopped,
                        Err(_) => {
                            let status = self.unavailable(&Current::Down);
                            return Err(tonic::Status::unavailable(format!(
                                "{} (waited {wait:?})",
                                status.message()
                            )));
                        }
                    };
                    match now {
                        Current::Up(channel) => Ok(channel),
                        other => Err(self.unavailable(&other)),
                    }
                }
            }
        })
    }

    fn finished(&self, ok: bool, _elapsed: Duration) {
        let mut record = self.record();
        record.calls_in_flight = record.calls_in_flight.saturating_sub(1);
        if ok {
            record.calls_ok += 1;
        } else {
            record.calls_failed += 1;
        }
    }
}

//! The supervised plugin's shared state, and the route its channel takes:
//! calls go to the current process, wait while it restarts, or fail fast.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, broadcast, watch};

#[cfg(feature = "metrics")]
use super::metrics::Facade;
use super::metrics::ProcessUsage;
use super::policy::{RestartPolicy, WhenDown};
use super::status::{PluginStatus, Record, SupervisorEvent};
use crate::host::netrpc::Dispenser;
use crate::transport::{Channel, Route, RouteFuture};

/// Where calls go now.
#[derive(Clone, Debug)]
pub(super) enum Current {
    Up(Serving),
    Down,
    CircuitOpen,
    Stopped,
}

/// A serving process: how calls reach it, and its generation (one per
/// start or reload), so a reload knows when the old process's calls are
/// done.
#[derive(Clone, Debug)]
pub(super) struct Serving {
    pub(super) channel: Channel,
    /// For a net/rpc plugin: what dispenses its clients.
    pub(super) netrpc: Option<Dispenser>,
    pub(super) generation: u64,
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
    /// Notified when a generation's last call in flight finishes.
    generation_drained: Notify,
    #[cfg(feature = "metrics")]
    pub(super) facade: Facade,
}

impl Shared {
    pub(super) fn new(name: String, policy: RestartPolicy) -> Arc<Self> {
        Arc::new(Self {
            #[cfg(feature = "metrics")]
            facade: Facade::new(&name),
            name,
            policy,
            record: Mutex::new(Record::new()),
            current: watch::Sender::new(Current::Down),
            events: broadcast::Sender::new(256),
            reset: Notify::new(),
            generation_drained: Notify::new(),
        })
    }

    /// Waits until no call is in flight on `generation`, at most `bound`;
    /// returns whether none is.
    pub(super) async fn drained(&self, generation: u64, bound: std::time::Duration) -> bool {
        let drained = async {
            loop {
                let drained = self.generation_drained.notified();
                let busy = self
                    .record()
                    .in_flight_by_generation
                    .contains_key(&generation);
                if !busy {
                    return;
                }
                drained.await;
            }
        };
        tokio::time::timeout(bound, drained).await.is_ok()
    }

    /// The record; a panic elsewhere while it was held leaves it usable.
    pub(super) fn record(&self) -> MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A snapshot of the plugin, its process's usage read after the
    /// record's lock is released.
    pub(super) fn status(&self) -> PluginStatus {
        let mut status = self.record().snapshot(&self.name);
        status.usage = self.usage(status.pid);
        status
    }

    /// `pid`'s usage now (published as gauges with the `metrics` feature).
    pub(super) fn usage(&self, pid: Option<u32>) -> Option<ProcessUsage> {
        let usage = pid.and_then(ProcessUsage::read);
        #[cfg(feature = "metrics")]
        self.facade.usage(usage.as_ref());
        usage
    }

    /// Sends an event to whoever listens (nobody is fine).
    pub(super) fn report(&self, event: SupervisorEvent) {
        tracing::debug!(plugin = %self.name, ?event, "supervisor");
        let _ = self.events.send(event);
    }

    /// Why calls cannot reach the plugin now: its state and last failure.
    fn down_reason(&self, current: &Current) -> String {
        let record = self.record();
        let why = match current {
            Current::CircuitOpen => format!(
                "its circuit is open after {} failures; it is not restarted until reset",
                record.recent_failures
            ),
            Current::Stopped => "its supervisor has shut it down".to_owned(),
            Current::Down | Current::Up(..) => match record.state {
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
        format!("{why}{last}")
    }
}

/// A call's way to the serving process, with its generation.
pub(super) type Routed<'a, T, E> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(T, u64), E>> + Send + 'a>>;

/// How a route reports that the plugin is down, from its name and why.
pub(super) type DownError<E> = fn(&str, String) -> E;

impl Shared {
    /// Counts a call in and finds it the serving process, waiting for one
    /// (within `deadline`, or the policy's bound) or failing fast as the
    /// policy says; `take` picks what the call needs from it. Every call
    /// counted in is counted out by [`Route::finished`].
    pub(super) fn route<T: Send + 'static, E: Send + 'static>(
        &self,
        deadline: Option<Duration>,
        take: fn(Serving) -> T,
        down: DownError<E>,
    ) -> Routed<'_, T, E> {
        #[cfg(feature = "metrics")]
        self.facade.call_started();
        let now = self.current.borrow().clone();
        {
            let mut record = self.record();
            record.calls_in_flight += 1;
            // Serving: no wait, one lock, nothing more.
            if let Current::Up(serving) = now {
                let generation = serving.generation;
                *record
                    .in_flight_by_generation
                    .entry(generation)
                    .or_default() += 1;
                return Box::pin(std::future::ready(Ok((take(serving), generation))));
            }
        }
        Box::pin(async move {
            let mut current = self.current.subscribe();
            let now = current.borrow_and_update().clone();
            let routed = |serving: Serving| {
                let generation = serving.generation;
                let mut record = self.record();
                *record
                    .in_flight_by_generation
                    .entry(generation)
                    .or_default() += 1;
                (take(serving), generation)
            };
            match (now, self.policy.when_down) {
                (Current::Up(serving), _) => Ok(routed(serving)),
                (now @ (Current::CircuitOpen | Current::Stopped), _)
                | (now, WhenDown::FailFast) => Err(down(&self.name, self.down_reason(&now))),
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
                            let why = self.down_reason(&Current::Down);
                            return Err(down(&self.name, format!("{why} (waited {wait:?})")));
                        }
                    };
                    match now {
                        Current::Up(serving) => Ok(routed(serving)),
                        other => Err(down(&self.name, self.down_reason(&other))),
                    }
                }
            }
        })
    }
}

impl Route for Shared {
    fn current(&self, deadline: Option<Duration>) -> RouteFuture<'_> {
        self.route(
            deadline,
            |serving| serving.channel,
            |name, why| tonic::Status::unavailable(format!("plugin {name:?} is down: {why}")),
        )
    }

    fn finished(&self, ticket: Option<u64>, ok: bool, elapsed: Duration) {
        #[cfg(feature = "metrics")]
        self.facade.call_finished(ok, elapsed);
        let mut record = self.record();
        let mut drained = false;
        if let Some(generation) = ticket
            && let Some(calls) = record.in_flight_by_generation.get_mut(&generation)
        {
            *calls = calls.saturating_sub(1);
            if *calls == 0 {
                record.in_flight_by_generation.remove(&generation);
                drained = true;
            }
        }
        record.calls_in_flight = record.calls_in_flight.saturating_sub(1);
        if ok {
            record.calls_ok += 1;
        } else {
            record.calls_failed += 1;
        }
        record.latencies.record(elapsed);
        drop(record);
        if drained {
            self.generation_drained.notify_waiters();
        }
    }
}

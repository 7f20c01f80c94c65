//! What a program can read about a supervised plugin at any time, and the
//! events a supervisor reports as they happen.

use std::process::ExitStatus;
use std::time::{Duration, Instant};

use super::metrics::{Latencies, LatencyHistogram, ProcessUsage};

/// Where a supervised plugin is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PluginState {
    /// Being launched (first start or a restart).
    Starting,
    /// Serving calls.
    Serving,
    /// Down, waiting `backoff` before the next start.
    Restarting {
        /// The delay before the next start.
        backoff: Duration,
    },
    /// Failed too often: no longer restarted until `reset`.
    CircuitOpen,
    /// Shut down with its supervisor.
    Stopped,
}

/// A snapshot of a supervised plugin.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PluginStatus {
    /// Its name in the supervisor.
    pub name: String,
    /// Where it is in its life.
    pub state: PluginState,
    /// The current process's id, while one runs.
    pub pid: Option<u32>,
    /// How long the current process has been serving.
    pub uptime: Option<Duration>,
    /// Restarts so far (starts after the first).
    pub restarts: u64,
    /// Failures within the circuit's window.
    pub recent_failures: usize,
    /// How the last process ended, when one has (`None` inside: the status
    /// could not be collected).
    pub last_exit: Option<Option<ExitStatus>>,
    /// Why the last start or the last process failed.
    pub last_error: Option<String>,
    /// Calls through the supervised channel now in flight.
    pub calls_in_flight: u64,
    /// Calls that got a response without a gRPC error status.
    pub calls_ok: u64,
    /// Calls that failed (transport, a gRPC error status, or the plugin
    /// down).
    pub calls_failed: u64,
    /// What the current process costs (memory, CPU time, fds), read from
    /// `/proc` when the status was taken; `None` while no process runs or
    /// once it has gone.
    pub usage: Option<ProcessUsage>,
    /// The latency of every call through the supervised channel so far.
    pub latency: LatencyHistogram,
}

/// Something that happened to a supervised plugin.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SupervisorEvent {
    /// A process started and passed its handshake.
    Started {
        /// The plugin's name.
        name: String,
        /// Its process id, when it has one.
        pid: Option<u32>,
        /// Restarts so far.
        restarts: u64,
    },
    /// A plugin an earlier host process left running was taken over from
    /// its reattach ticket (see [`Supervisor::persistent`](super::Supervisor::persistent)).
    Adopted {
        /// The plugin's name.
        name: String,
        /// Its process id.
        pid: Option<u32>,
    },
    /// The plugin was replaced by a reload: calls go to the new process,
    /// the old one was stopped after its calls finished.
    Reloaded {
        /// The plugin's name.
        name: String,
        /// The new process's id.
        pid: Option<u32>,
        /// The replaced process's id.
        previous_pid: Option<u32>,
    },
    /// The process ended or was taken for hung.
    Exited {
        /// The plugin's name.
        name: String,
        /// How it ended, when that could be collected.
        status: Option<ExitStatus>,
        /// Why the supervisor considers it down.
        reason: String,
    },
    /// A start failed before the plugin served.
    StartFailed {
        /// The plugin's name.
        name: String,
        /// The start's error.
        error: String,
    },
    /// The next start is in `backoff`.
    Restarting {
        /// The plugin's name.
        name: String,
        /// The delay.
        backoff: Duration,
        /// The restart's number (1 for the first).
        attempt: u64,
    },
    /// Too many failures in the window: no more restarts until `reset`.
    CircuitOpen {
        /// The plugin's name.
        name: String,
        /// Failures within the window.
        failures: usize,
    },
    /// The plugin was shut down with its supervisor.
    Stopped {
        /// The plugin's name.
        name: String,
    },
}

/// The live record behind [`PluginStatus`].
#[derive(Debug)]
pub(super) struct Record {
    pub(super) state: PluginState,
    pub(super) pid: Option<u32>,
    pub(super) serving_since: Option<Instant>,
    pub(super) restarts: u64,
    pub(super) recent_failures: usize,
    pub(super) last_exit: Option<Option<ExitStatus>>,
    pub(super) last_error: Option<String>,
    pub(super) calls_in_flight: u64,
    /// Calls in flight per generation (one per start or reload), so a
    /// reload knows when the old process's calls are done.
    pub(super) in_flight_by_generation: std::collections::BTreeMap<u64, u64>,
    pub(super) calls_ok: u64,
    pub(super) calls_failed: u64,
    pub(super) latencies: Latencies,
}

impl Record {
    pub(super) fn new() -> Self {
        Self {
            state: PluginState::Starting,
            pid: None,
            serving_since: None,
            restarts: 0,
            recent_failures: 0,
            last_exit: None,
            last_error: None,
            calls_in_flight: 0,
            in_flight_by_generation: std::collections::BTreeMap::new(),
            calls_ok: 0,
            calls_failed: 0,
            latencies: Latencies::new(),
        }
    }

    /// Everything but the usage, which is read from `/proc` after the
    /// record's lock is released.
    pub(super) fn snapshot(&self, name: &str) -> PluginStatus {
        PluginStatus {
            name: name.to_owned(),
            state: self.state,
            pid: self.pid,
            uptime: self.serving_since.map(|since| since.elapsed()),
            restarts: self.restarts,
            recent_failures: self.recent_failures,
            last_exit: self.last_exit,
            last_error: self.last_error.clone(),
            calls_in_flight: self.calls_in_flight,
            calls_ok: self.calls_ok,
            calls_failed: self.calls_failed,
            usage: None,
            latency: self.latencies.snapshot(),
        }
    }
}

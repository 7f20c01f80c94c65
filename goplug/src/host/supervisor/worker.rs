//! One supervised plugin's life: start, watch (exit through the process
//! handle, hangs through health checks), stop, back off, restart, or open
//! the circuit; and on cancellation, a graceful shutdown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::Recipe;
use super::route::{Current, Shared};
use super::status::{PluginState, SupervisorEvent};
use crate::host::Client;

/// The longest single wait for an exit; waits repeat while the plugin runs.
const EXIT_WAIT: Duration = Duration::from_secs(3600);

/// Why a serving process is no longer served.
enum Down {
    Exited,
    Hung(String),
    Cancelled,
}

pub(super) async fn run(shared: Arc<Shared>, recipe: Recipe, cancel: CancellationToken) {
    let origin = Instant::now();
    let mut window = super::policy::FailureWindow::default();
    let mut attempt: u32 = 0;
    let mut rng = fastrand::Rng::new();
    loop {
        shared.record().state = PluginState::Starting;
        let started = tokio::select! {
            started = recipe().start() => started,
            () = cancel.cancelled() => break,
        };
        let served_for = match started {
            Ok(client) => match serve(&shared, client, &cancel).await {
                Some(served_for) => served_for,
                None => break,
            },
            Err(error) => {
                let error = error.to_string();
                shared.record().last_error = Some(error.clone());
                shared.report(SupervisorEvent::StartFailed {
                    name: shared.name.clone(),
                    error,
                });
                Duration::ZERO
            }
        };
        if served_for >= shared.policy.reset_after {
            attempt = 0;
        }
        let circuit_opens = window.record(origin.elapsed(), &shared.policy);
        shared.record().recent_failures = window.len();
        if circuit_opens {
            shared.record().state = PluginState::CircuitOpen;
            shared.current.send_replace(Current::CircuitOpen);
            shared.report(SupervisorEvent::CircuitOpen {
                name: shared.name.clone(),
                failures: window.len(),
            });
            tokio::select! {
                () = shared.reset.notified() => {}
                () = cancel.cancelled() => break,
            }
            window.clear();
            attempt = 0;
            shared.record().recent_failures = 0;
            continue;
        }
        let backoff = shared.policy.backoff_with_jitter(attempt, rng.f64());
        attempt = attempt.saturating_add(1);
        let restart = {
            let mut record = shared.record();
            record.state = PluginState::Restarting { backoff };
            record.restarts + 1
        };
        shared.report(SupervisorEvent::Restarting {
            name: shared.name.clone(),
            backoff,
            attempt: restart,
        });
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = cancel.cancelled() => break,
        }
        shared.record().restarts = restart;
    }
    shared.current.send_replace(Current::Stopped);
    shared.record().state = PluginState::Stopped;
    shared.report(SupervisorEvent::Stopped {
        name: shared.name.clone(),
    });
}

/// Serves one started process until it exits, hangs or the supervisor is
/// cancelled; then stops it. How long it served, or `None` when cancelled.
async fn serve(shared: &Shared, client: Client, cancel: &CancellationToken) -> Option<Duration> {
    let since = Instant::now();
    let pid = client.pid();
    let restarts = {
        let mut record = shared.record();
        record.state = PluginState::Serving;
        record.pid = pid;
        record.serving_since = Some(since);
        record.restarts
    };
    // Reported before calls reach it, so the event precedes their results.
    shared.report(SupervisorEvent::Started {
        name: shared.name.clone(),
        pid,
        restarts,
    });
    shared.current.send_replace(Current::Up(client.channel()));
    let down = watch(shared, &client, cancel).await;
    // New calls wait (or fail fast) from here; calls in flight on the old
    // process finish or fail with it.
    shared
        .current
        .send_replace(if matches!(down, Down::Cancelled) {
            Current::Stopped
        } else {
            Current::Down
        });
    let report = client.shutdown().await;
    let reason = match &down {
        Down::Exited => "the plugin process exited".to_owned(),
        Down::Hung(why) => why.clone(),
        Down::Cancelled => return None,
    };
    {
        let mut record = shared.record();
        record.pid = None;
        record.serving_since = None;
        record.last_exit = Some(report.status);
        record.last_error = Some(reason.clone());
    }
    shared.report(SupervisorEvent::Exited {
        name: shared.name.clone(),
        status: report.status,
        reason,
    });
    Some(since.elapsed())
}

/// Waits for the process to exit, to fail its health checks, or for the
/// supervisor to be cancelled.
async fn watch(shared: &Shared, client: &Client, cancel: &CancellationToken) -> Down {
    let policy = &shared.policy;
    let exited = async { while !client.wait_exit(EXIT_WAIT).await {} };
    let hung = async {
        let Some(interval) = policy.health_interval else {
            return std::future::pending::<String>().await;
        };
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failed = 0;
        loop {
            ticks.tick().await;
            let checked = tokio::time::timeout(policy.health_timeout, client.ping()).await;
            let error = match checked {
                Ok(Ok(())) => {
                    failed = 0;
                    continue;
                }
                Ok(Err(error)) => error.to_string(),
                Err(_) => format!("no answer within {:?}", policy.health_timeout),
            };
            failed += 1;
            if failed >= policy.health_failures {
                return format!("{failed} health checks in a row failed, the last: {error}");
            }
        }
    };
    tokio::select! {
        () = exited => Down::Exited,
        why = hung => Down::Hung(why),
        () = cancel.cancelled() => Down::Cancelled,
    }
}

//! One supervised plugin's life: start, watch (exit through the process
//! handle, hangs through health checks), stop, back off, restart, or open
//! the circuit; reloads to a new recipe without downtime; and on
//! cancellation, a graceful shutdown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::Recipe;
use super::persist::StateDir;
use super::route::{Current, Serving, Shared};
use super::status::{PluginState, SupervisorEvent};
use crate::error::{Error, Result};
use crate::host::{Client, ClientBuilder};

/// The longest single wait for an exit; waits repeat while the plugin runs.
const EXIT_WAIT: Duration = Duration::from_secs(3600);

/// A request to replace the plugin with what `recipe` starts.
pub(super) struct Reload {
    pub(super) recipe: Recipe,
    /// How long the old process's calls may take to finish.
    pub(super) drain: Duration,
    pub(super) reply: oneshot::Sender<Result<()>>,
}

/// Why a serving process is no longer served.
enum Down {
    Exited,
    Hung(String),
    Cancelled,
}

/// How a process came to serve.
enum Opened {
    Started,
    Adopted,
    Reloaded { previous_pid: Option<u32> },
}

/// The worker's state across starts.
struct Worker {
    shared: Arc<Shared>,
    recipe: Recipe,
    reloads: mpsc::Receiver<Reload>,
    /// Where the serving process's reattach ticket is kept, if anywhere.
    state: Option<Arc<StateDir>>,
    cancel: CancellationToken,
    generation: u64,
}

pub(super) async fn run(
    shared: Arc<Shared>,
    recipe: Recipe,
    reloads: mpsc::Receiver<Reload>,
    state: Option<Arc<StateDir>>,
    cancel: CancellationToken,
) {
    let mut worker = Worker {
        shared,
        recipe,
        reloads,
        state,
        cancel,
        generation: 0,
    };
    worker.supervise().await;
    let shared = &worker.shared;
    shared.current.send_replace(Current::Stopped);
    shared.record().state = PluginState::Stopped;
    shared.report(SupervisorEvent::Stopped {
        name: shared.name.clone(),
    });
}

impl Worker {
    async fn supervise(&mut self) {
        let origin = Instant::now();
        let mut window = super::policy::FailureWindow::default();
        let mut attempt: u32 = 0;
        let mut rng = fastrand::Rng::new();
        let shared = self.shared.clone();
        let mut adopted = tokio::select! {
            adopted = self.adopt() => adopted,
            () = self.cancel.cancelled() => return,
        };
        loop {
            shared.record().state = PluginState::Starting;
            let (started, how) = match adopted.take() {
                Some(client) => (Ok(client), Opened::Adopted),
                None => {
                    let started = tokio::select! {
                        started = self.builder().start() => started,
                        () = self.cancel.cancelled() => return,
                    };
                    (started, Opened::Started)
                }
            };
            let served_for = match started {
                Ok(client) => match self.serve(client, how).await {
                    Some(served_for) => served_for,
                    None => return,
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
                    // A new recipe is a fix: start it now.
                    Some(reload) = self.reloads.recv() => {
                        self.take_recipe(reload);
                        shared.current.send_replace(Current::Down);
                    }
                    () = self.cancel.cancelled() => return,
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
            let wake = tokio::time::Instant::now() + backoff;
            loop {
                tokio::select! {
                    () = tokio::time::sleep_until(wake) => break,
                    Some(reload) = self.reloads.recv() => self.take_recipe(reload),
                    () = self.cancel.cancelled() => return,
                }
            }
            shared.record().restarts = restart;
            #[cfg(feature = "metrics")]
            shared.facade.restarted();
        }
    }

    /// The recipe's builder; a plugin whose ticket is kept must outlive
    /// the host.
    fn builder(&self) -> ClientBuilder {
        self.builder_of(&self.recipe)
    }

    fn builder_of(&self, recipe: &Recipe) -> ClientBuilder {
        let builder = recipe();
        match self.state {
            Some(_) => builder.keep_running(true),
            None => builder,
        }
    }

    /// Takes over the plugin an earlier host left running, from its
    /// ticket; `None` when there is none or it cannot be reached (the
    /// ticket is then forgotten and the plugin started afresh).
    async fn adopt(&self) -> Option<Client> {
        let state = self.state.as_ref()?;
        let name = &self.shared.name;
        let ticket = state.load(name)?;
        let pid = ticket.config().pid;
        match self.builder().reattach_ticket(ticket).start().await {
            Ok(client) => Some(client),
            Err(error) => {
                // Not signalled: the pid may belong to another process now.
                tracing::warn!(plugin = %name, pid, %error, "cannot adopt the plugin an earlier host left running; starting a new one");
                state.remove(name);
                None
            }
        }
    }

    /// A reload while the plugin is down: its next start uses the recipe.
    fn take_recipe(&mut self, reload: Reload) {
        self.recipe = reload.recipe;
        let _ = reload.reply.send(Ok(()));
    }

    /// Serves started processes (one, or more through reloads) until one
    /// exits, hangs or the supervisor is cancelled; then stops it. How long
    /// it served, or `None` when cancelled.
    async fn serve(&mut self, mut client: Client, how: Opened) -> Option<Duration> {
        let shared = self.shared.clone();
        let mut since = Instant::now();
        self.open(&client, since, how);
        let down = loop {
            tokio::select! {
                down = watch(&shared, &client) => break down,
                () = self.cancel.cancelled() => break Down::Cancelled,
                Some(reload) = self.reloads.recv() => {
                    let previous = client.pid();
                    client = self.reload(client, reload).await;
                    if client.pid() != previous {
                        since = Instant::now();
                    }
                }
            }
        };
        // New calls wait (or fail fast) from here; calls in flight on the
        // old process finish or fail with it.
        shared
            .current
            .send_replace(if matches!(down, Down::Cancelled) {
                Current::Stopped
            } else {
                Current::Down
            });
        let report = client.shutdown().await;
        if let Some(state) = &self.state {
            state.remove(&shared.name);
        }
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
        #[cfg(feature = "metrics")]
        shared.facade.usage(None);
        shared.report(SupervisorEvent::Exited {
            name: shared.name.clone(),
            status: report.status,
            reason,
        });
        Some(since.elapsed())
    }

    /// Sends calls to `client` from now on, as a new generation.
    fn open(&mut self, client: &Client, since: Instant, how: Opened) {
        let shared = &self.shared;
        let pid = client.pid();
        let restarts = {
            let mut record = shared.record();
            record.state = PluginState::Serving;
            record.pid = pid;
            record.serving_since = Some(since);
            record.restarts
        };
        if let (Some(state), Some(ticket)) = (&self.state, client.reattach_ticket()) {
            state.save(&shared.name, &ticket);
        }
        // Reported before calls reach it, so the event precedes their results.
        let name = shared.name.clone();
        shared.report(match how {
            Opened::Started => SupervisorEvent::Started {
                name,
                pid,
                restarts,
            },
            Opened::Adopted => SupervisorEvent::Adopted { name, pid },
            Opened::Reloaded { previous_pid } => SupervisorEvent::Reloaded {
                name,
                pid,
                previous_pid,
            },
        });
        self.generation += 1;
        shared.current.send_replace(Current::Up(Serving {
            channel: client.channel(),
            netrpc: client.netrpc_dispenser(),
            generation: self.generation,
        }));
    }

    /// Starts and health-checks the reload's plugin while `old` serves; on
    /// success sends calls to it, lets the old calls finish (bounded) and
    /// stops the old process. Returns the client that serves now: the new
    /// one, or `old` when the new one failed (the reply says why).
    async fn reload(&mut self, old: Client, reload: Reload) -> Client {
        let Reload {
            recipe,
            drain,
            reply,
        } = reload;
        let name = self.shared.name.clone();
        let refused = |reason: String, error: Option<Error>| Error::Reload {
            name: name.clone(),
            reason,
            error: error.map(|error| Box::new(error) as crate::BoxError),
        };
        let new = match self.builder_of(&recipe).start().await {
            Ok(new) => new,
            Err(error) => {
                let reason = format!("the new plugin did not start: {error}");
                let _ = reply.send(Err(refused(reason, Some(error))));
                return old;
            }
        };
        let timeout = self.shared.policy.health_timeout;
        let healthy = match tokio::time::timeout(timeout, new.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err((
                format!("the new plugin failed its health check: {error}"),
                Some(error),
            )),
            Err(_) => Err((
                format!("the new plugin did not answer its health check within {timeout:?}"),
                None,
            )),
        };
        if let Err((reason, error)) = healthy {
            new.shutdown().await;
            let _ = reply.send(Err(refused(reason, error)));
            return old;
        }
        let old_generation = self.generation;
        self.open(
            &new,
            Instant::now(),
            Opened::Reloaded {
                previous_pid: old.pid(),
            },
        );
        self.recipe = recipe;
        let drained = self.shared.drained(old_generation, drain).await;
        if !drained {
            tracing::warn!(plugin = %name, ?drain, "calls on the replaced plugin did not finish in time; stopping it");
        }
        let report = old.shutdown().await;
        self.shared.record().last_exit = Some(report.status);
        let _ = reply.send(Ok(()));
        new
    }
}

/// Waits for the process to exit or to fail its health checks.
async fn watch(shared: &Shared, client: &Client) -> Down {
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
                    // Exporters see the usage without anyone asking.
                    #[cfg(feature = "metrics")]
                    shared.usage(client.pid());
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
    }
}

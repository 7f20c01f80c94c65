//! Supervision: plugins kept serving across crashes and hangs, with
//! clients that survive their restarts.
//!
//! go-plugin launches and stops a plugin; production hosts rebuild the rest
//! (Vault restarts a crashed plugin, Nomad backs off 5 s, 20 s, 80 s, then
//! every 2 min, Grafana polls health every second). A [`Supervisor`] owns
//! named plugins, each started from a recipe (a closure returning a
//! [`ClientBuilder`], so every start gets a fresh command), notices an exit
//! at once (the process handle is a pidfd) and a hang by failed health
//! checks, restarts with backoff and jitter, opens a circuit after too many
//! failures, and shuts everything down in bounded time.
//!
//! ```no_run
//! # mod pb { #[derive(Debug, Clone)] pub struct KvClient<T>(T);
//! #   impl<T> KvClient<T> { pub fn new(t: T) -> Self { Self(t) }
//! #     pub fn max_decoding_message_size(self, _: usize) -> Self { self }
//! #     pub fn max_encoding_message_size(self, _: usize) -> Self { self } } }
//! # async fn example() -> goplug::Result<()> {
//! use std::time::Duration;
//! use goplug::host::supervisor::{RestartPolicy, Supervisor};
//! use goplug::host::{Channel, Client, GrpcPlugin, PluginSet, shell_command};
//! use goplug::HandshakeConfig;
//!
//! const HANDSHAKE: HandshakeConfig = HandshakeConfig::new(1, "BASIC_PLUGIN", "hello");
//! goplug::grpc_client!(pb::KvClient);
//! const KV: GrpcPlugin<pb::KvClient<Channel>> = GrpcPlugin::new("kv");
//!
//! let supervisor = Supervisor::new();
//! let kv = supervisor.supervise("kv", RestartPolicy::default(), || {
//!     Client::builder(HANDSHAKE)
//!         .plugins(PluginSet::new().plugin(KV))
//!         .command(shell_command("./kv-go-grpc"))
//! });
//! kv.wait_serving(Duration::from_secs(10)).await?;
//! // Keeps working across restarts: calls wait while the plugin is down.
//! let client = kv.dispense(KV)?;
//! # let _ = client;
//! supervisor.shutdown(Duration::from_secs(10)).await;
//! # Ok(()) }
//! ```

mod metrics;
mod netrpc_route;
mod persist;
mod policy;
mod route;
mod status;
mod worker;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::builder::ClientBuilder;
use super::handle::{GrpcPlugin, NetRpcPlugin};
use crate::error::{Error, Result};
use crate::transport::Channel;

pub use metrics::{LatencyHistogram, ProcessUsage};
pub use policy::{RestartPolicy, WhenDown};
pub use status::{PluginState, PluginStatus, SupervisorEvent};

use route::{Current, Shared};

/// How a supervised plugin is started, each time.
type Recipe = Arc<dyn Fn() -> ClientBuilder + Send + Sync>;

/// Owns supervised plugins and keeps them serving. Dropping it stops
/// supervising and kills its plugins; [`shutdown`](Self::shutdown) stops
/// them gracefully.
#[derive(Debug)]
pub struct Supervisor {
    plugins: Mutex<Vec<Arc<Shared>>>,
    workers: Mutex<JoinSet<()>>,
    cancel: CancellationToken,
    /// Where reattach tickets are kept, for a supervisor that outlives
    /// its host process.
    state: Option<Arc<persist::StateDir>>,
}

impl Default for Supervisor {
    fn default() -> Self {
        Self::new()
    }
}

impl Supervisor {
    /// A supervisor with no plugins.
    pub fn new() -> Self {
        Self {
            plugins: Mutex::new(Vec::new()),
            workers: Mutex::new(JoinSet::new()),
            cancel: CancellationToken::new(),
            state: None,
        }
    }

    /// A supervisor whose plugins survive its host process: each serving
    /// plugin's [`ReattachTicket`](crate::host::ReattachTicket) (AutoMTLS
    /// keys included) is kept in `state_dir` (created with mode 0700, each
    /// ticket 0600), plugins are launched to keep running without the host
    /// ([`ClientBuilder::keep_running`]), and [`supervise`](Self::supervise)
    /// first adopts the plugin a previous host left under the same name
    /// (a [`SupervisorEvent::Adopted`]); when that fails it starts one.
    /// A graceful [`shutdown`](Self::shutdown) stops the plugins and
    /// removes their tickets; a host that is killed leaves both.
    ///
    /// Recipes must use the local runner. Go plugins are adopted as
    /// go-plugin allows reattaching; a Go plugin that writes to its stderr
    /// while no host is running is killed by `SIGPIPE`, as with go-plugin.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the directory cannot be created;
    /// [`Error::Config`] when it is open to other users.
    pub fn persistent(state_dir: impl Into<std::path::PathBuf>) -> Result<Self> {
        let state = persist::StateDir::open(state_dir.into())?;
        let mut supervisor = Self::new();
        supervisor.state = Some(Arc::new(state));
        Ok(supervisor)
    }

    /// Starts supervising a plugin: `recipe` is called for every start.
    /// Must be called within a tokio runtime. The plugin starts in the
    /// background; [`SupervisedPlugin::wait_serving`] waits for it.
    pub fn supervise(
        &self,
        name: impl Into<String>,
        policy: RestartPolicy,
        recipe: impl Fn() -> ClientBuilder + Send + Sync + 'static,
    ) -> SupervisedPlugin {
        let shared = Shared::new(name.into(), policy);
        let (reloads, reload_requests) = tokio::sync::mpsc::channel(4);
        self.plugins
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(shared.clone());
        let worker = worker::run(
            shared.clone(),
            Arc::new(recipe),
            reload_requests,
            self.state.clone(),
            self.cancel.child_token(),
        );
        self.workers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .spawn(worker);
        SupervisedPlugin { shared, reloads }
    }

    /// A snapshot of every supervised plugin.
    pub fn status(&self) -> Vec<PluginStatus> {
        // Copied out: reading `/proc` needs no lock held.
        let plugins = self
            .plugins
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        plugins.iter().map(|shared| shared.status()).collect()
    }

    /// Stops every plugin as [`Client::shutdown`](crate::host::Client::shutdown)
    /// does, in parallel, and returns once all are stopped or `timeout`
    /// has passed; past it, the remaining plugins are killed. Returns
    /// whether everything stopped within `timeout`.
    pub async fn shutdown(self, timeout: Duration) -> bool {
        self.cancel.cancel();
        let mut workers =
            std::mem::take(&mut *self.workers.lock().unwrap_or_else(PoisonError::into_inner));
        let all = async { while workers.join_next().await.is_some() {} };
        let in_time = tokio::time::timeout(timeout, all).await.is_ok();
        // Aborting drops the workers' clients, which kills their plugins.
        workers.abort_all();
        while workers.join_next().await.is_some() {}
        in_time
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// A handle to one supervised plugin: its state, its events, and clients
/// that keep working across its restarts. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SupervisedPlugin {
    shared: Arc<Shared>,
    reloads: tokio::sync::mpsc::Sender<worker::Reload>,
}

impl SupervisedPlugin {
    /// The plugin's name in its supervisor.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// A snapshot of its state, counters, call latencies and its current
    /// process's usage (read from `/proc` now).
    pub fn status(&self) -> PluginStatus {
        self.shared.status()
    }

    /// Its events from now on. A receiver that falls more than 256 events
    /// behind skips the oldest (`RecvError::Lagged`).
    pub fn events(&self) -> broadcast::Receiver<SupervisorEvent> {
        self.shared.events.subscribe()
    }

    /// A gRPC channel that sends each call to the plugin's current process:
    /// clients built on it (`KvClient::new(channel)`) keep working across
    /// restarts. While the plugin is down, a call waits or fails fast with
    /// `Unavailable` as the policy's [`WhenDown`] says; a call in flight
    /// when the process dies fails with `Unavailable`.
    pub fn channel(&self) -> Channel {
        Channel::routed(self.shared.clone())
    }

    /// A typed client on [`channel`](Self::channel).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a handle made with
    /// [`GrpcPlugin::with_broker`]: a broker belongs to one process, so it
    /// cannot outlive a restart.
    pub fn dispense<C>(&self, plugin: GrpcPlugin<C>) -> Result<C> {
        plugin.make_on_channel(self.channel()).ok_or_else(|| {
            Error::Config(format!(
                "plugin {:?} is dispensed with a broker, which does not survive a restart; \
                 supervise it without a broker, or dispense it from each `Client`",
                plugin.name()
            ))
        })
    }

    /// A client of a net/rpc plugin that keeps working across restarts:
    /// each call goes to the current process, through a client dispensed
    /// from it (`Dispenser.Dispense`) on the first call after each start.
    /// While the plugin is down a call waits or fails fast as the policy's
    /// [`WhenDown`] says, with [`Error::PluginDown`]; a call in flight
    /// when the process dies fails with [`Error::NetRpc`].
    ///
    /// The client's [`MuxBroker`](crate::netrpc::mux_broker::MuxBroker)
    /// belongs to no process (a broker cannot follow restarts): its
    /// `accept` and `dial` fail with [`Error::Broker`]. A plugin name the
    /// plugin lacks fails each call with its `unknown plugin type` error.
    pub fn dispense_netrpc<C>(&self, plugin: NetRpcPlugin<C>) -> C {
        let route = netrpc_route::NetRpcRoute::new(self.shared.clone(), plugin.name());
        let client = crate::netrpc::rpc::RpcClient::routed(Arc::new(route));
        plugin.make(client, &crate::netrpc::mux_broker::MuxBroker::detached())
    }

    /// Waits until the plugin serves, at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when it does not serve in time (its
    /// [`status`](Self::status) has the last failure);
    /// [`Error::PluginDown`] when its circuit is open or its supervisor has
    /// stopped it.
    pub async fn wait_serving(&self, timeout: Duration) -> Result<()> {
        let mut current = self.shared.current.subscribe();
        let up = tokio::time::timeout(
            timeout,
            current.wait_for(|now| !matches!(now, Current::Down)),
        )
        .await;
        match up {
            Ok(Ok(now)) if matches!(*now, Current::Up(..)) => Ok(()),
            Ok(_) => {
                let status = self.status();
                let last = status.last_error.unwrap_or_default();
                Err(Error::PluginDown {
                    name: status.name,
                    reason: format!("{:?}; last failure: {last}", status.state),
                })
            }
            Err(_) => Err(Error::Timeout {
                operation: "waiting for a supervised plugin to serve",
                timeout,
            }),
        }
    }

    /// Replaces the plugin without downtime: starts what `recipe` makes (a
    /// new binary or version), health-checks it, sends new calls to it, lets
    /// the calls in flight on the old process finish (at most `drain`), then
    /// stops the old process. Later restarts use `recipe`. A plugin that is
    /// down starts with `recipe` next (at once when its circuit is open).
    ///
    /// # Errors
    ///
    /// [`Error::Reload`] when the new plugin does not start or fails its
    /// health check: the old one keeps serving, and the error says why.
    /// [`Error::PluginDown`] when the supervisor has stopped.
    pub async fn reload(
        &self,
        recipe: impl Fn() -> ClientBuilder + Send + Sync + 'static,
        drain: Duration,
    ) -> Result<()> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let request = worker::Reload {
            recipe: Arc::new(recipe),
            drain,
            reply,
        };
        let stopped = || Error::PluginDown {
            name: self.shared.name.clone(),
            reason: "its supervisor has stopped".to_owned(),
        };
        self.reloads.send(request).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Closes an open circuit: the plugin is started again at once, its
    /// failures forgotten. Does nothing while the circuit is closed.
    pub fn reset(&self) {
        let reopened = self.shared.current.send_if_modified(|now| {
            let open = matches!(now, Current::CircuitOpen);
            if open {
                // Waiters now wait for the start instead of failing.
                *now = Current::Down;
            }
            open
        });
        if reopened {
            self.shared.reset.notify_one();
        }
    }
}

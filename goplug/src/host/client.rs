//! A connected plugin: go-plugin's `Client` and `ClientProtocol`:
//! dispensing clients, health checks, the broker, and letting a plugin go.

use std::fmt;
use std::process::ExitStatus;
use std::time::Duration;

use super::connected::{Background, Connection, Mode};
use super::exit::ExitCause;
use super::handle::{GrpcPlugin, NetRpcPlugin, PluginHandle};
use super::netrpc;
use super::plugin_set::{ClientFactory, PluginSet, downcast};
use super::process::{PluginProcess, ProcessState};
use super::sandbox::SandboxReport;
use super::socket_dir::SocketDir;
use super::ticket::{AutoMtlsKeys, ReattachTicket};
use super::version::VersionCell;
use crate::error::{Error, Result};
use crate::grpc::broker::GrpcBroker;
use crate::netrpc::mux_broker::MuxBroker;
use crate::protocol::reattach::ReattachConfig;
use crate::protocol::{HEALTH_SERVICE_NAME, PluginAddress, Protocol};
use crate::transport::Channel;
use crate::transport::tls::TlsVersion;

/// Bound on a health check.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// A running plugin: go-plugin's `Client` plus its `ClientProtocol`.
///
/// Dropping a `Client` kills the plugin without blocking; call
/// [`shutdown`](Self::shutdown) for a graceful exit.
pub struct Client {
    // Fields drop in order: the plugin is being killed before its socket
    // directory goes and before its connection and tasks let go.
    pub(super) process: PluginProcess,
    pub(super) socket_dir: SocketDir,
    pub(super) connection: Connection,
    pub(super) plugins: PluginSet,
    pub(super) background: Background,
    pub(super) mode: Mode,
    pub(super) shutdown_grace: Duration,
    pub(super) start_duration: Duration,
    /// What the plugin reported as its version, once asked.
    pub(super) plugin_version: VersionCell,
    /// The AutoMTLS material of the launch, for [`Client::reattach_ticket`].
    pub(super) auto_mtls_keys: Option<AutoMtlsKeys>,
    pub(super) sandbox: Option<SandboxReport>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("pid", &self.process.pid)
            .field("program", &self.process.program)
            .field("protocol", &self.connection.protocol)
            .field("version", &self.connection.version)
            .field("address", &self.connection.address)
            .field("plugins", &self.plugins)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// The negotiated protocol.
    pub fn protocol(&self) -> Protocol {
        self.connection.protocol
    }

    /// The negotiated app protocol version.
    pub fn negotiated_version(&self) -> u32 {
        self.connection.version
    }

    /// Where the plugin listens.
    pub fn address(&self) -> &PluginAddress {
        &self.connection.address
    }

    /// The plugin's process id; `None` when a runner keeps the plugin
    /// somewhere without one.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid
    }

    /// The config another host (or this one, later) reattaches with.
    pub fn reattach_config(&self) -> Option<ReattachConfig> {
        let pid = self.process.pid?;
        let test = matches!(self.mode, Mode::Attached { test: true });
        Some(
            ReattachConfig::new(
                self.connection.protocol,
                self.connection.version,
                self.connection.address.clone(),
                pid,
            )
            .test(test),
        )
    }

    /// What a later host process needs to take this plugin over: the
    /// [`reattach_config`](Self::reattach_config), the AutoMTLS keys of
    /// the launch and the plugin's socket directory. `None` for a plugin
    /// without a process id. It holds a private key: keep it private.
    ///
    /// go-plugin cannot reattach to a plugin launched with AutoMTLS; with a
    /// ticket, [`ClientBuilder::reattach_ticket`](super::ClientBuilder::reattach_ticket) can.
    pub fn reattach_ticket(&self) -> Option<ReattachTicket> {
        Some(ReattachTicket {
            config: self.reattach_config()?,
            auto_mtls: self.auto_mtls_keys.clone(),
            socket_dir: Some(self.socket_dir.path().to_path_buf())
                .filter(|dir| !dir.as_os_str().is_empty()),
        })
    }

    /// Lets the plugin run on without this host and returns how to
    /// reattach to it. The plugin must have been launched with
    /// [`ClientBuilder::keep_running`](super::ClientBuilder::keep_running) (or attached to): otherwise it
    /// would die with the host anyway.
    ///
    /// Its socket directory is left in place; the plugin removes its
    /// socket when it exits. A plugin that writes to stderr after the host
    /// exits gets EPIPE (a Go plugin is killed by SIGPIPE), as in go-plugin.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a plugin not launched to keep running, or one
    /// without a process id.
    pub fn detach(self) -> Result<ReattachConfig> {
        if matches!(
            self.mode,
            Mode::Launched {
                keep_running: false
            }
        ) {
            return Err(Error::Config(
                "only a plugin launched with keep_running(true) can be detached".to_owned(),
            ));
        }
        let config = self.reattach_config().ok_or_else(|| {
            Error::Config("the plugin has no process id to reattach to".to_owned())
        })?;
        let Self {
            process,
            socket_dir,
            ..
        } = self;
        socket_dir.keep();
        process.detach();
        Ok(config)
    }

    /// Time from launch to a connected client.
    pub fn start_duration(&self) -> Duration {
        self.start_duration
    }

    /// The TLS version of the connection to the plugin; `None` without TLS.
    pub fn tls_version(&self) -> Option<TlsVersion> {
        let negotiated = self.connection.negotiated_tls.as_ref()?;
        negotiated.lock().ok().and_then(|version| *version)
    }

    /// The host's broker, to serve callbacks the plugin dials
    /// ([`GrpcBroker::accept_and_serve`]) and to dial servers the plugin
    /// announces ([`GrpcBroker::dial`]).
    pub fn broker(&self) -> &GrpcBroker {
        &self.background.broker
    }

    /// Whether the broker is multiplexed over the one connection
    /// ([`ClientBuilder::grpc_broker_multiplex`](super::ClientBuilder::grpc_broker_multiplex)).
    pub fn broker_multiplexed(&self) -> bool {
        self.connection.mux.is_some()
    }

    /// The plugin's gRPC channel, for services outside the plugin set.
    pub fn channel(&self) -> Channel {
        self.connection.channel.clone()
    }

    /// Dispenses a plugin declared as a typed handle ([`GrpcPlugin`] or
    /// [`NetRpcPlugin`]) and registered in the negotiated plugin set. For
    /// gRPC it is local, as in go-plugin, and gives the client:
    /// `let mut kv = client.dispense(KV)?;`. For net/rpc it asks the
    /// plugin (`Dispenser.Dispense`) and gives a future:
    /// `let kv = client.dispense(KV_RPC).await?;`.
    ///
    /// For a gRPC service you do not register at all, the minimal path is
    /// the generated client on the plugin's channel:
    /// `KvClient::new(client.channel())`.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownPlugin`] when the negotiated set lacks the plugin;
    /// [`Error::Config`] when the plugin speaks the other protocol; for
    /// net/rpc also the plugin's `unknown plugin type`
    /// ([`Error::RemoteCall`]) and broker errors.
    pub fn dispense<P: PluginHandle>(&self, plugin: P) -> P::Dispensed<'_> {
        plugin.dispense_from(self)
    }

    pub(super) fn dispense_grpc_handle<C: 'static>(&self, plugin: GrpcPlugin<C>) -> Result<C> {
        let name = plugin.name();
        if self.connection.netrpc.is_some() {
            return Err(Error::Config(format!(
                "plugin {name:?} is declared as a GrpcPlugin, but the plugin speaks net/rpc: declare it as a NetRpcPlugin"
            )));
        }
        self.plugins.registration::<C>(name)?;
        Ok(plugin.make(self.connection.channel.clone(), &self.background.broker))
    }

    pub(super) async fn dispense_netrpc_handle<C: 'static>(
        &self,
        plugin: NetRpcPlugin<C>,
    ) -> Result<C> {
        let name = plugin.name();
        let Some(connection) = &self.connection.netrpc else {
            return Err(Error::Config(format!(
                "plugin {name:?} is declared as a NetRpcPlugin, but the plugin speaks gRPC: declare it as a GrpcPlugin"
            )));
        };
        self.plugins.registration::<C>(name)?;
        // As go-plugin: the plugin is asked first, so a name it lacks gets
        // its `unknown plugin type` error.
        let client = connection.dispense(name).await?;
        Ok(plugin.make(client, connection.broker()))
    }

    /// Returns the client registered as `name` in the negotiated plugin
    /// set, for sets built by name ([`PluginSet::grpc`]) rather than with
    /// typed handles. Like go-plugin's gRPC dispense this is local: no RPC
    /// is made.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownPlugin`] for a name the set lacks;
    /// [`Error::DispenseType`] when `T` is not the registered client type;
    /// [`Error::Config`] when the plugin speaks net/rpc (use
    /// [`dispense_named_async`](Self::dispense_named_async)).
    pub fn dispense_named<T: 'static>(&self, name: &str) -> Result<T> {
        let registration = self.plugins.registration::<T>(name)?;
        if self.connection.netrpc.is_some() {
            return Err(Error::Config(format!(
                "the plugin speaks net/rpc: dispense {name:?} with dispense_named_async"
            )));
        }
        let ClientFactory::Grpc(make) = &registration.factory else {
            // go-plugin's text.
            return Err(Error::Config(format!(
                "plugin {name:?} doesn't support gRPC"
            )));
        };
        downcast(
            name,
            registration,
            make(self.connection.channel.clone(), &self.background.broker),
        )
    }

    /// Returns the client registered as `name`, for plugins of either
    /// protocol: local for gRPC (as [`dispense_named`](Self::dispense_named));
    /// for net/rpc, `Dispenser.Dispense` and a brokered stream, as
    /// go-plugin's `RPCClient.Dispense`.
    ///
    /// # Errors
    ///
    /// As [`dispense_named`](Self::dispense_named); for net/rpc also the
    /// plugin's `unknown plugin type` ([`Error::RemoteCall`]) and broker
    /// errors.
    pub async fn dispense_named_async<T: 'static>(&self, name: &str) -> Result<T> {
        let Some(connection) = &self.connection.netrpc else {
            return self.dispense_named(name);
        };
        let registration = self.plugins.registration::<T>(name)?;
        // As go-plugin: the plugin is asked first, so a name it lacks gets
        // its `unknown plugin type` error.
        let client = connection.dispense(name).await?;
        let ClientFactory::NetRpc(make) = &registration.factory else {
            return Err(Error::Config(format!(
                "plugin {name:?} doesn't support net/rpc"
            )));
        };
        downcast(name, registration, make(client, connection.broker()))
    }

    /// What dispenses a net/rpc plugin's clients, for routes that follow
    /// a supervised plugin.
    pub(super) fn netrpc_dispenser(&self) -> Option<netrpc::Dispenser> {
        self.connection
            .netrpc
            .as_ref()
            .map(netrpc::NetRpcConnection::dispenser)
    }

    /// The net/rpc broker (go-plugin's `MuxBroker`) of a net/rpc plugin.
    pub fn mux_broker(&self) -> Option<&MuxBroker> {
        self.connection
            .netrpc
            .as_ref()
            .map(netrpc::NetRpcConnection::broker)
    }

    /// Health-checks the plugin (`grpc.health.v1` service `plugin`), as
    /// go-plugin's `Ping`.
    ///
    /// # Errors
    ///
    /// [`Error::Ping`] when the check fails or reports not serving,
    /// [`Error::Timeout`] after 5 s.
    pub async fn ping(&self) -> Result<()> {
        if let Some(connection) = &self.connection.netrpc {
            return connection.ping().await;
        }
        let mut health =
            tonic_health::pb::health_client::HealthClient::new(self.connection.channel.clone());
        let request = tonic_health::pb::HealthCheckRequest {
            service: HEALTH_SERVICE_NAME.to_owned(),
        };
        let response = tokio::time::timeout(PING_TIMEOUT, health.check(request))
            .await
            .map_err(|_| Error::Timeout {
                operation: "plugin health check",
                timeout: PING_TIMEOUT,
            })?
            .map_err(|status| Error::Ping {
                reason: format!("{}: {}", status.code(), status.message()),
                error: Some(Box::new(status)),
            })?;
        use tonic_health::pb::health_check_response::ServingStatus;
        match ServingStatus::try_from(response.get_ref().status) {
            Ok(ServingStatus::Serving) => Ok(()),
            Ok(status) => Err(Error::Ping {
                reason: format!("the plugin reports {}", status.as_str_name()),
                error: None,
            }),
            Err(_) => Err(Error::Ping {
                reason: format!(
                    "the plugin reports unknown status {}",
                    response.get_ref().status
                ),
                error: None,
            }),
        }
    }

    /// Whether the plugin process has exited.
    pub fn exited(&self) -> bool {
        self.process.state() != ProcessState::Running
    }

    /// The exit status, once the process has exited.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.process.exit_status()
    }

    /// How the plugin ended, once it has: its exit code, or the signal
    /// that ended it read as the limit it stands for (a plugin over its
    /// CPU time gets SIGXCPU, a blocked system call SIGSYS, ...).
    pub fn exit_cause(&self) -> Option<ExitCause> {
        self.exit_status().map(ExitCause::of)
    }

    /// For a sandboxed plugin ([`ClientBuilder::sandbox`](super::ClientBuilder::sandbox)),
    /// what the sandbox could not apply; `None` without a sandbox.
    pub fn sandbox_report(&self) -> Option<&SandboxReport> {
        self.sandbox.as_ref()
    }

    /// Waits until the plugin process exits, or `timeout`; returns whether it did.
    /// Synced output the plugin sent before exiting is in the host's
    /// writers by then (waiting for it within `timeout`, at most 1 s), as
    /// after [`shutdown`](Self::shutdown).
    pub async fn wait_exit(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        if !self.process.wait_gone(timeout).await {
            return false;
        }
        // The copy ends with the plugin's stream, which ends once the plugin
        // has sent everything, or with the connection.
        let bound = deadline.min(tokio::time::Instant::now() + Duration::from_secs(1));
        let mut done = self.background.stdio_done.clone();
        let _ = tokio::time::timeout_at(bound, done.wait_for(|done| *done)).await;
        true
    }
}

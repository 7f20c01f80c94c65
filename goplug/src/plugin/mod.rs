//! The plugin side: serve tonic services to a go-plugin host.
//!
//! A plugin binary builds a [`ServeConfig`] and hands it to [`run`] (from a
//! plain `main`) or awaits [`serve`] (inside a runtime). goplug then does
//! what go-plugin's `plugin.Serve` does: checks the magic cookie, negotiates
//! the app protocol version, listens on a Unix socket (or TCP), registers the
//! health, reflection, controller and stdio services next to yours, prints
//! the handshake line on stdout, ignores SIGINT, and serves until the host
//! asks it to shut down.
//!
//! ```no_run
//! use goplug::HandshakeConfig;
//! use goplug::plugin::{PluginSet, ServeConfig};
//!
//! const HANDSHAKE: HandshakeConfig = HandshakeConfig::new(1, "BASIC_PLUGIN", "hello");
//!
//! fn main() -> std::process::ExitCode {
//! #   // Stand-in for a tonic-generated server such as `KvServer::new(MyKv)`.
//! #   let kv_server = tonic_health::server::health_reporter().1;
//!     let config = ServeConfig::new(HANDSHAKE).plugins(PluginSet::new().grpc("kv", kv_server));
//!     goplug::plugin::run(config)
//! }
//! ```
//!
//! For the smallest and fastest-starting binaries, build plugins with the
//! workspace's `plugin` profile, statically linked, and pack the code they
//! run with `scripts/plugin-order.sh`: an idle plugin then keeps about
//! 2 MiB resident instead of 4 (README, "Writing a plugin").

pub(crate) mod netrpc;
mod parent;
mod reflection;
mod services;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tonic::service::{Routes, RoutesBuilder};

pub use crate::transport::Transport;

use crate::error::{Error, Result};
use crate::grpc::GrpcService;
use crate::grpc::broker::{BrokerTls, GrpcBroker};
use crate::grpc::{HEALTH_SERVICE_NAME, PLUGIN_FILE_DESCRIPTOR_SET, pb};
use crate::protocol::env;
use crate::protocol::handshake::{
    HandshakeConfig, HandshakeLine, PluginAddress, Protocol, negotiate, parse_go_bool,
};
use crate::protocol::reattach::ReattachConfig;
use crate::transport::dial::{BoxedIo, TlsConnect};
use crate::transport::listen::BoundListener;
use crate::transport::serve::{SHUTDOWN_DRAIN, accept_one, serve_listener, serve_on};
use crate::transport::tls::{self, CertCurve, TlsVersion};

/// The gRPC health service every plugin serves.
const HEALTH_SERVICE_NAME_GRPC: &str = "grpc.health.v1.Health";

type AddRoutes = Box<dyn FnOnce(&mut RoutesBuilder, &GrpcBroker) + Send>;
type ShutdownSignal = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The services a plugin serves for one app protocol version: go-plugin's
/// `PluginSet` (name to implementation), for gRPC plugins.
///
/// The names only matter to net/rpc hosts; a gRPC host dispenses locally
/// and reaches every service of the negotiated set over one connection.
#[derive(Default)]
pub struct PluginSet {
    /// Plugin name, gRPC service name, how to add it.
    plugins: Vec<(String, &'static str, AddRoutes)>,
    /// net/rpc plugins: name, how to make its service per dispense.
    netrpc: Vec<(String, netrpc::NetRpcFactory)>,
}

impl fmt::Debug for PluginSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginSet")
            .field("plugins", &self.names())
            .finish()
    }
}

impl PluginSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a gRPC plugin: a tonic-generated server wrapping your
    /// implementation, such as `KvServer::new(MyKv)`.
    #[must_use]
    pub fn grpc<S>(self, name: impl Into<String>, service: S) -> Self
    where
        S: GrpcService,
    {
        self.grpc_with_broker(name, move |_| service)
    }

    /// Adds a gRPC plugin built with the plugin's [`GrpcBroker`], for
    /// services that call back into the host (go-plugin's
    /// `GRPCServer(broker, server)`): `|broker| CounterServer::new(MyCounter::new(broker.clone()))`.
    #[must_use]
    pub fn grpc_with_broker<S>(
        mut self,
        name: impl Into<String>,
        make: impl FnOnce(&GrpcBroker) -> S + Send + 'static,
    ) -> Self
    where
        S: GrpcService,
    {
        self.plugins.push((
            name.into(),
            <S as tonic::server::NamedService>::NAME,
            Box::new(move |routes: &mut RoutesBuilder, broker: &GrpcBroker| {
                routes.add_service(make(broker));
            }),
        ));
        self
    }

    /// The plugin names in this set.
    pub fn names(&self) -> Vec<&str> {
        self.plugins
            .iter()
            .map(|(name, ..)| name.as_str())
            .chain(self.netrpc.iter().map(|(name, _)| name.as_str()))
            .collect()
    }

    /// Adds a net/rpc plugin (go-plugin's `Plugin` interface): `make` builds
    /// its service for each dispense, with the connection's [`MuxBroker`]
    /// for extra streams. A set is served over net/rpc when it holds net/rpc
    /// plugins; one set cannot mix both protocols (go-plugin's rule).
    ///
    /// [`MuxBroker`]: crate::netrpc::mux_broker::MuxBroker
    #[must_use]
    pub fn netrpc(
        mut self,
        name: impl Into<String>,
        make: impl Fn(&crate::netrpc::mux_broker::MuxBroker) -> crate::netrpc::rpc::NetRpcServer
        + Send
        + Sync
        + 'static,
    ) -> Self {
        self.netrpc.push((name.into(), Arc::new(make)));
        self
    }

    /// The protocol this set is served with.
    fn protocol(&self) -> Result<Protocol> {
        match (self.plugins.is_empty(), self.netrpc.is_empty()) {
            (_, true) => Ok(Protocol::Grpc),
            (true, false) => Ok(Protocol::NetRpc),
            (false, false) => Err(Error::Config(format!(
                "a plugin set mixes gRPC and net/rpc plugins ({:?}); all plugins of a set must use the same protocol",
                self.names()
            ))),
        }
    }
}

/// Everything [`serve`] needs: go-plugin's `ServeConfig`.
pub struct ServeConfig {
    handshake: HandshakeConfig,
    versions: BTreeMap<u32, PluginSet>,
    transport: Transport,
    descriptor_sets: Vec<&'static [u8]>,
    shutdown_signal: Option<ShutdownSignal>,
    tls: Option<Arc<rustls::ServerConfig>>,
    max_tls_version: TlsVersion,
    cert_curve: CertCurve,
    exit_with_host: bool,
    runtime: Runtime,
}

/// The tokio runtime [`run`] and [`run_debug`] build for a plugin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Runtime {
    /// One worker thread per core (the default): a slow handler does not
    /// hold up the others.
    #[default]
    MultiThread,
    /// Everything on the main thread: lower latency for one caller (about
    /// half the unary p50 on 2 cores, see BENCHMARKS.md), fewer calls/s
    /// under many concurrent callers, and a handler that blocks or computes
    /// for long stalls every other call.
    CurrentThread,
}

impl fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeConfig")
            .field("handshake", &self.handshake)
            .field("versions", &self.versions)
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

impl ServeConfig {
    /// A config with the handshake (cookie and default version) and no plugins yet.
    pub fn new(handshake: HandshakeConfig) -> Self {
        Self {
            handshake,
            versions: BTreeMap::new(),
            transport: Transport::default(),
            descriptor_sets: Vec::new(),
            shutdown_signal: None,
            tls: None,
            max_tls_version: TlsVersion::default(),
            cert_curve: CertCurve::default(),
            exit_with_host: true,
            runtime: Runtime::default(),
        }
    }

    /// Which tokio runtime [`run`] and [`run_debug`] build (default
    /// [`Runtime::MultiThread`]); [`serve`] runs on the caller's.
    #[must_use]
    pub fn runtime(mut self, runtime: Runtime) -> Self {
        self.runtime = runtime;
        self
    }

    /// Serves `plugins` at the handshake's protocol version (go-plugin's
    /// `Plugins`). A set given with [`version`](Self::version) for the same
    /// number wins, as in go-plugin.
    #[must_use]
    pub fn plugins(mut self, plugins: PluginSet) -> Self {
        self.versions
            .entry(self.handshake.protocol_version)
            .or_insert(plugins);
        self
    }

    /// Serves `plugins` when the host negotiates `version` (go-plugin's
    /// `VersionedPlugins`). The highest version both sides have wins.
    #[must_use]
    pub fn version(mut self, version: u32, plugins: PluginSet) -> Self {
        self.versions.insert(version, plugins);
        self
    }

    /// Chooses how to listen (default: a Unix socket).
    #[must_use]
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// Registers an encoded `FileDescriptorSet` of your services with the
    /// reflection service, so tools such as `grpcurl` can describe them.
    /// The reflection index is built on the first reflection request, not
    /// at start-up: a set that does not decode makes those requests fail
    /// with `Internal`.
    #[must_use]
    pub fn file_descriptor_set(mut self, encoded: &'static [u8]) -> Self {
        self.descriptor_sets.push(encoded);
        self
    }

    /// Serves over TLS with this configuration (go-plugin's `TLSProvider`).
    /// It takes precedence over automatic mutual TLS, as in go-plugin. ALPN
    /// `h2` is added if missing: grpc-go hosts require it.
    #[must_use]
    pub fn tls(mut self, config: rustls::ServerConfig) -> Self {
        self.tls = Some(Arc::new(tls::with_h2(config)));
        self
    }

    /// Limits the TLS version of automatic mutual TLS (default: 1.3 or 1.2).
    #[must_use]
    pub fn max_tls_version(mut self, version: TlsVersion) -> Self {
        self.max_tls_version = version;
        self
    }

    /// The curve of this plugin's AutoMTLS certificate (default P-256).
    #[must_use]
    pub fn cert_curve(mut self, curve: CertCurve) -> Self {
        self.cert_curve = curve;
        self
    }

    /// Whether the plugin shuts down on its own when the process that
    /// launched it exits (default: yes, unless the host asked it to keep
    /// running). go-plugin plugins run on as orphans instead.
    #[must_use]
    pub fn exit_with_host(mut self, exit: bool) -> Self {
        self.exit_with_host = exit;
        self
    }

    /// Stops serving when `signal` completes, as a host's shutdown request does.
    #[must_use]
    pub fn with_graceful_shutdown(
        mut self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Self {
        self.shutdown_signal = Some(Box::pin(signal));
        self
    }
}

/// Serves the plugin from a synchronous `main` and turns the outcome into
/// the exit code go-plugin plugins have: 0 after a shutdown, 1 on error.
///
/// Errors are written to stderr (go-plugin's own texts for a missing cookie).
pub fn run(config: ServeConfig) -> ExitCode {
    let flavour = config.runtime;
    run_in_runtime(flavour, serve(config))
}

fn run_in_runtime(flavour: Runtime, serving: impl Future<Output = Result<()>>) -> ExitCode {
    let mut builder = match flavour {
        Runtime::MultiThread => tokio::runtime::Builder::new_multi_thread(),
        Runtime::CurrentThread => tokio::runtime::Builder::new_current_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            write_stderr(&format!("goplug: failed to start the async runtime: {e}\n"));
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(serving);
    // Tasks still blocked on I/O must not keep the process alive.
    runtime.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Error::NotLaunchedByHost { .. } | Error::MisconfiguredCookie) => ExitCode::FAILURE,
        Err(e) => {
            write_stderr(&format!("goplug: plugin failed: {e}\n"));
            ExitCode::FAILURE
        }
    }
}

/// Serves the plugin until the host asks it to stop (or the config's
/// shutdown signal fires). See the [module docs](self).
///
/// # Errors
///
/// [`Error::NotLaunchedByHost`] when the magic cookie is wrong (go-plugin's
/// message has then been printed on stderr and nothing on stdout),
/// [`Error::MisconfiguredCookie`], [`Error::Config`] when no plugin set was
/// given, listener and server errors.
///
/// # Cancel safety
///
/// Dropping the future stops serving and removes the socket.
pub async fn serve(config: ServeConfig) -> Result<()> {
    serve_with(config, Mode::Launched).await
}

/// Serves the plugin in debug mode (go-plugin's `ServeTestConfig`), for a
/// plugin started by hand, say under a debugger: no magic cookie is
/// needed, nothing is printed on stdout, and `ready` receives the
/// [`ReattachConfig`] a host attaches with (test mode: the host never stops
/// it). SIGINT and SIGTERM stop it, as does the config's shutdown signal.
///
/// # Errors
///
/// As [`serve`], without the cookie errors.
pub async fn serve_debug(
    config: ServeConfig,
    ready: impl FnOnce(ReattachConfig) + Send + 'static,
) -> Result<()> {
    serve_with(config, Mode::Debug(Box::new(ready))).await
}

/// Runs [`serve_debug`] from a synchronous `main`: prints the reattach
/// config as one JSON line on stdout (the per-plugin object of Terraform's
/// `TF_REATTACH_PROVIDERS`) and serves until interrupted. Exit code 0
/// after a clean stop, 1 on error.
pub fn run_debug(config: ServeConfig) -> ExitCode {
    let flavour = config.runtime;
    run_in_runtime(
        flavour,
        serve_debug(config, |reattach| {
            if let Err(e) = write_stdout_line(&reattach.to_json()) {
                write_stderr(&format!("goplug: {e}\n"));
            }
        }),
    )
}

/// Serves inside the host's own process, for tests
/// ([`testing::connect`](crate::testing::connect)): no cookie, no stdout,
/// no signal handlers; `ready` gets the address and version; serving stops
/// when `stop` is cancelled or the host asks.
pub(crate) async fn serve_in_process(
    config: ServeConfig,
    ready: impl FnOnce(PluginAddress, u32) + Send + 'static,
    stop: CancellationToken,
) -> Result<()> {
    serve_with(
        config,
        Mode::InProcess {
            ready: Box::new(ready),
            stop,
        },
    )
    .await
}

/// How the plugin was started.
enum Mode {
    /// By a host, through the handshake.
    Launched,
    /// By hand, for a host to reattach to.
    Debug(Box<dyn FnOnce(ReattachConfig) + Send>),
    /// In the host's process.
    InProcess {
        ready: Box<dyn FnOnce(PluginAddress, u32) + Send>,
        stop: CancellationToken,
    },
}

async fn serve_with(config: ServeConfig, mode: Mode) -> Result<()> {
    let ServeConfig {
        handshake,
        mut versions,
        transport,
        descriptor_sets,
        shutdown_signal,
        tls,
        max_tls_version,
        cert_curve,
        exit_with_host,
        runtime: _,
    } = config;

    let launched = matches!(mode, Mode::Launched);
    let in_process = matches!(mode, Mode::InProcess { .. });
    if launched {
        check_cookie(&handshake)?;
    }

    let plugin_versions: Vec<u32> = versions.keys().copied().collect();
    let offer = std::env::var(env::PLUGIN_PROTOCOL_VERSIONS).ok();
    let negotiated = negotiate(offer.as_deref(), &plugin_versions)
        .ok_or_else(|| Error::Config("no plugin set was given to serve".to_owned()))?;
    for entry in &negotiated.invalid {
        tracing::warn!("server sent invalid plugin version {entry:?}");
    }
    // A debug-mode plugin started by hand has no offer to disagree with.
    if !negotiated.matched && (launched || offer.is_some()) {
        // On stderr so the host can show both sides' versions; the `[WARN]`
        // prefix makes a go-plugin host log it at warn level.
        write_stderr(&format!(
            "[WARN]  plugin: no common app protocol version: host offered [{}], plugin supports [{}]; announcing {}\n",
            offer.as_deref().unwrap_or("").replace(',', " "),
            plugin_versions
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(" "),
            negotiated.version
        ));
    }
    let plugins = versions.remove(&negotiated.version).unwrap_or_default();
    let protocol = plugins.protocol()?;
    if in_process && protocol == Protocol::NetRpc {
        return Err(Error::Config(
            "in-process plugins serve gRPC; this plugin set is net/rpc".to_owned(),
        ));
    }

    let (tls, server_cert, broker_tls) = tls_setup(tls, max_tls_version, cert_curve)?;
    let listener = BoundListener::bind(transport).await?;
    let address = listener.address()?;
    let shutdown = CancellationToken::new();
    // In debug mode stdout is the developer's terminal: left alone.
    let (stdout, redirect) = match launched.then(|| services::capture_stdout(shutdown.clone())) {
        Some(Ok((stdout, redirect))) => (Some(stdout), Some(redirect)),
        Some(Err(e)) => {
            tracing::warn!("stdout will not be synced to the host: {e}");
            (None, None)
        }
        None => (None, None),
    };
    let (socket_base, socket_group) = crate::transport::listen::socket_location()?;
    let (broker_tx, broker_rx) = tokio::sync::mpsc::channel(16);
    // go-plugin's asymmetry: any non-empty PLUGIN_MULTIPLEX_GRPC gets
    // `|true` in the handshake, only a Go boolean true turns muxing on.
    let multiplex_env = std::env::var(env::PLUGIN_MULTIPLEX_GRPC).unwrap_or_default();
    let announce_multiplex = launched && !multiplex_env.is_empty();
    let multiplex = launched && parse_go_bool(&multiplex_env) == Some(true);
    let (mux_tx, mux_rx) = tokio::sync::watch::channel(None);
    let broker = GrpcBroker::new(
        broker_tx,
        socket_base,
        socket_group,
        broker_tls,
        shutdown.clone(),
    )
    .with_mux((multiplex && protocol == Protocol::Grpc).then_some(mux_rx));
    let serving = match protocol {
        Protocol::NetRpc => Serving::NetRpc((
            Arc::new(plugins.netrpc.into_iter().collect()),
            Arc::new(tokio::sync::Mutex::new(stdout)),
        )),
        Protocol::Grpc => Serving::Grpc(
            build_routes(
                plugins,
                &descriptor_sets,
                &shutdown,
                stdout,
                (broker, broker_rx),
            )
            .await?,
        ),
    };

    // Before the handshake: a Ctrl-C in the host's terminal reaches every
    // process of the foreground group, and the host owns plugin shutdown.
    // In the host's process the signals are the host's.
    let _signals = if in_process {
        None
    } else {
        Some(watch_signals(shutdown.clone(), launched)?)
    };
    let keep_running = std::env::var_os(env::GOPLUG_KEEP_RUNNING).is_some_and(|v| v == "1");
    let _host_watch =
        (launched && exit_with_host && !keep_running).then(|| parent::watch_host(shutdown.clone()));
    if let Some(signal) = shutdown_signal {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = signal => shutdown.cancel(),
                () = shutdown.cancelled() => {}
            }
        });
    }

    match mode {
        Mode::Launched => {
            let line = HandshakeLine {
                server_cert,
                multiplex: announce_multiplex.then(|| "true".to_owned()),
                ..HandshakeLine::new(negotiated.version, address.clone(), protocol)
            };
            write_stdout_line(&line.to_string())?;
        }
        Mode::InProcess { ready, stop } => {
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                tokio::select! {
                    () = stop.cancelled() => shutdown.cancel(),
                    () = shutdown.cancelled() => {}
                }
            });
            ready(address.clone(), negotiated.version);
        }
        Mode::Debug(ready) => ready(
            ReattachConfig::new(
                protocol,
                negotiated.version,
                address.clone(),
                std::process::id(),
            )
            .test(true),
        ),
    }
    // From here on, what the plugin prints travels through GRPCStdio, as a
    // Go plugin's os.Stdout does.
    if let Some(Err(e)) = redirect.map(services::StdoutRedirect::apply) {
        tracing::warn!("stdout will not be synced to the host: {e}");
    }
    tracing::debug!(%address, "plugin address");

    let result = match serving {
        Serving::NetRpc(netrpc) => serve_netrpc(listener, tls, netrpc, &shutdown).await,
        Serving::Grpc(routes) => {
            let server = crate::transport::serve::server_builder().add_routes(routes);
            if multiplex {
                serve_multiplexed(server, listener, tls, &shutdown, mux_tx).await
            } else {
                serve_listener(server, listener, tls, &shutdown).await
            }
        }
    };
    shutdown.cancel();
    result
}

/// A plugin set's net/rpc plugins, and the captured stdout.
type NetRpcServing = (
    Arc<std::collections::HashMap<String, netrpc::NetRpcFactory>>,
    Arc<tokio::sync::Mutex<Option<tokio::sync::mpsc::Receiver<pb::StdioData>>>>,
);

/// What the negotiated plugin set is served with.
enum Serving {
    Grpc(Routes),
    NetRpc(NetRpcServing),
}

/// Serves go-plugin's net/rpc protocol: every host connection (through TLS
/// when configured) gets its own yamux session. The socket is removed at
/// the end.
async fn serve_netrpc(
    listener: BoundListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    (plugins, stdout): NetRpcServing,
    shutdown: &CancellationToken,
) -> Result<()> {
    let connections = tokio_util::task::TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            accepted = accept_one(&listener) => accepted,
            () = shutdown.cancelled() => break,
        };
        let connection = match accepted {
            Ok(connection) => connection,
            Err(e) => {
                tracing::error!("[ERR] plugin: plugin server: {e}");
                break;
            }
        };
        let (plugins, stdout, shutdown) = (plugins.clone(), stdout.clone(), shutdown.clone());
        let tls = tls.clone();
        connections.spawn(async move {
            let Some(config) = tls else {
                netrpc::serve_connection(connection, plugins, stdout, shutdown).await;
                return;
            };
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(connection)).await {
                Ok(Ok(stream)) => netrpc::serve_connection(stream, plugins, stdout, shutdown).await,
                Ok(Err(e)) => tracing::debug!("[ERR] plugin: TLS handshake with the host: {e}"),
                Err(_) => tracing::debug!("[ERR] plugin: TLS handshake with the host timed out"),
            }
        });
    }
    connections.close();
    // Replies in flight (Quit's, say) get a moment to go out.
    let _ = tokio::time::timeout(SHUTDOWN_DRAIN, connections.wait()).await;
    drop(listener);
    Ok(())
}

/// Serves go-plugin's multiplexed way: the host's first connection carries
/// a yamux session whose streams are the main server's connections, except
/// those a broker knock claimed. The socket is removed at the end.
async fn serve_multiplexed(
    server: tonic::transport::server::Router,
    listener: BoundListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: &CancellationToken,
    muxer_slot: tokio::sync::watch::Sender<Option<Arc<crate::transport::mux::Muxer>>>,
) -> Result<()> {
    use tokio_stream::StreamExt;
    let accepted: std::io::Result<BoxedIo> = tokio::select! {
        accepted = accept_one(&listener) => accepted,
        () = shutdown.cancelled() => return Ok(()),
    };
    let connection =
        accepted.map_err(|e| Error::Listen(format!("accepting the host's connection: {e}")))?;
    tracing::debug!("initial server connection accepted");
    let (mux, main) = crate::transport::mux::Muxer::plugin(connection);
    muxer_slot.send_replace(Some(mux.clone()));
    let incoming = tokio_stream::wrappers::ReceiverStream::new(main).map(Ok::<_, std::io::Error>);
    let result = serve_on(server, incoming, tls, shutdown).await;
    mux.close();
    // The listener (and the socket with its directory) goes last.
    drop(listener);
    result
}

/// What [`tls_setup`] decides: the server config, field 6 of the handshake,
/// and the TLS of brokered connections.
type TlsSetup = (
    Option<Arc<rustls::ServerConfig>>,
    Option<String>,
    Option<BrokerTls>,
);

/// The server config to serve with, field 6 of the handshake, and the TLS
/// of brokered connections: a manual config, or AutoMTLS when the host sent
/// `PLUGIN_CLIENT_CERT`. (With a manual server config the plugin has no
/// client config to dial the host's brokered servers with, so those stay
/// plaintext, on the host's private socket.)
fn tls_setup(
    manual: Option<Arc<rustls::ServerConfig>>,
    max_version: TlsVersion,
    curve: CertCurve,
) -> Result<TlsSetup> {
    if manual.is_some() {
        return Ok((manual, None, None));
    }
    let Some(host_pem) = std::env::var(env::PLUGIN_CLIENT_CERT)
        .ok()
        .filter(|pem| !pem.is_empty())
    else {
        return Ok((None, None, None));
    };
    tracing::debug!("configuring server automatic mTLS");
    let host_cert = tls::parse_pem_cert(&host_pem)?;
    let own = tls::AutoCert::generate(curve)?;
    let mutual = tls::MutualTls::new(&own, host_cert, max_version)?;
    let broker_tls = BrokerTls {
        server: mutual.server.clone(),
        client: TlsConnect {
            config: mutual.client,
            server_name: rustls::pki_types::ServerName::try_from(tls::SERVER_NAME).map_err(
                |e| Error::Tls {
                    context: "naming the host",
                    reason: e.to_string(),
                },
            )?,
            negotiated: Arc::default(),
        },
    };
    Ok((
        Some(mutual.server),
        Some(own.handshake_field()),
        Some(broker_tls),
    ))
}

fn check_cookie(handshake: &HandshakeConfig) -> Result<()> {
    if handshake.magic_cookie_key.is_empty() || handshake.magic_cookie_value.is_empty() {
        write_stderr(env::MISCONFIGURED_COOKIE);
        return Err(Error::MisconfiguredCookie);
    }
    let value = std::env::var_os(handshake.magic_cookie_key.as_ref());
    if value.as_deref() != Some(std::ffi::OsStr::new(handshake.magic_cookie_value.as_ref())) {
        write_stderr(env::NOT_LAUNCHED_BY_HOST);
        return Err(Error::NotLaunchedByHost {
            key: handshake.magic_cookie_key.to_string(),
        });
    }
    Ok(())
}

async fn build_routes(
    plugins: PluginSet,
    descriptor_sets: &[&'static [u8]],
    shutdown: &CancellationToken,
    stdout: Option<tokio::sync::mpsc::Receiver<pb::StdioData>>,
    (broker, broker_outgoing): (GrpcBroker, tokio::sync::mpsc::Receiver<pb::ConnInfo>),
) -> Result<Routes> {
    let mut routes = RoutesBuilder::default();

    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status(HEALTH_SERVICE_NAME, tonic_health::ServingStatus::Serving)
        .await;
    routes.add_service(health);

    let sets: Vec<&'static [u8]> = [
        PLUGIN_FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
    ]
    .into_iter()
    .chain(descriptor_sets.iter().copied())
    .collect();
    let reflection = move || {
        sets.iter().fold(
            tonic_reflection::server::Builder::configure(),
            |builder, set| builder.register_encoded_file_descriptor_set(set),
        )
    };
    let v1 = reflection.clone();
    routes.add_service(reflection::Lazy::new(move || {
        v1().build_v1().map_err(|e| e.to_string())
    }));
    routes.add_service(reflection::Lazy::new(move || {
        reflection().build_v1alpha().map_err(|e| e.to_string())
    }));

    routes.add_service(pb::grpc_controller_server::GrpcControllerServer::new(
        services::Controller {
            shutdown: shutdown.clone(),
        },
    ));
    routes.add_service(pb::grpc_broker_server::GrpcBrokerServer::new(
        services::Broker {
            broker: broker.clone(),
            outgoing: std::sync::Mutex::new(Some(broker_outgoing)),
        },
    ));
    routes.add_service(pb::grpc_stdio_server::GrpcStdioServer::new(
        services::Stdio {
            shutdown: shutdown.clone(),
            output: std::sync::Mutex::new(stdout),
        },
    ));

    // tonic panics on a service registered twice; say which instead.
    let mut taken = vec![
        HEALTH_SERVICE_NAME_GRPC,
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        "plugin.GRPCController",
        "plugin.GRPCBroker",
        "plugin.GRPCStdio",
    ];
    for (name, service, _) in &plugins.plugins {
        if taken.contains(service) {
            return Err(Error::Config(format!(
                "plugin {name:?} serves {service}, which another service of this plugin (or goplug itself) already serves"
            )));
        }
        taken.push(service);
    }
    for (_name, _service, add) in plugins.plugins {
        add(&mut routes, &broker);
    }
    Ok(routes.routes())
}

/// Writes the handshake line (or, in debug mode, the reattach config) on
/// fd 1: the only stdout write in the library.
#[expect(
    clippy::disallowed_methods,
    reason = "the handshake is the one stdout write"
)]
fn write_stdout_line(line: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .map_err(|source| Error::Io {
            context: "writing the handshake line to stdout",
            source,
        })
}

fn write_stderr(text: &str) {
    // Nothing useful can be done if stderr is gone.
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Keeps SIGINT from killing a launched plugin, as go-plugin does (a
/// debug-mode plugin stops on it), and turns SIGTERM into a graceful
/// shutdown (go-plugin dies on it and leaves its socket behind).
fn watch_signals(
    shutdown: CancellationToken,
    ignore_interrupt: bool,
) -> Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let install = |kind: SignalKind| {
        signal(kind).map_err(|source| Error::Io {
            context: "installing a signal handler",
            source,
        })
    };
    let mut sigint = install(SignalKind::interrupt())?;
    let mut sigterm = install(SignalKind::terminate())?;
    Ok(tokio::spawn(async move {
        let mut count = 0u64;
        loop {
            tokio::select! {
                Some(()) = sigint.recv() => {
                    if !ignore_interrupt {
                        tracing::debug!("plugin received SIGINT in debug mode, shutting down");
                        shutdown.cancel();
                        return;
                    }
                    count += 1;
                    tracing::trace!(count, "plugin received interrupt signal, ignoring");
                }
                Some(()) = sigterm.recv() => {
                    tracing::debug!("plugin received SIGTERM, shutting down");
                    shutdown.cancel();
                    return;
                }
                () = shutdown.cancelled() => return,
            }
        }
    }))
}

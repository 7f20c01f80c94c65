//! The host side: launch a plugin, negotiate, connect, dispense typed
//! clients, and shut it down.
//!
//! ```no_run
//! # async fn example() -> goplug::Result<()> {
//! use goplug::host::{Client, PluginSet};
//! use goplug::{HandshakeConfig, Protocol};
//! use tonic_health::pb::health_client::HealthClient;
//!
//! const HANDSHAKE: HandshakeConfig = HandshakeConfig::new(1, "BASIC_PLUGIN", "hello");
//!
//! let client = Client::builder(HANDSHAKE)
//!     // A generated client such as `KvClient<Channel>`; see `grpc_client!`.
//!     .plugins(PluginSet::new().grpc_with("health", HealthClient::new))
//!     .command(std::process::Command::new("./kv-plugin"))
//!     .start()
//!     .await?;
//! let mut health: HealthClient<goplug::host::Channel> = client.dispense("health")?;
//! client.ping().await?;
//! let report = client.shutdown().await;
//! assert!(report.graceful);
//! # let _ = health; Ok(()) }
//! ```

mod attach;
mod checksum;
pub mod discover;
mod netrpc;
mod plugin_log;
mod process;
pub mod runner;
mod stdio;

pub use crate::protocol::Checksum;
pub use crate::transport::Channel;
pub use runner::{LocalRunner, Runner, RunningPlugin};

use std::any::{Any, TypeId, type_name};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWrite;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::grpc::broker::{BrokerTls, GrpcBroker};
use crate::grpc::pb;
use crate::netrpc::mux_broker::MuxBroker;
use crate::netrpc::rpc::RpcClient;
use crate::protocol::handshake::{
    HandshakeConfig, HandshakeLine, PluginAddress, Protocol, format_versions,
};
use crate::protocol::reattach::ReattachConfig;
use crate::protocol::{HEALTH_SERVICE_NAME, HandshakeError, env, quote};
use crate::sys::group::GroupShareError;
use crate::transport::dial as connect;
use crate::transport::mux::Muxer;
use crate::transport::tls::{self, CertCurve, MutualTls, TlsVersion};
use process::{Line, PluginProcess, ProcessState};
use rustls::pki_types::ServerName;

/// go-plugin's default start timeout.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a plugin has to exit after a shutdown request (go-plugin: 2 s).
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Longest handshake line accepted. A line with an AutoMTLS certificate is
/// about 1.3 KiB; go-plugin's scanner stops at 64 KiB.
pub const HANDSHAKE_LINE_LIMIT: usize = 16 * 1024;
/// How long to look for a handshake line after stdout noise, to say so in
/// the error.
const NOISE_PEEK: Duration = Duration::from_millis(250);
/// Bound on a health check.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// A generated tonic client that goplug can build on the plugin's channel.
///
/// Implement it with [`grpc_client!`](crate::grpc_client), which also lifts
/// tonic's 4 MiB message limit to go-plugin's `MaxInt32`, as a Go host does.
pub trait GrpcClient: Send + 'static {
    /// Builds the client on the plugin's connection.
    fn from_channel(channel: Channel) -> Self;
}

/// Implements [`GrpcClient`](crate::host::GrpcClient) for tonic-generated
/// clients, with go-plugin's host message limits (`MaxInt32` both ways).
///
/// ```
/// # mod pb { #[derive(Debug, Clone)] pub struct KvClient<T>(T);
/// #   impl<T> KvClient<T> { pub fn new(t: T) -> Self { Self(t) }
/// #     pub fn max_decoding_message_size(self, _: usize) -> Self { self }
/// #     pub fn max_encoding_message_size(self, _: usize) -> Self { self } } }
/// goplug::grpc_client!(pb::KvClient);
/// ```
#[macro_export]
macro_rules! grpc_client {
    ($($($segment:ident)::+),+ $(,)?) => {
        $(
            impl $crate::host::GrpcClient for $($segment)::+<$crate::host::Channel> {
                fn from_channel(channel: $crate::host::Channel) -> Self {
                    $($segment)::+::new(channel)
                        .max_decoding_message_size($crate::grpc::HOST_MAX_MESSAGE_SIZE)
                        .max_encoding_message_size($crate::grpc::HOST_MAX_MESSAGE_SIZE)
                }
            }
        )+
    };
}

/// See [`ClientBuilder::on_checksum_verified`].
type VerifiedHook = Box<dyn FnOnce(&std::path::Path) + Send>;

type MakeClient = Arc<dyn Fn(Channel, &GrpcBroker) -> Box<dyn Any + Send> + Send + Sync>;
type MakeRpcClient = Arc<dyn Fn(RpcClient, &MuxBroker) -> Box<dyn Any + Send> + Send + Sync>;

#[derive(Clone)]
enum Make {
    Grpc(MakeClient),
    NetRpc(MakeRpcClient),
}

#[derive(Clone)]
struct Entry {
    type_id: TypeId,
    type_name: &'static str,
    make: Make,
}

/// The plugins a host can dispense for one app protocol version: name to
/// client type. go-plugin's `PluginSet`, host half.
#[derive(Clone, Default)]
pub struct PluginSet {
    entries: BTreeMap<String, Entry>,
}

impl fmt::Debug for PluginSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (name, entry) in &self.entries {
            map.entry(name, &entry.type_name);
        }
        map.finish()
    }
}

impl PluginSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a plugin dispensed as the gRPC client `C`.
    #[must_use]
    pub fn grpc<C: GrpcClient>(self, name: impl Into<String>) -> Self {
        self.grpc_with(name, C::from_channel)
    }

    /// Adds a plugin dispensed as whatever `make` builds on the channel,
    /// such as your own wrapper around a generated client.
    #[must_use]
    pub fn grpc_with<C: Send + 'static>(
        self,
        name: impl Into<String>,
        make: impl Fn(Channel) -> C + Send + Sync + 'static,
    ) -> Self {
        self.grpc_with_broker(name, move |channel, _| make(channel))
    }

    /// Adds a plugin whose client also gets the host's [`GrpcBroker`], for
    /// interfaces that pass callbacks to the plugin (go-plugin's
    /// `GRPCClient(ctx, broker, conn)`).
    #[must_use]
    pub fn grpc_with_broker<C: Send + 'static>(
        mut self,
        name: impl Into<String>,
        make: impl Fn(Channel, &GrpcBroker) -> C + Send + Sync + 'static,
    ) -> Self {
        self.entries.insert(
            name.into(),
            Entry {
                type_id: TypeId::of::<C>(),
                type_name: type_name::<C>(),
                make: Make::Grpc(Arc::new(move |channel, broker| {
                    Box::new(make(channel, broker))
                })),
            },
        );
        self
    }

    /// Adds a net/rpc plugin dispensed as whatever `make` builds on the
    /// net/rpc client of the plugin's `Plugin` service (go-plugin's
    /// `Plugin.Client(broker, rpcClient)`). Dispense it with
    /// [`Client::dispense_async`].
    #[must_use]
    pub fn netrpc_with<C: Send + 'static>(
        mut self,
        name: impl Into<String>,
        make: impl Fn(RpcClient, &MuxBroker) -> C + Send + Sync + 'static,
    ) -> Self {
        self.entries.insert(
            name.into(),
            Entry {
                type_id: TypeId::of::<C>(),
                type_name: type_name::<C>(),
                make: Make::NetRpc(Arc::new(move |client, broker| {
                    Box::new(make(client, broker))
                })),
            },
        );
        self
    }

    /// The plugin names in this set.
    pub fn names(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }
}

/// Configures and starts a plugin: go-plugin's `ClientConfig`.
#[must_use = "a builder does nothing until `start` is awaited"]
pub struct ClientBuilder {
    handshake: HandshakeConfig,
    versions: BTreeMap<u32, PluginSet>,
    command: Option<std::process::Command>,
    allowed_protocols: Vec<Protocol>,
    start_timeout: Duration,
    shutdown_grace: Duration,
    skip_host_env: bool,
    port_range: (u16, u16),
    stderr: Option<process::StderrSink>,
    unix_socket_dir: Option<PathBuf>,
    unix_socket_group: Option<String>,
    checksum: Option<Checksum>,
    checksum_verified_hook: Option<VerifiedHook>,
    auto_mtls: bool,
    tls: Option<connect::TlsConnect>,
    max_tls_version: TlsVersion,
    cert_curve: CertCurve,
    log_buffer_size: usize,
    sync_stdout: Option<stdio::SyncSink>,
    sync_stderr: Option<stdio::SyncSink>,
    runner: Option<Box<dyn Runner>>,
    keep_running: bool,
    reattach: Option<ReattachConfig>,
    multiplex: bool,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("handshake", &self.handshake)
            .field("versions", &self.versions)
            .field("command", &self.command)
            .field("allowed_protocols", &self.allowed_protocols)
            .field("start_timeout", &self.start_timeout)
            .field("checksum", &self.checksum)
            .field("keep_running", &self.keep_running)
            .field("reattach", &self.reattach)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Serves `plugins` at the handshake's protocol version (go-plugin's
    /// `Plugins`); a set given with [`version`](Self::version) wins.
    pub fn plugins(mut self, plugins: PluginSet) -> Self {
        self.versions
            .entry(self.handshake.protocol_version)
            .or_insert(plugins);
        self
    }

    /// Offers app protocol `version` with `plugins` (go-plugin's
    /// `VersionedPlugins`). All offered versions go to the plugin in
    /// `PLUGIN_PROTOCOL_VERSIONS`; it picks the highest it supports.
    pub fn version(mut self, version: u32, plugins: PluginSet) -> Self {
        self.versions.insert(version, plugins);
        self
    }

    /// The plugin command. Its environment is rebuilt as go-plugin does:
    /// the variables set on `command`, then this process's environment
    /// (see [`skip_host_env`](Self::skip_host_env)), then go-plugin's
    /// variables; the last value of a name wins. Stdin is inherited.
    pub fn command(mut self, command: std::process::Command) -> Self {
        self.command = Some(command);
        self
    }

    /// Protocols the host accepts (default: gRPC only; go-plugin's default
    /// is net/rpc only, so hosts of net/rpc plugins allow it explicitly).
    pub fn allowed_protocols(mut self, protocols: impl IntoIterator<Item = Protocol>) -> Self {
        self.allowed_protocols = protocols.into_iter().collect();
        self
    }

    /// How long the plugin has to print its handshake line and accept the
    /// connection (default 1 minute). Past it the plugin is killed.
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// How long [`Client::shutdown`] waits for a graceful exit before it
    /// kills (default 2 s, as go-plugin).
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Do not pass this process's environment to the plugin.
    pub fn skip_host_env(mut self, skip: bool) -> Self {
        self.skip_host_env = skip;
        self
    }

    /// The TCP port range sent as `PLUGIN_MIN_PORT`/`PLUGIN_MAX_PORT`
    /// (default 10000-25000).
    pub fn port_range(mut self, min: u16, max: u16) -> Self {
        self.port_range = (min, max);
        self
    }

    /// Copies every line the plugin writes to stderr (with its newline) to
    /// `writer`, as go-plugin's `Stderr`.
    pub fn stderr(mut self, writer: impl AsyncWrite + Send + Unpin + 'static) -> Self {
        self.stderr = Some(Box::new(writer));
        self
    }

    /// Where what the plugin writes to its stdout after the handshake goes
    /// (go-plugin's `SyncStdout`, via `GRPCStdio`). Default: discarded.
    pub fn sync_stdout(mut self, writer: impl AsyncWrite + Send + Unpin + 'static) -> Self {
        self.sync_stdout = Some(Box::new(writer));
        self
    }

    /// Where what a plugin sends as its stderr through `GRPCStdio` goes
    /// (go-plugin's `SyncStderr`; Go plugins' `os.Stderr`). Default:
    /// discarded. The raw stderr pipe, which carries logs, is
    /// [`stderr`](Self::stderr).
    pub fn sync_stderr(mut self, writer: impl AsyncWrite + Send + Unpin + 'static) -> Self {
        self.sync_stderr = Some(Box::new(writer));
        self
    }

    /// Longest stderr line parsed as one log line (go-plugin's
    /// `PluginLogBufferSize`, default 64 KiB). Longer lines are split into
    /// pieces of this size, logged verbatim at debug, and copied whole to
    /// the [`stderr`](Self::stderr) writer.
    pub fn plugin_log_buffer_size(mut self, bytes: usize) -> Self {
        self.log_buffer_size = bytes;
        self
    }

    /// Directory the plugin creates its socket in (`PLUGIN_UNIX_SOCKET_DIR`).
    pub fn unix_socket_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.unix_socket_dir = Some(dir.into());
        self
    }

    /// Group given access to the plugin's socket (`PLUGIN_UNIX_SOCKET_GROUP`),
    /// a name or a numeric gid.
    pub fn unix_socket_group(mut self, group: impl Into<String>) -> Self {
        self.unix_socket_group = Some(group.into());
        self
    }

    /// Verifies the plugin binary's SHA-256 before running it (go-plugin's
    /// `SecureConfig`). The binary is opened once, hashed, and that same
    /// open file is executed, so it cannot be swapped after the check.
    ///
    /// The command's program, arguments, environment and working directory
    /// are kept; other `CommandExt` settings are not. As in go-plugin, for
    /// `sh -c line` the checksum is that of `sh`.
    pub fn checksum(mut self, checksum: Checksum) -> Self {
        self.checksum = Some(checksum);
        self
    }

    /// Automatic mutual TLS (go-plugin's `AutoMTLS`): a certificate made for
    /// this launch goes to the plugin in `PLUGIN_CLIENT_CERT`, the plugin
    /// answers with its own in the handshake, and the connection is mutual
    /// TLS pinned to exactly that certificate. A plugin that does not answer
    /// with a certificate is refused.
    pub fn auto_mtls(mut self, enabled: bool) -> Self {
        self.auto_mtls = enabled;
        self
    }

    /// Connects over TLS with this configuration (go-plugin's `TLSConfig`),
    /// verifying the plugin as `server_name`. ALPN `h2` is added if
    /// missing: grpc-go plugins require it. Exclusive with
    /// [`auto_mtls`](Self::auto_mtls).
    pub fn tls(mut self, config: rustls::ClientConfig, server_name: ServerName<'static>) -> Self {
        self.tls = Some(connect::TlsConnect {
            config: Arc::new(tls::with_h2(config)),
            server_name,
            negotiated: Arc::default(),
        });
        self
    }

    /// Limits the TLS version of automatic mutual TLS (default: 1.3 or 1.2).
    pub fn max_tls_version(mut self, version: TlsVersion) -> Self {
        self.max_tls_version = version;
        self
    }

    /// The curve of the host's AutoMTLS certificate (default P-256).
    pub fn cert_curve(mut self, curve: CertCurve) -> Self {
        self.cert_curve = curve;
        self
    }

    /// Starts the plugin with this runner instead of as a local child
    /// process (go-plugin's `RunnerFunc`): a container, a sandbox.
    pub fn runner(mut self, runner: impl Runner) -> Self {
        self.runner = Some(Box::new(runner));
        self
    }

    /// Launches the plugin so that it can outlive this host: no
    /// parent-death signal, a session of its own, and
    /// [`Client::detach`] hands out its [`ReattachConfig`]. A goplug
    /// plugin is told (`GOPLUG_KEEP_RUNNING`) not to exit with its host.
    pub fn keep_running(mut self, keep: bool) -> Self {
        self.keep_running = keep;
        self
    }

    /// Multiplexes the gRPC broker over the one connection to the plugin
    /// (go-plugin's `GRPCBrokerMultiplex`): brokered connections become
    /// yamux streams instead of new sockets, for plugins whose sockets the
    /// host cannot reach (containers). The plugin must support it (Go
    /// plugins on go-plugin ≥ 1.6, goplug plugins); otherwise `start`
    /// fails with go-plugin's error.
    pub fn grpc_broker_multiplex(mut self, multiplex: bool) -> Self {
        self.multiplex = multiplex;
        self
    }

    /// Attaches to a running plugin instead of launching one (go-plugin's
    /// `Reattach`). The host dials the address to verify the plugin,
    /// watches its pid for exit, and never signals it in test mode or when
    /// attaching fails. Its stdout and stderr are not the host's to read.
    pub fn reattach(mut self, config: ReattachConfig) -> Self {
        self.reattach = Some(config);
        self
    }

    /// Test hook: runs after the checksum matched and before the plugin is
    /// spawned, with the verified path. goplug's tests replace the file here
    /// to show that the verified bytes are what runs.
    #[doc(hidden)]
    pub fn on_checksum_verified(
        mut self,
        hook: impl FnOnce(&std::path::Path) + Send + 'static,
    ) -> Self {
        self.checksum_verified_hook = Some(Box::new(hook));
        self
    }

    /// Launches the plugin, reads and checks its handshake, and connects.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] without a command; [`Error::Spawn`];
    /// [`Error::StartTimeout`]; [`Error::ExitedBeforeHandshake`];
    /// [`Error::Handshake`] for every malformed or incompatible line;
    /// [`Error::ProtocolNotImplemented`]; [`Error::Connect`]. In every
    /// error case the plugin process has been killed and reaped.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future kills the plugin.
    pub async fn start(self) -> Result<Client> {
        let Self {
            handshake,
            mut versions,
            command,
            allowed_protocols,
            start_timeout,
            shutdown_grace,
            skip_host_env,
            port_range,
            stderr,
            unix_socket_dir,
            unix_socket_group,
            checksum,
            checksum_verified_hook,
            auto_mtls,
            tls,
            max_tls_version,
            cert_curve,
            log_buffer_size,
            sync_stdout,
            sync_stderr,
            runner,
            keep_running,
            reattach,
            multiplex,
        } = self;
        if let Some(config) = reattach {
            if multiplex {
                return Err(Error::Config(
                    "gRPC broker multiplexing is not supported with Reattach config".to_owned(),
                ));
            }
            if checksum.is_some() {
                return Err(Error::ChecksumAndReattach);
            }
            if auto_mtls {
                return Err(Error::Config(
                    "auto_mtls cannot be used with reattach: the plugin's certificate came from another host".to_owned(),
                ));
            }
            return attach(
                config,
                versions,
                handshake.protocol_version,
                tls,
                start_timeout,
                shutdown_grace,
                (sync_stdout, sync_stderr),
            )
            .await;
        }
        let command =
            command.ok_or_else(|| Error::Config("no plugin command was given".to_owned()))?;
        let runner_is_local = runner.is_none();
        let runner: Box<dyn Runner> = match runner {
            Some(_) if keep_running => {
                return Err(Error::Config(
                    "keep_running applies to the local runner; a custom runner decides itself"
                        .to_owned(),
                ));
            }
            Some(runner) => runner,
            None => Box::new(LocalRunner::new().keep_running(keep_running)),
        };
        if auto_mtls && tls.is_some() {
            return Err(Error::Config(
                "auto_mtls and a manual TLS config are exclusive".to_owned(),
            ));
        }
        let own_cert = auto_mtls
            .then(|| crate::transport::tls::AutoCert::generate(cert_curve))
            .transpose()?;
        let program = process::program_of(&command);
        // Before anything else: a binary that fails its check never runs.
        let (command, _verified_file) = match checksum {
            Some(expected) => {
                let verified = checksum::verify(&command, &expected)?;
                if let Some(hook) = checksum_verified_hook {
                    hook(&program);
                }
                let (command, file) = verified.into_parts();
                (command, Some(file))
            }
            None => (command, None),
        };
        if versions.is_empty() {
            versions.insert(handshake.protocol_version, PluginSet::new());
        }
        let offered: Vec<u32> = versions.keys().copied().collect();

        let mut plugin_vars = vec![
            process::os_pair(
                &handshake.magic_cookie_key,
                handshake.magic_cookie_value.as_ref(),
            ),
            process::os_pair(env::PLUGIN_MIN_PORT, port_range.0.to_string()),
            process::os_pair(env::PLUGIN_MAX_PORT, port_range.1.to_string()),
            process::os_pair(env::PLUGIN_PROTOCOL_VERSIONS, format_versions(&offered)),
        ];
        // A private directory per plugin, removed when the plugin is gone:
        // go-plugin plugins (>= 1.5) put their sockets there, so none is left
        // behind even when the plugin is killed.
        let socket_dir =
            SocketDir::create(unix_socket_dir.as_deref(), unix_socket_group.as_deref())?;
        plugin_vars.push(process::os_pair(
            env::PLUGIN_UNIX_SOCKET_DIR,
            socket_dir.path(),
        ));
        if let Some(group) = &unix_socket_group {
            plugin_vars.push(process::os_pair(env::PLUGIN_UNIX_SOCKET_GROUP, group));
        }
        if let Some(cert) = &own_cert {
            plugin_vars.push(process::os_pair(env::PLUGIN_CLIENT_CERT, &cert.pem));
        }
        if keep_running {
            plugin_vars.push(process::os_pair(env::GOPLUG_KEEP_RUNNING, "1"));
        }
        if multiplex {
            plugin_vars.push(process::os_pair(env::PLUGIN_MULTIPLEX_GRPC, "true"));
        }
        let environment = process::assemble_env(
            process::caller_env(&command),
            (!skip_host_env).then(std::env::vars_os),
            plugin_vars,
        );

        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + start_timeout;
        tracing::debug!(path = %program.display(), "starting plugin");
        let mut command = command;
        command.env_clear().envs(environment);
        // glibc's execvp, which runs the plugin when the command has a
        // `pre_exec` hook (the local runner's always has), hands a file the
        // kernel refuses (ENOEXEC) to /bin/sh: a text file or a binary for
        // another machine would be run as a shell script and fail with
        // "not found". Refuse it here, as Go's exec does.
        if runner_is_local && process::kernel_refuses(&program) {
            let source =
                std::io::Error::from_raw_os_error(rustix::io::Errno::NOEXEC.raw_os_error());
            let diagnosis = process::spawn_diagnosis(&program, &source);
            return Err(Error::Spawn {
                program,
                source,
                diagnosis,
            });
        }
        let launch = runner::Launch {
            command,
            program: program.clone(),
            socket_dir: socket_dir.path().to_path_buf(),
        };
        let launched = match tokio::time::timeout_at(deadline, runner.start(launch)).await {
            Ok(Ok(launched)) => launched,
            Ok(Err(source)) => {
                let diagnosis = process::spawn_diagnosis(&program, &source);
                return Err(Error::Spawn {
                    program,
                    source,
                    diagnosis,
                });
            }
            Err(_) => {
                return Err(Error::StartTimeout {
                    timeout: start_timeout,
                    stderr: Default::default(),
                });
            }
        };
        let (mut process, mut stdout) =
            PluginProcess::watch(launched, program, stderr, log_buffer_size);
        tracing::debug!(id = process.running().id(), "plugin started");

        let line = match read_handshake(&mut process, &mut stdout, deadline, start_timeout)
            .await
            .and_then(|line| check(&line, &offered, &allowed_protocols, auto_mtls).map(|()| line))
            .and_then(|line| {
                // As go-plugin: multiplexing is a gRPC matter only.
                if multiplex && line.protocol == Protocol::Grpc {
                    line.check_multiplex()?;
                }
                Ok(line)
            }) {
            Ok(line) => line,
            Err(e) => return Err(abort(process, e).await),
        };
        let (tls, broker_tls) = match (&own_cert, &line.server_cert) {
            (Some(own), Some(field)) => match auto_mtls_connect(own, field, max_tls_version) {
                Ok((tls, broker_tls)) => (Some(tls), Some(broker_tls)),
                Err(e) => return Err(abort(process, e).await),
            },
            _ => (tls, None),
        };
        tracing::debug!(version = line.app_version, "using plugin version");
        process.discard_stdout(stdout);
        let address = process.running().plugin_to_host(line.address.clone());

        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let negotiated_tls = tls.as_ref().map(|tls| tls.negotiated.clone());
        let mut sync = (sync_stdout, sync_stderr);
        let mut netrpc_connection = None;
        let connected = if line.protocol == Protocol::NetRpc {
            match netrpc::connect(&address, remaining, tls, (sync.0.take(), sync.1.take())).await {
                Ok(connection) => {
                    netrpc_connection = Some(connection);
                    Ok((connect::unavailable_channel(), None))
                }
                Err(e) => Err(e),
            }
        } else if multiplex {
            connect_multiplexed(&address, remaining, tls).await
        } else {
            connect::connect(&address, remaining, tls)
                .await
                .map(|channel| (channel, None))
        };
        let (channel, mux) = match connected {
            Ok(connected) => connected,
            Err(e) => return Err(abort(process, e).await),
        };
        let plugins = versions.remove(&line.app_version).unwrap_or_default();
        let socket_group = match unix_socket_group
            .as_deref()
            .map(crate::sys::group::resolve_group)
        {
            Some(Err(e)) => return Err(abort(process, e).await),
            Some(Ok(gid)) => Some(gid),
            None => None,
        };
        Ok(Connected {
            channel,
            plugins,
            protocol: line.protocol,
            version: line.app_version,
            address,
            shutdown_grace,
            started,
            process,
            socket_dir,
            socket_group,
            negotiated_tls,
            broker_tls,
            sync,
            mode: Mode::Launched { keep_running },
            mux,
            netrpc: netrpc_connection,
        }
        .into_client())
    }
}

/// How the host came to the plugin, which decides how it lets go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// The host launched it.
    Launched { keep_running: bool },
    /// The host attached to it; in test mode it is never stopped.
    Attached { test: bool },
}

/// A connected plugin, before its broker and stdio tasks start.
struct Connected {
    channel: Channel,
    plugins: PluginSet,
    protocol: Protocol,
    version: u32,
    address: PluginAddress,
    shutdown_grace: Duration,
    started: Instant,
    process: PluginProcess,
    socket_dir: SocketDir,
    socket_group: Option<nix::unistd::Gid>,
    negotiated_tls: Option<Arc<std::sync::Mutex<Option<TlsVersion>>>>,
    broker_tls: Option<BrokerTls>,
    sync: (Option<stdio::SyncSink>, Option<stdio::SyncSink>),
    mode: Mode,
    mux: Option<Arc<Muxer>>,
    netrpc: Option<netrpc::NetRpcConnection>,
}

/// Connects the way a multiplexing host does: one connection to the
/// plugin, a yamux session over it, the main gRPC connection on its first
/// stream.
async fn connect_multiplexed(
    address: &PluginAddress,
    timeout: Duration,
    tls: Option<connect::TlsConnect>,
) -> Result<(Channel, Option<Arc<Muxer>>)> {
    let raw = match tokio::time::timeout(timeout, connect::dial_socket(address)).await {
        Ok(Ok(raw)) => raw,
        Ok(Err(e)) => {
            return Err(Error::Connect {
                address: address.to_string(),
                reason: e.to_string(),
            });
        }
        Err(_) => {
            return Err(Error::Connect {
                address: address.to_string(),
                reason: format!("no connection within {timeout:?}"),
            });
        }
    };
    let mux = Muxer::host(raw);
    tracing::debug!(%address, "client muxer connected");
    let opener = mux.clone();
    let dialer: connect::Dialer = Arc::new(move || {
        let mux = opener.clone();
        Box::pin(async move { Ok(Box::new(mux.open().await?) as connect::BoxedIo) })
    });
    match connect::connect_with(dialer, address, timeout, tls).await {
        Ok(channel) => Ok((channel, Some(mux))),
        Err(e) => {
            mux.close();
            Err(e)
        }
    }
}

impl Connected {
    /// Starts the broker stream and stdio copying.
    fn into_client(self) -> Client {
        let Self {
            channel,
            plugins,
            protocol,
            version,
            address,
            shutdown_grace,
            started,
            process,
            socket_dir,
            socket_group,
            negotiated_tls,
            broker_tls,
            sync: (sync_stdout, sync_stderr),
            mode,
            mux,
            netrpc,
        } = self;
        let broker_closed = CancellationToken::new();
        let (broker_tx, broker_rx) = tokio::sync::mpsc::channel(16);
        let broker = GrpcBroker::new(
            broker_tx,
            socket_dir.path().to_path_buf(),
            socket_group,
            broker_tls,
            broker_closed.clone(),
        )
        .with_translator(Arc::new(runner::BrokerTranslator(process.running_arc())))
        .with_mux(
            mux.clone()
                .map(|mux| tokio::sync::watch::channel(Some(mux)).1),
        );
        // A net/rpc plugin has neither GRPCBroker nor GRPCStdio: its stdio
        // streams are copied by the net/rpc connection.
        let grpc = netrpc.is_none();
        let broker_task = TaskGuard(grpc.then(|| {
            tokio::spawn(run_broker(
                channel.clone(),
                broker.clone(),
                Announcements {
                    outgoing: broker_rx,
                    closed: Box::pin(broker_closed.clone().cancelled_owned()),
                },
            ))
        }));
        // Without GRPCStdio there is nothing to wait for.
        let (stdio_copied, stdio_done) = tokio::sync::watch::channel(!grpc);
        let stdio_task = TaskGuard(grpc.then(|| {
            let copy = stdio::copy(
                channel.clone(),
                process.name().to_owned(),
                sync_stdout,
                sync_stderr,
            );
            tokio::spawn(async move {
                copy.await;
                let _ = stdio_copied.send(true);
            })
        }));
        Client {
            channel,
            plugins,
            protocol,
            version,
            address,
            shutdown_grace,
            start_duration: started.elapsed(),
            process,
            socket_dir,
            negotiated_tls,
            stdio_task,
            stdio_done,
            broker,
            broker_closed: broker_closed.drop_guard(),
            broker_task,
            mode,
            mux,
            netrpc,
        }
    }
}

/// Attaches to a running plugin (go-plugin's reattach): finds its process
/// without signalling it, dials it, and watches its pid.
async fn attach(
    config: ReattachConfig,
    mut versions: BTreeMap<u32, PluginSet>,
    default_version: u32,
    tls: Option<connect::TlsConnect>,
    timeout: Duration,
    shutdown_grace: Duration,
    sync: (Option<stdio::SyncSink>, Option<stdio::SyncSink>),
) -> Result<Client> {
    let started = Instant::now();
    let not_found = |reason: String| Error::ReattachProcessNotFound {
        pid: config.pid,
        address: config.address.clone(),
        reason,
    };
    let plugin = attach::AttachedPlugin::find(config.pid, config.test).map_err(not_found)?;
    // A TLS failure means something answered but is not the plugin the
    // host trusts: say so, rather than "not found".
    let connect_failed = |e: Error| match e {
        Error::Tls { .. } => e,
        other => not_found(other.to_string()),
    };
    let negotiated_tls = tls.as_ref().map(|tls| tls.negotiated.clone());
    let (channel, netrpc_connection) = match config.protocol {
        Protocol::Grpc => (
            connect::connect(&config.address, timeout, tls)
                .await
                .map_err(connect_failed)?,
            None,
        ),
        // Stdout and stderr of a reattached plugin are not the host's.
        Protocol::NetRpc => (
            connect::unavailable_channel(),
            Some(
                netrpc::connect(&config.address, timeout, tls, (None, None))
                    .await
                    .map_err(connect_failed)?,
            ),
        ),
    };
    let version = match config.protocol_version {
        0 => default_version,
        version => version,
    };
    tracing::debug!(pid = config.pid, address = %config.address, version, "reattached to plugin");
    let process = PluginProcess::watch_attached(
        Box::new(plugin),
        PathBuf::from(format!("plugin-{}", config.pid)),
    );
    Ok(Connected {
        channel,
        plugins: versions.remove(&version).unwrap_or_default(),
        protocol: config.protocol,
        version,
        address: config.address,
        shutdown_grace,
        started,
        process,
        // For the host's brokered servers.
        socket_dir: SocketDir::create(None, None)?,
        socket_group: None,
        negotiated_tls,
        broker_tls: None,
        sync,
        mode: Mode::Attached { test: config.test },
        mux: None,
        netrpc: netrpc_connection,
    }
    .into_client())
}

/// Connects to a plugin server the caller runs in this process: what
/// [`crate::testing::connect`] builds on.
#[cfg(feature = "plugin")]
pub(crate) async fn attach_in_process(
    address: PluginAddress,
    version: u32,
    plugins: PluginSet,
    plugin: Box<dyn RunningPlugin>,
    started: Instant,
    timeout: Duration,
) -> Result<Client> {
    let channel = connect::connect(&address, timeout, None).await?;
    let process = PluginProcess::watch_attached(plugin, PathBuf::from("in-process"));
    Ok(Connected {
        channel,
        plugins,
        protocol: Protocol::Grpc,
        version,
        address,
        shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        started,
        process,
        socket_dir: SocketDir::create(None, None)?,
        socket_group: None,
        negotiated_tls: None,
        broker_tls: None,
        sync: (None, None),
        mode: Mode::Launched {
            keep_running: false,
        },
        mux: None,
        netrpc: None,
    }
    .into_client())
}

fn dispense_type_error<T>(name: &str, entry: &Entry) -> Error {
    Error::DispenseType {
        name: name.to_owned(),
        registered: entry.type_name,
        requested: type_name::<T>(),
    }
}

fn downcast<T: 'static>(name: &str, entry: &Entry, client: Box<dyn Any + Send>) -> Result<T> {
    client
        .downcast::<T>()
        .map(|client| *client)
        .map_err(|_| dispense_type_error::<T>(name, entry))
}

/// Whether the host accepts the plugin's line: version, protocol, TLS.
fn check(
    line: &HandshakeLine,
    offered: &[u32],
    allowed: &[Protocol],
    auto_mtls: bool,
) -> Result<()> {
    line.check(offered, allowed, auto_mtls)?;
    Ok(())
}

/// The TLS setup for a plugin that answered AutoMTLS with `field`.
fn auto_mtls_connect(
    own: &tls::AutoCert,
    field: &str,
    max_version: TlsVersion,
) -> Result<(connect::TlsConnect, BrokerTls)> {
    let peer = tls::decode_handshake_cert(field)?;
    let mutual = MutualTls::new(own, peer, max_version)?;
    let server_name = ServerName::try_from(tls::SERVER_NAME).map_err(|e| Error::Tls {
        context: "naming the plugin",
        reason: e.to_string(),
    })?;
    let connect = connect::TlsConnect {
        config: mutual.client,
        server_name,
        negotiated: Arc::default(),
    };
    let broker = BrokerTls {
        server: mutual.server,
        client: connect.clone(),
    };
    Ok((connect, broker))
}

/// Kills the plugin after a failed start and adds what it wrote to stderr
/// to the errors that are about the plugin itself.
async fn abort(mut process: PluginProcess, error: Error) -> Error {
    process.kill().await;
    process.finish_readers(Duration::from_millis(500)).await;
    match error {
        Error::StartTimeout { timeout, .. } => Error::StartTimeout {
            timeout,
            stderr: process.stderr_tail(),
        },
        Error::ExitedBeforeHandshake { .. } => Error::ExitedBeforeHandshake {
            status: process.exit_status(),
            stderr: process.stderr_tail(),
        },
        Error::Handshake(HandshakeError::AppVersionMismatch {
            plugin, host, line, ..
        }) => HandshakeError::AppVersionMismatch {
            plugin,
            host,
            line,
            stderr: process.stderr_tail(),
        }
        .into(),
        other => other,
    }
}

async fn read_handshake(
    process: &mut PluginProcess,
    stdout: &mut tokio::io::BufReader<runner::PluginOutput>,
    deadline: tokio::time::Instant,
    start_timeout: Duration,
) -> Result<HandshakeLine> {
    let timed_out = || Error::StartTimeout {
        timeout: start_timeout,
        stderr: Default::default(),
    };
    let first = tokio::time::timeout_at(deadline, process::read_line(stdout, HANDSHAKE_LINE_LIMIT))
        .await
        .map_err(|_| timed_out())?
        .map_err(|source| Error::Io {
            context: "reading the plugin's stdout",
            source,
        })?;
    let raw = match first {
        Line::Complete(raw) => raw,
        Line::Eof(rest) if !rest.is_empty() => rest,
        Line::Eof(_) => {
            // No line at all: the plugin is exiting (or closed stdout).
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            process
                .wait_gone(remaining.min(Duration::from_secs(2)))
                .await;
            return Err(Error::ExitedBeforeHandshake {
                status: None,
                stderr: Default::default(),
            });
        }
        Line::TooLong(prefix) => {
            return Err(HandshakeError::LineTooLong {
                limit: HANDSHAKE_LINE_LIMIT,
                prefix: quote(&String::from_utf8_lossy(&prefix)),
            }
            .into());
        }
    };
    let text = String::from_utf8(raw).map_err(|e| HandshakeError::NotText {
        line: quote(&String::from_utf8_lossy(e.as_bytes())),
    })?;
    match HandshakeLine::parse(&text) {
        Ok(line) => Ok(line),
        Err(HandshakeError::StdoutNoise { line, .. }) => {
            // Say whether a handshake followed the noise: the usual cause is
            // a plugin printing before it serves.
            let peek_until = deadline.min(tokio::time::Instant::now() + NOISE_PEEK);
            let following = match tokio::time::timeout_at(
                peek_until,
                process::read_line(stdout, HANDSHAKE_LINE_LIMIT),
            )
            .await
            {
                Ok(Ok(Line::Complete(next) | Line::Eof(next))) => String::from_utf8(next)
                    .ok()
                    .filter(|next| HandshakeLine::parse(next).is_ok())
                    .map(|next| quote(next.trim())),
                _ => None,
            };
            Err(HandshakeError::StdoutNoise { line, following }.into())
        }
        Err(e) => Err(e.into()),
    }
}

/// How [`Client::shutdown`] went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// True when the plugin exited on its own within the grace period.
    pub graceful: bool,
    /// Its exit status, when it could be collected.
    pub status: Option<ExitStatus>,
    /// True for a plugin in test (debug) mode: the host only disconnected,
    /// as go-plugin's `Kill` does nothing then.
    pub left_running: bool,
    /// Time from the shutdown request to the process being reaped.
    pub elapsed: Duration,
}

/// A running plugin: go-plugin's `Client` plus its `ClientProtocol`.
///
/// Dropping a `Client` kills the plugin without blocking; call
/// [`shutdown`](Self::shutdown) for a graceful exit.
pub struct Client {
    channel: Channel,
    plugins: PluginSet,
    protocol: Protocol,
    version: u32,
    address: PluginAddress,
    shutdown_grace: Duration,
    start_duration: Duration,
    process: PluginProcess,
    // Dropped after `process`, so the plugin is already being killed.
    socket_dir: SocketDir,
    negotiated_tls: Option<Arc<std::sync::Mutex<Option<TlsVersion>>>>,
    stdio_task: TaskGuard,
    /// Becomes true when the synced stdout/stderr stream has ended.
    stdio_done: tokio::sync::watch::Receiver<bool>,
    broker: GrpcBroker,
    broker_closed: tokio_util::sync::DropGuard,
    broker_task: TaskGuard,
    mode: Mode,
    /// The multiplexed session, when the broker is multiplexed.
    mux: Option<Arc<Muxer>>,
    /// The connection of a net/rpc plugin.
    netrpc: Option<netrpc::NetRpcConnection>,
}

/// Opens `plugin.GRPCBroker/StartStream` and delivers the plugin's
/// announcements to the broker. Plugins without a broker (Python's
/// example) answer Unimplemented; their brokered dials time out.
async fn run_broker(channel: Channel, broker: GrpcBroker, outgoing: Announcements) {
    let mut client = pb::grpc_broker_client::GrpcBrokerClient::new(channel)
        .max_decoding_message_size(crate::grpc::HOST_MAX_MESSAGE_SIZE);
    match client.start_stream(outgoing).await {
        Ok(response) => broker.receive(response.into_inner()).await,
        Err(status) => tracing::debug!("the plugin has no broker: {status}"),
    }
}

/// The host's half of the broker stream. It ends when the client shuts
/// down: while it is open the plugin's graceful shutdown waits on it (its
/// 500 ms drain), whereas go-plugin's host closes the whole connection.
struct Announcements {
    outgoing: tokio::sync::mpsc::Receiver<pb::ConnInfo>,
    closed: std::pin::Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>,
}

impl tokio_stream::Stream for Announcements {
    type Item = pb::ConnInfo;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<pb::ConnInfo>> {
        if self.closed.as_mut().poll(cx).is_ready() {
            return std::task::Poll::Ready(None);
        }
        self.outgoing.poll_recv(cx)
    }
}

/// A background task that ends with its owner.
#[derive(Debug)]
struct TaskGuard(Option<tokio::task::JoinHandle<()>>);

impl TaskGuard {
    /// Lets the task finish on its own, for at most `timeout`.
    async fn finish(mut self, timeout: Duration) {
        if let Some(task) = self.0.as_mut() {
            let _ = tokio::time::timeout(timeout, task).await;
        }
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("pid", &self.process.pid)
            .field("program", &self.process.program)
            .field("protocol", &self.protocol)
            .field("version", &self.version)
            .field("address", &self.address)
            .field("plugins", &self.plugins)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A builder for a plugin with this handshake.
    pub fn builder(handshake: HandshakeConfig) -> ClientBuilder {
        ClientBuilder {
            handshake,
            versions: BTreeMap::new(),
            command: None,
            allowed_protocols: vec![Protocol::Grpc],
            start_timeout: DEFAULT_START_TIMEOUT,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            skip_host_env: false,
            port_range: (env::DEFAULT_MIN_PORT, env::DEFAULT_MAX_PORT),
            stderr: None,
            unix_socket_dir: None,
            unix_socket_group: None,
            checksum: None,
            checksum_verified_hook: None,
            auto_mtls: false,
            tls: None,
            max_tls_version: TlsVersion::default(),
            cert_curve: CertCurve::default(),
            log_buffer_size: process::DEFAULT_LOG_BUFFER_SIZE,
            sync_stdout: None,
            sync_stderr: None,
            runner: None,
            keep_running: false,
            reattach: None,
            multiplex: false,
        }
    }

    /// The negotiated protocol.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The negotiated app protocol version.
    pub fn negotiated_version(&self) -> u32 {
        self.version
    }

    /// Where the plugin listens.
    pub fn address(&self) -> &PluginAddress {
        &self.address
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
        Some(ReattachConfig::new(self.protocol, self.version, self.address.clone(), pid).test(test))
    }

    /// Lets the plugin run on without this host and returns how to
    /// reattach to it. The plugin must have been launched with
    /// [`ClientBuilder::keep_running`] (or attached to): otherwise it
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
        let negotiated = self.negotiated_tls.as_ref()?;
        negotiated.lock().ok().and_then(|version| *version)
    }

    /// The host's broker, to serve callbacks the plugin dials
    /// ([`GrpcBroker::accept_and_serve`]) and to dial servers the plugin
    /// announces ([`GrpcBroker::dial`]).
    pub fn broker(&self) -> &GrpcBroker {
        &self.broker
    }

    /// Whether the broker is multiplexed over the one connection
    /// ([`ClientBuilder::grpc_broker_multiplex`]).
    pub fn broker_multiplexed(&self) -> bool {
        self.mux.is_some()
    }

    /// The plugin's gRPC channel, for services outside the plugin set.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// Returns the client registered as `name` in the negotiated plugin set.
    /// Like go-plugin's gRPC dispense this is local: no RPC is made.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownPlugin`] for a name the set lacks;
    /// [`Error::DispenseType`] when `T` is not the registered client type.
    pub fn dispense<T: 'static>(&self, name: &str) -> Result<T> {
        let entry = self.entry::<T>(name)?;
        if self.netrpc.is_some() {
            return Err(Error::Config(format!(
                "the plugin speaks net/rpc: dispense {name:?} with dispense_async"
            )));
        }
        let Make::Grpc(make) = &entry.make else {
            // go-plugin's text.
            return Err(Error::Config(format!(
                "plugin {name:?} doesn't support gRPC"
            )));
        };
        downcast(name, entry, make(self.channel.clone(), &self.broker))
    }

    /// Returns the client registered as `name`, for plugins of either
    /// protocol: local for gRPC (as [`dispense`](Self::dispense)); for
    /// net/rpc, `Dispenser.Dispense` and a brokered stream, as go-plugin's
    /// `RPCClient.Dispense`.
    ///
    /// # Errors
    ///
    /// As [`dispense`](Self::dispense); for net/rpc also the plugin's
    /// `unknown plugin type` ([`Error::RemoteCall`]) and broker errors.
    pub async fn dispense_async<T: 'static>(&self, name: &str) -> Result<T> {
        let Some(connection) = &self.netrpc else {
            return self.dispense(name);
        };
        let entry = self.entry::<T>(name)?;
        // As go-plugin: the plugin is asked first, so a name it lacks gets
        // its `unknown plugin type` error.
        let client = connection.dispense(name).await?;
        let Make::NetRpc(make) = &entry.make else {
            return Err(Error::Config(format!(
                "plugin {name:?} doesn't support net/rpc"
            )));
        };
        downcast(name, entry, make(client, connection.broker()))
    }

    /// The entry registered as `name`, if its client type is `T`.
    fn entry<T: 'static>(&self, name: &str) -> Result<&Entry> {
        let entry = self
            .plugins
            .entries
            .get(name)
            .ok_or_else(|| Error::UnknownPlugin {
                name: name.to_owned(),
                available: self.plugins.names(),
            })?;
        if entry.type_id != TypeId::of::<T>() {
            return Err(dispense_type_error::<T>(name, entry));
        }
        Ok(entry)
    }

    /// The net/rpc broker (go-plugin's `MuxBroker`) of a net/rpc plugin.
    pub fn mux_broker(&self) -> Option<&MuxBroker> {
        self.netrpc.as_ref().map(netrpc::NetRpcConnection::broker)
    }

    /// Health-checks the plugin (`grpc.health.v1` service `plugin`), as
    /// go-plugin's `Ping`.
    ///
    /// # Errors
    ///
    /// [`Error::Ping`] when the check fails or reports not serving,
    /// [`Error::Timeout`] after 5 s.
    pub async fn ping(&self) -> Result<()> {
        if let Some(connection) = &self.netrpc {
            return connection.ping().await;
        }
        let mut health = tonic_health::pb::health_client::HealthClient::new(self.channel.clone());
        let request = tonic_health::pb::HealthCheckRequest {
            service: HEALTH_SERVICE_NAME.to_owned(),
        };
        let response = tokio::time::timeout(PING_TIMEOUT, health.check(request))
            .await
            .map_err(|_| Error::Timeout {
                operation: "plugin health check",
                timeout: PING_TIMEOUT,
            })?
            .map_err(|status| Error::Ping(format!("{}: {}", status.code(), status.message())))?;
        let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
        if response.get_ref().status == serving {
            Ok(())
        } else {
            Err(Error::Ping(format!("status {}", response.get_ref().status)))
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
        let mut done = self.stdio_done.clone();
        let _ = tokio::time::timeout_at(bound, done.wait_for(|done| *done)).await;
        true
    }

    /// Stops the plugin as go-plugin's `Kill` does, with every step bounded:
    /// asks it to shut down (`GRPCController.Shutdown`), waits up to the
    /// grace period (2 s) for it to exit, then kills it. Never fails: a
    /// plugin that cannot be asked is killed.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future kills the plugin.
    pub async fn shutdown(self) -> ShutdownReport {
        let Self {
            channel,
            shutdown_grace,
            address,
            mut process,
            socket_dir,
            stdio_task,
            broker_closed,
            broker_task,
            mode,
            mux,
            netrpc,
            ..
        } = self;
        let started = Instant::now();
        if mode == (Mode::Attached { test: true }) {
            drop((broker_closed, broker_task, stdio_task));
            socket_dir.remove();
            process.detach();
            return ShutdownReport {
                graceful: false,
                status: None,
                left_running: true,
                elapsed: started.elapsed(),
            };
        }
        let deadline = tokio::time::Instant::now() + shutdown_grace;
        // net/rpc: Control.Quit; a plugin that does not acknowledge it is
        // killed at once, as go-plugin does.
        let mut quit_refused = false;
        if let Some(connection) = &netrpc {
            if !process.wait_gone(Duration::ZERO).await {
                quit_refused = !connection.quit(shutdown_grace).await;
            }
        } else if !process.wait_gone(Duration::ZERO).await {
            let mut controller = pb::grpc_controller_client::GrpcControllerClient::new(channel);
            // The outcome is ignored, as go-plugin does: the plugin may stop
            // before its reply is sent.
            let _ = tokio::time::timeout_at(deadline, controller.shutdown(pb::Empty {})).await;
        }
        // As go-plugin: brokered servers stop with the connection.
        drop(broker_closed);
        drop(broker_task);
        if let Some(mux) = mux {
            mux.close();
        }
        let remaining = if quit_refused {
            Duration::ZERO
        } else {
            deadline.saturating_duration_since(tokio::time::Instant::now())
        };
        let graceful = process.wait_gone(remaining).await;
        if let Some(connection) = netrpc {
            connection.close(Duration::from_secs(1)).await;
        }
        if !graceful {
            tracing::warn!(
                id = process.running().id(),
                "plugin failed to exit gracefully"
            );
            process.kill().await;
        } else {
            tracing::debug!(id = process.running().id(), "plugin exited");
        }
        process.running().cleanup();
        process.finish_readers(Duration::from_secs(1)).await;
        // Synced output the plugin sent before it exited still arrives.
        stdio_task.finish(Duration::from_secs(1)).await;
        socket_dir.remove();
        if mode == (Mode::Attached { test: false }) && process.state() != ProcessState::Running {
            remove_detached_socket_dir(&address);
        }
        ShutdownReport {
            graceful,
            status: process.exit_status(),
            left_running: false,
            elapsed: started.elapsed(),
        }
    }
}

/// After stopping a plugin a previous goplug host detached from: removes
/// the socket directory that host left for it, once the plugin removed
/// its socket. Only directories goplug names (`goplug-*`), only empty ones.
fn remove_detached_socket_dir(address: &PluginAddress) {
    let PluginAddress::Unix(socket) = address else {
        return;
    };
    for dir in socket.ancestors().skip(1).take(2) {
        let ours = dir
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with("goplug-"));
        if ours {
            // Fails, harmlessly, while anything is left in it.
            let _ = std::fs::remove_dir(dir);
            return;
        }
    }
}

/// The host's private directory for the plugin's sockets.
#[derive(Debug)]
struct SocketDir(Option<tempfile::TempDir>);

impl SocketDir {
    fn create(base: Option<&std::path::Path>, group: Option<&str>) -> Result<Self> {
        let base = base.map_or_else(std::env::temp_dir, std::path::Path::to_path_buf);
        let dir = tempfile::Builder::new()
            .prefix("goplug-")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir_in(&base)
            .map_err(|source| Error::Io {
                context: "creating the plugin's socket directory",
                source,
            })?;
        if let Some(group) = group {
            share_with_group(dir.path(), group)?;
        }
        Ok(Self(Some(dir)))
    }

    fn path(&self) -> &std::path::Path {
        self.0
            .as_ref()
            .map_or(std::path::Path::new(""), |dir| dir.path())
    }

    /// Leaves the directory in place for a plugin that outlives the host.
    fn keep(mut self) {
        if let Some(dir) = self.0.take() {
            let _ = dir.keep();
        }
    }

    fn remove(mut self) {
        if let Some(Err(e)) = self.0.take().map(tempfile::TempDir::close) {
            tracing::debug!("removing the plugin's socket directory: {e}");
        }
    }
}

/// Lets `group` into the socket directory (mode 0770), as go-plugin's host does.
fn share_with_group(dir: &std::path::Path, group: &str) -> Result<()> {
    let gid = crate::sys::group::resolve_group(group)?;
    crate::sys::group::share_with_group(dir, 0o770, gid).map_err(|e| match e {
        GroupShareError::Chown(e) => {
            Error::Config(format!("chown {} to group {group}: {e}", dir.display()))
        }
        GroupShareError::Chmod(source) => Error::Io {
            context: "making the socket directory group-accessible",
            source,
        },
    })
}

/// Builds the command go-plugin's example hosts use: `sh -c <line>`.
pub fn shell_command(line: impl Into<OsString>) -> std::process::Command {
    let mut command = std::process::Command::new("sh");
    command.arg("-c").arg(line.into());
    command
}

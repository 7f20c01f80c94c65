//! Configuring a plugin (go-plugin's `ClientConfig`) and checking that
//! the settings fit together before anything runs.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::AsyncWrite;

use super::launch::{LaunchPlan, launch};
use super::plugin_set::VersionedSets;
use super::process;
use super::reattach_builder::ReattachBuilder;
use super::runner::{LocalRunner, Runner};
use super::sandbox::Sandbox;
use super::stdio::SyncSink;
use super::version::VersionCheck;
use super::{Client, DEFAULT_SHUTDOWN_GRACE, DEFAULT_START_TIMEOUT, PluginSet};
use crate::error::{Error, Result};
use crate::protocol::reattach::ReattachConfig;
use crate::protocol::{Checksum, HandshakeConfig, Protocol, env};
use crate::transport::dial::TlsConnect;
use crate::transport::tls::{CertCurve, TlsVersion};

/// See [`ClientBuilder::on_checksum_verified`].
pub(super) type VerifiedHook = Box<dyn FnOnce(&std::path::Path) + Send>;

/// Configures and starts a plugin: go-plugin's `ClientConfig`.
#[must_use = "a builder does nothing until `start` is awaited"]
pub struct ClientBuilder {
    handshake: HandshakeConfig,
    versions: VersionedSets,
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
    tls: Option<TlsConnect>,
    max_tls_version: TlsVersion,
    cert_curve: CertCurve,
    log_buffer_size: usize,
    sync_stdout: Option<SyncSink>,
    sync_stderr: Option<SyncSink>,
    runner: Option<Box<dyn Runner>>,
    keep_running: bool,
    multiplex: bool,
    sandbox: Option<Sandbox>,
    pub(super) version_check: VersionCheck,
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
            .field("sandbox", &self.sandbox)
            .field("version_check", &self.version_check)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Serves `plugins` at the handshake's protocol version (go-plugin's
    /// `Plugins`). Giving a version its set twice (here or with
    /// [`version`](Self::version)) is refused at start.
    pub fn plugins(mut self, plugins: PluginSet) -> Self {
        self.versions
            .insert(self.handshake.protocol_version, plugins);
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
    ///
    /// The default runner uses the command's program, arguments,
    /// environment and working directory; for its other `CommandExt`
    /// settings (uid, gid, `pre_exec` hooks), run it with
    /// [`LocalRunner::fork_exec`](super::LocalRunner::fork_exec).
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
        self.tls = Some(TlsConnect::from_user(config, server_name));
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

    /// Confines the plugin process (Linux): see [`Sandbox`] for the
    /// default profile. Off by default. Applies to the local runner only;
    /// with [`runner`](Self::runner), `start` fails with [`Error::Config`].
    pub fn sandbox(mut self, sandbox: Sandbox) -> Self {
        self.sandbox = Some(sandbox);
        self
    }

    /// Attaches to a running plugin instead of launching one (go-plugin's
    /// `Reattach`). The host dials the address to verify the plugin,
    /// watches its pid for exit, and never signals it in test mode or when
    /// attaching fails. Its stdout and stderr are not the host's to read.
    ///
    /// The builder this returns has only the settings that apply to a
    /// plugin the host did not launch: a checksum, AutoMTLS or broker
    /// multiplexing cannot be written after it. Given before it, they are
    /// refused at start, as go-plugin refuses them.
    pub fn reattach(self, config: ReattachConfig) -> ReattachBuilder {
        let conflict = if self.sandbox.is_some() {
            Some(Error::Config(
                "a sandbox applies to plugins the host launches, not to one it reattaches to"
                    .to_owned(),
            ))
        } else if self.multiplex {
            Some(Error::Config(
                "gRPC broker multiplexing is not supported with Reattach config".to_owned(),
            ))
        } else if self.checksum.is_some() {
            Some(Error::ChecksumAndReattach)
        } else if self.auto_mtls {
            Some(Error::Config(
                "auto_mtls cannot be used with reattach: the plugin's certificate came from another host".to_owned(),
            ))
        } else {
            None
        };
        ReattachBuilder {
            config,
            handshake: self.handshake,
            versions: self.versions,
            tls: self.tls,
            start_timeout: self.start_timeout,
            shutdown_grace: self.shutdown_grace,
            sync_stdout: self.sync_stdout,
            sync_stderr: self.sync_stderr,
            version_check: self.version_check,
            conflict,
            ticket: None,
        }
    }

    /// Takes over a running plugin from a [`ReattachTicket`] another host
    /// process wrote ([`Client::reattach_ticket`]): as
    /// [`reattach`](Self::reattach), but over the AutoMTLS connection of
    /// the launch (the ticket's keys; this builder's `auto_mtls` is taken
    /// as asking for it), and the plugin's socket directory is removed
    /// when it goes. A checksum or sandbox given here is not applied
    /// again: the plugin was verified and confined when it was launched.
    ///
    /// [`ReattachTicket`]: super::ReattachTicket
    /// [`Client::reattach_ticket`]: super::Client::reattach_ticket
    pub fn reattach_ticket(mut self, ticket: super::ReattachTicket) -> ReattachBuilder {
        let super::ReattachTicket {
            config,
            auto_mtls,
            socket_dir,
        } = ticket;
        self.checksum = None;
        self.auto_mtls = false;
        // The plugin was confined when it was launched, and stays so.
        self.sandbox = None;
        let mut builder = self.reattach(config);
        builder.ticket = Some(super::reattach_builder::TicketParts {
            auto_mtls,
            socket_dir,
        });
        builder
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
    /// [`Error::Config`] without a command or for settings that exclude
    /// each other; [`Error::Spawn`]; [`Error::StartTimeout`];
    /// [`Error::ExitedBeforeHandshake`]; [`Error::Handshake`] for every
    /// malformed or incompatible line; [`Error::ProtocolNotImplemented`];
    /// [`Error::Connect`]; with [`require_version`](Self::require_version),
    /// [`Error::VersionConstraint`], [`Error::PluginVersionUnmet`] and
    /// [`Error::PluginVersionMissing`]. In every error case the plugin
    /// process has been killed and reaped.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future kills the plugin.
    pub async fn start(mut self) -> Result<Client> {
        let requirement = std::mem::take(&mut self.version_check).requirement()?;
        let deadline = tokio::time::Instant::now() + self.start_timeout;
        let client = launch(self.plan()?).await?;
        match requirement {
            Some(requirement) => requirement.enforce(client, deadline).await,
            None => Ok(client),
        }
    }

    /// Starts the plugin, runs `body` with it, then shuts it down
    /// gracefully whatever `body` returns: go-plugin's `defer
    /// client.Kill()`, so a `?` inside `body` no longer turns a graceful
    /// stop into a kill. See [`Client::scoped`].
    ///
    /// ```no_run
    /// # async fn example(builder: goplug::host::ClientBuilder) -> Result<(), Box<dyn std::error::Error>> {
    /// builder
    ///     .run(async |client| -> goplug::Result<()> {
    ///         client.ping().await?;
    ///         Ok(())
    ///     })
    ///     .await??;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start); what `body` returns is the `Ok` value.
    pub async fn run<T>(self, body: impl AsyncFnOnce(&Client) -> T) -> Result<T> {
        Ok(self.start().await?.scoped(body).await)
    }

    /// Checks that the settings fit together and sorts them into what a
    /// launch needs.
    fn plan(self) -> Result<LaunchPlan> {
        let Self {
            handshake,
            versions,
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
            multiplex,
            sandbox,
            version_check: _,
        } = self;
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
            Some(_) if sandbox.is_some() => {
                return Err(Error::Config(
                    "a sandbox applies to the local runner; a custom runner confines the plugin itself".to_owned(),
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
        let mut versions = versions.into_sets()?;
        if versions.is_empty() {
            versions.insert(handshake.protocol_version, PluginSet::new());
        }
        Ok(LaunchPlan {
            handshake,
            versions,
            command,
            runner,
            runner_is_local,
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
            sync: (sync_stdout, sync_stderr),
            keep_running,
            multiplex,
            sandbox,
        })
    }
}

impl Client {
    /// A builder for a plugin with this handshake.
    pub fn builder(handshake: HandshakeConfig) -> ClientBuilder {
        ClientBuilder {
            handshake,
            versions: VersionedSets::default(),
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
            multiplex: false,
            sandbox: None,
            version_check: VersionCheck::default(),
        }
    }
}

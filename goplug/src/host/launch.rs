//! Launching a plugin: its environment, the checksum check, the spawn,
//! reading and checking the handshake line, and the connection.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::builder::VerifiedHook;
use super::connected::{Connected, Connection, Mode};
use super::process::{self, Line, PluginProcess};
use super::program;
use super::runner::{self, Runner};
use super::sandbox::{Confinement, LaunchPaths, Sandbox};
use super::socket_dir::SocketDir;
use super::stdio::SyncSink;
use super::ticket::AutoMtlsKeys;
use super::{Client, HANDSHAKE_LINE_LIMIT, PluginSet, checksum, netrpc};
use crate::error::{Error, Result};
use crate::grpc::broker::BrokerTls;
use crate::protocol::handshake::{HandshakeLine, PluginAddress, format_versions};
use crate::protocol::{
    Checksum, HandshakeConfig, HandshakeError, Protocol, env, quote, quote_line,
};
use crate::transport::Channel;
use crate::transport::dial::{self as connect, TlsConnect};
use crate::transport::mux::Muxer;
use crate::transport::tls::{self, CertCurve, MutualTls, TlsVersion};
use rustls::pki_types::ServerName;

/// How long to look for a handshake line after stdout noise, to say so in
/// the error.
const NOISE_PEEK: Duration = Duration::from_millis(250);

/// The settings of a launch, checked by the builder.
pub(super) struct LaunchPlan {
    pub(super) handshake: HandshakeConfig,
    pub(super) versions: BTreeMap<u32, PluginSet>,
    pub(super) command: std::process::Command,
    pub(super) runner: Box<dyn Runner>,
    pub(super) runner_is_local: bool,
    pub(super) allowed_protocols: Vec<Protocol>,
    pub(super) start_timeout: Duration,
    pub(super) shutdown_grace: Duration,
    pub(super) skip_host_env: bool,
    pub(super) port_range: (u16, u16),
    pub(super) stderr: Option<process::StderrSink>,
    pub(super) unix_socket_dir: Option<PathBuf>,
    pub(super) unix_socket_group: Option<String>,
    pub(super) checksum: Option<Checksum>,
    pub(super) checksum_verified_hook: Option<VerifiedHook>,
    pub(super) auto_mtls: bool,
    pub(super) tls: Option<TlsConnect>,
    pub(super) max_tls_version: TlsVersion,
    pub(super) cert_curve: CertCurve,
    pub(super) log_buffer_size: usize,
    pub(super) sync: (Option<SyncSink>, Option<SyncSink>),
    pub(super) keep_running: bool,
    pub(super) multiplex: bool,
    pub(super) sandbox: Option<Sandbox>,
}

/// Launches the plugin of `plan`, reads and checks its handshake, and
/// connects. On every error the plugin has been killed and reaped.
pub(super) async fn launch(plan: LaunchPlan) -> Result<Client> {
    let LaunchPlan {
        handshake,
        mut versions,
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
        sync,
        keep_running,
        multiplex,
        sandbox,
    } = plan;
    let own_cert = auto_mtls
        .then(|| crate::transport::tls::AutoCert::generate(cert_curve))
        .transpose()?;
    let program = process::program_of(&command);
    // Before anything else: a binary that fails its check never runs.
    let (command, _verified_file, arg0, mut needs_fork) = match checksum {
        Some(expected) => {
            if let Some(shell) = program::shell_of(&command) {
                tracing::warn!(
                    "the checksum is checked against the shell binary {shell:?}, not the script it runs with -c: to pin the plugin, run its binary directly (Command::new(path)) instead of through a shell"
                );
            }
            let verified = checksum::verify(&command, &expected)?;
            if let Some(hook) = checksum_verified_hook {
                hook(&program);
            }
            let parts = verified.into_parts();
            (
                parts.command,
                Some(parts.file),
                Some(parts.arg0),
                parts.needs_fork,
            )
        }
        None => (command, None, None, false),
    };
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
    let socket_dir = SocketDir::create(unix_socket_dir.as_deref(), unix_socket_group.as_deref())?;
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
    let temp_dir = match &sandbox {
        Some(sandbox) => sandbox.make_temp_dir(socket_dir.path())?,
        None => None,
    };
    if let Some(dir) = &temp_dir {
        plugin_vars.push(process::os_pair("TMPDIR", dir));
    }
    #[cfg(feature = "otel")]
    plugin_vars.extend(super::trace::plugin_env());
    let own_env = process::assemble_env(
        process::caller_env(&command),
        None::<Vec<_>>,
        plugin_vars.clone(),
    );
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
    // Without a checksum as with one: a bare name that is in no PATH
    // directory is an error that says so.
    let executable = if runner_is_local {
        let found = program::resolve_program(command.get_program());
        Some(found.ok_or_else(|| program::not_in_path(&program))?)
    } else {
        None
    };
    if runner_is_local && process::kernel_refuses(&program) {
        let source = std::io::Error::from_raw_os_error(rustix::io::Errno::NOEXEC.raw_os_error());
        let diagnosis = process::spawn_diagnosis(&program, &source);
        return Err(Error::Spawn {
            program,
            error: source,
            diagnosis,
        });
    }
    let confinement = match &sandbox {
        Some(sandbox) => {
            let working_dir = working_dir(&command)?;
            // A relative path runs from the plugin's working directory.
            let resolved =
                program::resolve_program(program.as_os_str()).unwrap_or_else(|| program.clone());
            let paths = LaunchPaths {
                program: working_dir.join(resolved),
                working_dir,
                socket_dir: socket_dir.path().to_path_buf(),
                temp_dir,
            };
            needs_fork = true;
            Some(sandbox.confine(&mut command, &paths)?)
        }
        None => None,
    };
    let launch = runner::Launch {
        command,
        program: program.clone(),
        socket_dir: socket_dir.path().to_path_buf(),
        env: own_env,
        arg0,
        needs_fork,
        executable,
    };
    let launched = match tokio::time::timeout_at(deadline, runner.start(launch)).await {
        Ok(Ok(launched)) => launched,
        Ok(Err(source)) if source.get_ref().is_some_and(|e| e.is::<Error>()) => {
            return Err(runner_error(source));
        }
        Ok(Err(source)) => {
            if let Some(refusal) = confinement.and_then(Confinement::refusal) {
                return Err(refusal);
            }
            let diagnosis = process::spawn_diagnosis(&program, &source);
            return Err(Error::Spawn {
                program,
                error: source,
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
    let sandbox_report = confinement.map(Confinement::report);
    let (mut process, mut stdout) =
        PluginProcess::watch(launched, program, stderr, log_buffer_size);
    tracing::debug!(id = process.running().id(), "plugin started");

    let line = match read_handshake(&mut process, &mut stdout, deadline, start_timeout)
        .await
        .and_then(|line| {
            line.check(&offered, &allowed_protocols, auto_mtls)?;
            Ok(line)
        })
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
    let (tls, broker_tls, auto_mtls_keys) = match (&own_cert, &line.server_cert) {
        (Some(own), Some(field)) => match auto_mtls_connect(own, field, max_tls_version) {
            Ok((tls, broker_tls, keys)) => (Some(tls), Some(broker_tls), Some(keys)),
            Err(e) => return Err(abort(process, e).await),
        },
        _ => (tls, None, None),
    };
    tracing::debug!(version = line.app_version, "using plugin version");
    process.discard_stdout(stdout);
    let address = process.running().plugin_to_host(line.address.clone());

    let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
    let negotiated_tls = tls.as_ref().map(|tls| tls.negotiated.clone());
    let mut sync = sync;
    let mut netrpc_connection = None;
    let connected = if line.protocol == Protocol::NetRpc {
        match netrpc::connect(&address, remaining, tls, (sync.0.take(), sync.1.take())).await {
            Ok(connection) => {
                netrpc_connection = Some(connection);
                Ok((netrpc::unavailable_channel(), None))
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
    let connection = Connection {
        channel,
        protocol: line.protocol,
        version: line.app_version,
        address,
        negotiated_tls,
        mux,
        netrpc: netrpc_connection,
    };
    Ok(Connected {
        connection,
        plugins,
        process,
        socket_dir,
        mode: Mode::Launched { keep_running },
        started,
        shutdown_grace,
        socket_group,
        broker_tls,
        sync,
        auto_mtls_keys,
        sandbox: sandbox_report,
    }
    .into_client())
}

/// Where the plugin will run: its command's directory, else the host's.
fn working_dir(command: &std::process::Command) -> Result<PathBuf> {
    let host = std::env::current_dir().map_err(|error| Error::Io {
        context: "finding the working directory to sandbox the plugin in",
        error,
    })?;
    Ok(match command.get_current_dir() {
        Some(dir) => host.join(dir),
        None => host,
    })
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
                error: Some(Box::new(e)),
            });
        }
        Err(_) => {
            return Err(Error::Connect {
                address: address.to_string(),
                reason: format!("no connection within {timeout:?}"),
                error: None,
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

/// The TLS setup for a plugin that answered AutoMTLS with `field`.
fn auto_mtls_connect(
    own: &tls::AutoCert,
    field: &str,
    max_version: TlsVersion,
) -> Result<(connect::TlsConnect, BrokerTls, AutoMtlsKeys)> {
    let peer = tls::decode_handshake_cert(field)?;
    let keys = AutoMtlsKeys::new(own, &peer, max_version);
    let (connect, broker) = mutual_tls(own, peer, max_version)?;
    Ok((connect, broker, keys))
}

/// Client and broker TLS of an AutoMTLS pair: `own` presented, `peer` pinned.
pub(super) fn mutual_tls(
    own: &tls::AutoCert,
    peer: rustls::pki_types::CertificateDer<'static>,
    max_version: TlsVersion,
) -> Result<(connect::TlsConnect, BrokerTls)> {
    let mutual = MutualTls::new(own, peer, max_version)?;
    let server_name = ServerName::try_from(tls::SERVER_NAME).map_err(|e| Error::Tls {
        context: "naming the plugin",
        reason: e.to_string(),
        error: Some(Box::new(e)),
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

/// The goplug error a runner wrapped in an `io::Error`.
fn runner_error(source: std::io::Error) -> Error {
    match source.into_inner().map(|inner| inner.downcast::<Error>()) {
        Some(Ok(error)) => *error,
        Some(Err(other)) => Error::Io {
            context: "starting the plugin",
            error: std::io::Error::other(other),
        },
        None => Error::Io {
            context: "starting the plugin",
            error: std::io::Error::other("the runner failed"),
        },
    }
}

/// Kills the plugin after a failed start and adds what it wrote to stderr
/// to the errors that are about the plugin itself.
async fn abort(mut process: PluginProcess, error: Error) -> Error {
    process.kill().await;
    process.release().await;
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
            error: source,
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
        Err(e @ (HandshakeError::StdoutNoise { .. } | HandshakeError::StdoutLog { .. })) => {
            // Say whether a handshake followed the noise: the usual cause is
            // a plugin printing (or logging) before it serves.
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
                    .map(|next| quote_line(next.trim())),
                _ => None,
            };
            Err(e.with_following(following).into())
        }
        Err(e) => Err(e.into()),
    }
}

//! The crate's error type.
//!
//! One `#[non_exhaustive]` enum, [`Error`], with structured variants; the
//! handshake has its own [`HandshakeError`] because a malformed line can be
//! wrong in many distinct ways and each deserves its own message. Where
//! go-plugin has an error text that tools grep for, the `Display` output
//! starts with that text.
//!
//! As Go's wrapped errors do, a variant's message includes the error that
//! caused it (the OS error of a spawn, for one), so printing an error with
//! `{}` says everything; that typed cause is a field of the variant, and
//! `source()` returns only causes the message does not already include, so
//! a chain printer (anyhow's `{:#}`, eyre) never prints a cause twice.

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use crate::protocol::{
    Checksum, ChecksumParseError, HandshakeError, PluginAddress, PluginVersionError, Protocol,
    ReattachError, StderrTail, VersionConstraint, VersionConstraintError,
};

/// A typed cause, kept in a variant whose message already includes its
/// text.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Short alias for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in goplug, on either side.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The plugin's handshake line was missing, malformed or incompatible.
    #[error(transparent)]
    Handshake(#[from] HandshakeError),

    /// The plugin did not print its handshake line in time; it was killed.
    #[error("timeout while waiting for plugin to start (waited {timeout:?}){stderr}")]
    StartTimeout {
        /// The start timeout that ran out.
        timeout: Duration,
        /// The last lines the plugin wrote to stderr.
        stderr: StderrTail,
    },

    /// The plugin exited (or closed its stdout) before printing a handshake line.
    #[error(
        "plugin exited before we could connect ({}){stderr}{}",
        exit_text(.status),
        silent_exit_hint(.status, stderr)
    )]
    ExitedBeforeHandshake {
        /// Its exit status, if it exited (it is killed if it only closed stdout).
        status: Option<ExitStatus>,
        /// The last lines the plugin wrote to stderr.
        stderr: StderrTail,
    },

    /// The plugin command could not be started at all.
    #[error("failed to start plugin {program:?}: {error}{diagnosis}")]
    Spawn {
        /// The program that was to be run.
        program: PathBuf,
        /// The operating system's error (in the message, so not also a
        /// `source()`).
        error: std::io::Error,
        /// What the file is, when that explains the error (`; mode 0644,
        /// owner uid 1000: not executable`, `; an ELF binary for aarch64,
        /// this host is x86_64`), or empty.
        diagnosis: String,
    },

    /// The plugin binary's SHA-256 is not the expected one; it was not run.
    #[error("checksums did not match for {path:?}: expected {expected}, got {actual}")]
    ChecksumMismatch {
        /// The binary.
        path: PathBuf,
        /// The checksum the host pinned.
        expected: Checksum,
        /// The binary's checksum.
        actual: Checksum,
    },

    /// The plugin binary could not be read for its checksum; it was not run.
    #[error("error verifying checksum of {path:?}: {error}")]
    ChecksumFile {
        /// The binary.
        path: PathBuf,
        /// Why it could not be read (in the message, so not also a
        /// `source()`).
        error: std::io::Error,
    },

    /// The host could not connect to the address the plugin announced.
    #[error("failed to connect to plugin at {address}: {reason}")]
    Connect {
        /// The announced address (`unix:/path` or `tcp:127.0.0.1:port`).
        address: String,
        /// What failed, the cause's text included.
        reason: String,
        /// The typed cause, when there is one (an I/O error, a gRPC status,
        /// a yamux error); see [`Error::cause`].
        error: Option<BoxError>,
    },

    /// A TLS step failed: certificate generation, configuration, or the
    /// handshake with the peer.
    #[error("TLS error while {context}: {reason}")]
    Tls {
        /// What was being done.
        context: &'static str,
        /// What went wrong, the cause's text included.
        reason: String,
        /// The typed cause, when there is one (a rustls, certificate or I/O
        /// error); see [`Error::cause`].
        error: Option<BoxError>,
    },

    /// The negotiated protocol is known but not implemented by this version of goplug.
    #[error("plugin protocol {0} is not supported by this version of goplug")]
    ProtocolNotImplemented(Protocol),

    /// `dispense` was asked for a plugin name the negotiated set does not have.
    #[error(
        "unknown plugin type: {name} (this host's plugin set for the negotiated version has: {available:?})"
    )]
    UnknownPlugin {
        /// The requested name.
        name: String,
        /// The names that are available.
        available: Vec<String>,
    },

    /// `dispense` was asked for a different client type than the one registered.
    #[error(
        "plugin {name:?} dispenses {}, not {}",
        public_type_name(registered),
        public_type_name(requested)
    )]
    DispenseType {
        /// The plugin name.
        name: String,
        /// The client type registered in the plugin set.
        registered: &'static str,
        /// The type that was asked for.
        requested: &'static str,
    },

    /// A brokered connection failed.
    #[error("broker connection {id}: {reason}")]
    Broker {
        /// The broker id.
        id: u32,
        /// What went wrong, the cause's text included.
        reason: String,
        /// The typed cause, when there is one (the connection's error); see
        /// [`Error::cause`].
        error: Option<BoxError>,
    },

    /// A supervised plugin is not serving: its circuit is open, or its
    /// supervisor has stopped it.
    #[error("plugin {name:?} is not serving: {reason}")]
    PluginDown {
        /// The plugin's name in its supervisor.
        name: String,
        /// Its state and its last failure.
        reason: String,
    },

    /// A supervised plugin's reload was refused: the new plugin did not
    /// start or did not pass its health check. The old one keeps serving.
    #[error("reloading plugin {name:?} failed, the running plugin keeps serving: {reason}")]
    Reload {
        /// The plugin's name in its supervisor.
        name: String,
        /// Why, the cause's text included.
        reason: String,
        /// The typed cause (the start's or the health check's error); see
        /// [`Error::cause`].
        error: Option<BoxError>,
    },

    /// A health check (`ping`) failed: the call failed, or the plugin
    /// answered that it is not serving.
    #[error("plugin health check failed: {reason}")]
    Ping {
        /// What failed, the cause's text included.
        reason: String,
        /// The call's `tonic::Status`, when the call itself failed; see
        /// [`Error::cause`].
        error: Option<BoxError>,
    },

    /// An operation on the plugin did not finish in time.
    #[error("{operation} did not finish within {timeout:?}")]
    Timeout {
        /// What was being done.
        operation: &'static str,
        /// The limit that ran out.
        timeout: Duration,
    },

    /// The host's or the plugin's configuration is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// A net/rpc call returned an error (Go's `rpc.ServerError`): the
    /// plugin's own error text, shown alone as Go shows it.
    #[error("{message}")]
    RemoteCall {
        /// The `Service.Method` called.
        method: String,
        /// The error string the plugin sent.
        message: String,
    },

    /// A net/rpc call failed below the plugin: the connection is gone
    /// (Go's "connection is shut down"), or a body did not fit its type.
    #[error("net/rpc call {method}: {reason}")]
    NetRpc {
        /// The `Service.Method` called.
        method: String,
        /// What went wrong.
        reason: String,
    },

    /// A reattach config that cannot be used: malformed JSON, an unknown
    /// protocol or network, a relative socket path.
    #[error("invalid reattach config: {reason}")]
    Reattach {
        /// What was wrong.
        reason: String,
    },

    /// Reattaching failed: no process with that pid, or nothing answers at
    /// the address. The process is never signalled: the pid may be reused.
    #[error("reattachment process not found: pid {pid} at {address}: {reason}")]
    ReattachProcessNotFound {
        /// The pid of the config.
        pid: u32,
        /// The address of the config.
        address: PluginAddress,
        /// Why the plugin was not found.
        reason: String,
    },

    /// Reattaching and checksum verification are exclusive: the host runs
    /// no binary it could check (go-plugin's `ErrSecureConfigAndReattach`).
    #[error("only one of Reattach or SecureConfig can be set")]
    ChecksumAndReattach,

    /// Plugin discovery failed: a malformed pattern or manifest, an
    /// unreadable directory, or a binary the manifest does not pin.
    #[error("discovering plugins at {path:?}: {reason}")]
    Discovery {
        /// The directory, file or manifest concerned.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },

    /// A version constraint that does not parse, or that go-version and
    /// Cargo read differently ([`VersionConstraint`] has the syntax).
    #[error("invalid version constraint {constraint:?}: {reason}")]
    VersionConstraint {
        /// The constraint as given.
        constraint: String,
        /// What is wrong with it, and how to write it.
        reason: String,
    },

    /// A plugin version that is not a semantic version: the one a plugin
    /// declares (refused before it serves) or the one it reports.
    #[error("plugin version {version:?} is not a semantic version: {reason}")]
    InvalidPluginVersion {
        /// The version as written.
        version: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The plugin's version does not meet the host's constraint; the
    /// plugin was shut down.
    #[error(
        "plugin version {version} does not meet the required version {constraint}: use a plugin that meets it, or change the host's require_version"
    )]
    PluginVersionUnmet {
        /// The host's constraint.
        constraint: VersionConstraint,
        /// The version the plugin reported.
        version: semver::Version,
    },

    /// The host requires a version and the plugin reports none (a Go or
    /// older plugin, a net/rpc plugin); the plugin was shut down.
    #[error(
        "the host requires plugin version {constraint}, but the plugin reports no version ({reason}); to accept unversioned plugins, set missing_version(MissingVersion::Allow)"
    )]
    PluginVersionMissing {
        /// The host's constraint.
        constraint: VersionConstraint,
        /// Why there is no version.
        reason: &'static str,
    },

    /// Asking the plugin's version (`logical.PluginVersion/Version`)
    /// failed other than with `Unimplemented`.
    #[error("asking the plugin's version (logical.PluginVersion/Version) failed: {reason}")]
    PluginVersionCall {
        /// What failed, the cause's text included.
        reason: String,
        /// The gRPC status; see [`Error::cause`].
        error: Option<BoxError>,
    },

    /// Plugin side: the magic cookie's variable is not set, so the binary
    /// was not started by a host. go-plugin's message was printed on stderr.
    #[error(
        "this binary is a plugin and was not launched by its host (environment variable {key} is not set)"
    )]
    NotLaunchedByHost {
        /// The cookie's environment variable.
        key: String,
    },

    /// Plugin side: the magic cookie's variable is set, but not to this
    /// plugin's value: a host launched it with another handshake config.
    /// A message naming the variable (not the values) was printed on stderr.
    #[error(
        "the magic cookie variable {key} is set, but not to this plugin's value: the host's and this plugin's handshake configs differ"
    )]
    CookieMismatch {
        /// The cookie's environment variable.
        key: String,
    },

    /// Plugin side: `plugin::run` (or `run_debug`) was called inside a tokio
    /// runtime, an async `main`, where it cannot start a runtime of its own.
    #[error(
        "`goplug::plugin::{function}` was called inside a tokio runtime, which cannot start another; inside an async main (`#[tokio::main]`), use `goplug::plugin::{instead}` instead"
    )]
    RunInsideRuntime {
        /// The function that was called.
        function: &'static str,
        /// What to await instead.
        instead: &'static str,
    },

    /// Plugin side: the plugin's own cookie key or value is empty.
    #[error("misconfigured plugin: the magic cookie key or value is empty")]
    MisconfiguredCookie,

    /// Plugin side: a socket path would exceed the operating system's limit.
    #[error(
        "unix socket path {path:?} is {len} bytes long, over the limit of {limit}; set TMPDIR or PLUGIN_UNIX_SOCKET_DIR to a shorter directory"
    )]
    SocketPathTooLong {
        /// The path that was too long.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        limit: usize,
    },

    /// Plugin side: the listener could not be set up.
    #[error("failed to listen for the host: {reason}")]
    Listen {
        /// What failed, the cause's text included.
        reason: String,
        /// The typed cause (an I/O error), when there is one; see
        /// [`Error::cause`].
        error: Option<BoxError>,
    },

    /// Plugin side: the gRPC server failed.
    #[error("gRPC server failed: {0}")]
    Serve(tonic::transport::Error),

    /// A strict `host::Sandbox` asked for a confinement
    /// this kernel or this host cannot give; nothing was started.
    #[error(
        "the sandbox cannot apply {feature}: {reason} (use SandboxMode::BestEffort to start without it)"
    )]
    SandboxUnsupported {
        /// What could not be applied.
        feature: SandboxFeature,
        /// Why.
        reason: String,
    },

    /// Preparing the sandbox failed (a path to allow cannot be opened, the
    /// seccomp filter cannot be built); nothing was started.
    #[error("preparing the sandbox: {context}: {error}")]
    Sandbox {
        /// What was being prepared.
        context: String,
        /// The underlying error.
        error: std::io::Error,
    },

    /// The container engine (Docker Engine API: Docker, Podman) refused or
    /// failed a step of a container runner: the engine not reachable, the
    /// image not in its store, a container that could not be created.
    #[error("container engine at {endpoint}: {reason}")]
    Container {
        /// The engine's endpoint (its Unix socket).
        endpoint: String,
        /// What went wrong and what to do about it.
        reason: String,
        /// The engine client's error (in the message, so not also a
        /// `source()`).
        error: Option<BoxError>,
    },

    /// An I/O error, with what was being done.
    #[error("{context}: {error}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The underlying error (in the message, so not also a `source()`).
        error: std::io::Error,
    },
}

/// One confinement of a `host::Sandbox`: what a strict
/// sandbox fails on and a best-effort one reports as missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SandboxFeature {
    /// Landlock file-system rules (Linux 5.13, ABI 1).
    LandlockFilesystem,
    /// Landlock TCP bind and connect rules (Linux 6.7, ABI 4).
    LandlockNetwork,
    /// Landlock scoping of abstract Unix sockets and signals (Linux 6.12, ABI 6).
    LandlockScopes,
    /// The seccomp filter denying system calls a plugin never needs.
    Seccomp,
    /// `no_new_privs`: no privilege gained through exec (setuid binaries).
    NoNewPrivs,
    /// A resource limit (address space, CPU time, open files, core size).
    ResourceLimit,
    /// The process limit (`RLIMIT_NPROC`), which the kernel does not
    /// enforce for root.
    ProcessLimit,
    /// A new user namespace.
    UserNamespace,
    /// A new, empty network namespace.
    NetworkNamespace,
    /// Sandboxing at all: it exists on Linux only.
    Platform,
}

impl std::fmt::Display for SandboxFeature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::LandlockFilesystem => "Landlock file-system rules",
            Self::LandlockNetwork => "Landlock network rules",
            Self::LandlockScopes => "Landlock scoping of abstract sockets and signals",
            Self::Seccomp => "the seccomp filter",
            Self::NoNewPrivs => "no_new_privs",
            Self::ResourceLimit => "a resource limit",
            Self::ProcessLimit => "the process limit",
            Self::UserNamespace => "a user namespace",
            Self::NetworkNamespace => "a network namespace",
            Self::Platform => "a sandbox on this platform",
        })
    }
}

impl Error {
    /// The typed error that caused this one, if there is one: the OS error
    /// of a spawn or a socket operation, the rustls or certificate error of
    /// a TLS step, the gRPC status or I/O error of a failed connection. Its
    /// text is part of this error's message, so it is not also returned by
    /// `source()`.
    pub fn cause(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        match self {
            Self::Spawn { error, .. }
            | Self::ChecksumFile { error, .. }
            | Self::Sandbox { error, .. }
            | Self::Io { error, .. } => Some(error),
            Self::Connect { error, .. }
            | Self::Tls { error, .. }
            | Self::Broker { error, .. }
            | Self::Ping { error, .. }
            | Self::Listen { error, .. }
            | Self::Reload { error, .. }
            | Self::PluginVersionCall { error, .. }
            | Self::Container { error, .. } => error.as_deref(),
            Self::Serve(error) => Some(error),
            _ => None,
        }
    }

    /// The operating system's error behind this one, if there is one (a
    /// spawn, a checksum read, a socket, a connection): to tell, say,
    /// `EMFILE`, `ENOENT` or `ECONNREFUSED` apart. Found in [`cause`]
    /// and the errors below it.
    ///
    /// [`cause`]: Self::cause
    pub fn io_error(&self) -> Option<&std::io::Error> {
        let mut current: Option<&(dyn std::error::Error + 'static)> = self
            .cause()
            .map(|cause| cause as &(dyn std::error::Error + 'static));
        while let Some(error) = current {
            if let Some(io) = error.downcast_ref::<std::io::Error>() {
                return Some(io);
            }
            current = error.source();
        }
        None
    }
}

impl Error {
    /// A broker failure with no typed cause.
    pub(crate) fn broker(id: u32, reason: impl Into<String>) -> Self {
        Self::Broker {
            id,
            reason: reason.into(),
            error: None,
        }
    }

    /// A listener failure: `doing` and, when there is one, the cause.
    pub(crate) fn listen(doing: impl Into<String>, error: Option<BoxError>) -> Self {
        let doing = doing.into();
        let reason = match &error {
            Some(error) => format!("{doing}: {error}"),
            None => doing,
        };
        Self::Listen { reason, error }
    }
}

impl From<ReattachError> for Error {
    fn from(error: ReattachError) -> Self {
        Self::Reattach {
            reason: error.reason,
        }
    }
}

impl From<VersionConstraintError> for Error {
    fn from(error: VersionConstraintError) -> Self {
        Self::VersionConstraint {
            constraint: error.constraint,
            reason: error.reason,
        }
    }
}

impl From<PluginVersionError> for Error {
    fn from(error: PluginVersionError) -> Self {
        Self::InvalidPluginVersion {
            version: error.version,
            reason: error.reason,
        }
    }
}

impl From<ChecksumParseError> for Error {
    fn from(error: ChecksumParseError) -> Self {
        Self::Config(error.to_string())
    }
}

fn exit_text(status: &Option<ExitStatus>) -> String {
    match status {
        Some(status) => status.to_string(),
        None => "closed its stdout; killed".to_owned(),
    }
}

/// A program that exits at once, successfully and without a word, is most
/// likely not a plugin at all (`/bin/true`, a wrapper script that forgot
/// to exec it).
fn silent_exit_hint(status: &Option<ExitStatus>, stderr: &StderrTail) -> &'static str {
    let silent = stderr.to_string().is_empty();
    if silent && status.is_some_and(|status| status.success()) {
        "; it printed no handshake line and nothing on stderr: is the command a go-plugin plugin (does it call plugin.Serve or goplug::plugin::run)?"
    } else {
        ""
    }
}

/// `type_name` spells goplug's channel by its private module; errors name
/// it as users import it.
fn public_type_name(name: &str) -> String {
    name.replace(
        "goplug::transport::channel::Channel",
        "goplug::host::Channel",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_successful_exit_asks_whether_the_command_is_a_plugin() {
        use std::os::unix::process::ExitStatusExt as _;
        let hint = "is the command a go-plugin plugin";
        let cases = [
            (ExitStatus::from_raw(0), StderrTail::default(), true),
            (ExitStatus::from_raw(1 << 8), StderrTail::default(), false),
            (
                ExitStatus::from_raw(0),
                StderrTail("usage: x".to_owned()),
                false,
            ),
        ];
        for (status, stderr, hinted) in cases {
            let text = Error::ExitedBeforeHandshake {
                status: Some(status),
                stderr,
            }
            .to_string();
            assert!(
                text.starts_with("plugin exited before we could connect"),
                "{text}"
            );
            assert_eq!(text.contains(hint), hinted, "{text}");
        }
    }

    /// No message in a chain repeats the next one's text.
    #[test]
    fn no_cause_is_printed_twice_in_a_chain() {
        let io = || std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let errors = [
            Error::Spawn {
                program: PathBuf::from("./plugin"),
                error: io(),
                diagnosis: "; mode 0644: not executable (chmod +x)".to_owned(),
            },
            Error::ChecksumFile {
                path: PathBuf::from("./plugin"),
                error: io(),
            },
            Error::Io {
                context: "creating the socket directory",
                error: io(),
            },
            Error::from(HandshakeError::TooFewFields {
                line: "1|3".to_owned(),
                fields: 2,
            }),
            Error::from(ChecksumParseError {
                text: "abc".to_owned(),
            }),
            Error::listen("binding /run/plugin.sock", Some(io().into())),
            Error::Broker {
                id: 3,
                reason: io().to_string(),
                error: Some(io().into()),
            },
        ];
        for error in errors {
            let mut outer: &dyn std::error::Error = &error;
            let message = outer.to_string();
            if let Some(io) = error.io_error() {
                assert!(message.contains(&io.to_string()), "{message}");
            }
            if matches!(error, Error::Listen { .. } | Error::Broker { .. }) {
                let kind = error.io_error().map(std::io::Error::kind);
                assert_eq!(
                    kind,
                    Some(std::io::ErrorKind::PermissionDenied),
                    "{message}"
                );
            }
            assert!(
                message.contains("denied") || !matches!(error, Error::Spawn { .. }),
                "{message}"
            );
            while let Some(inner) = outer.source() {
                let (outer_text, inner_text) = (outer.to_string(), inner.to_string());
                assert!(
                    !outer_text.contains(&inner_text),
                    "{outer_text:?} repeats its source {inner_text:?}"
                );
                outer = inner;
            }
        }
    }

    #[test]
    fn go_plugin_texts_are_kept() {
        let e = Error::StartTimeout {
            timeout: Duration::from_millis(500),
            stderr: StderrTail::default(),
        };
        assert!(
            e.to_string()
                .starts_with("timeout while waiting for plugin to start")
        );
    }
}

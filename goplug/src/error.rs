//! The crate's error type.
//!
//! One `#[non_exhaustive]` enum, [`Error`], with structured variants; the
//! handshake has its own [`HandshakeError`] because a malformed line can be
//! wrong in many distinct ways and each deserves its own message. Where
//! go-plugin has an error text that tools grep for, the `Display` output
//! starts with that text.

use std::fmt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use crate::handshake::Protocol;

/// Short alias for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The longest excerpt of a peer's output quoted in an error.
pub(crate) const QUOTE_LIMIT: usize = 256;

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
    #[error("plugin exited before we could connect ({}){stderr}", exit_text(.status))]
    ExitedBeforeHandshake {
        /// Its exit status, if it exited (it is killed if it only closed stdout).
        status: Option<ExitStatus>,
        /// The last lines the plugin wrote to stderr.
        stderr: StderrTail,
    },

    /// The plugin command could not be started at all.
    #[error("failed to start plugin {program:?}: {source}{diagnosis}")]
    Spawn {
        /// The program that was to be run.
        program: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
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
        expected: crate::host::Checksum,
        /// The binary's checksum.
        actual: crate::host::Checksum,
    },

    /// The plugin binary could not be read for its checksum; it was not run.
    #[error("error verifying checksum of {path:?}: {source}")]
    ChecksumFile {
        /// The binary.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },

    /// The host could not connect to the address the plugin announced.
    #[error("failed to connect to plugin at {address}: {reason}")]
    Connect {
        /// The announced address (`unix:/path` or `tcp:127.0.0.1:port`).
        address: String,
        /// What failed.
        reason: String,
    },

    /// A TLS step failed: certificate generation, configuration, or the
    /// handshake with the peer.
    #[error("TLS error while {context}: {reason}")]
    Tls {
        /// What was being done.
        context: &'static str,
        /// What went wrong.
        reason: String,
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
    #[error("plugin {name:?} dispenses {registered}, not {requested}")]
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
        /// What went wrong.
        reason: String,
    },

    /// A health check (`ping`) failed.
    #[error("plugin health check failed: {0}")]
    Ping(String),

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
        address: crate::handshake::PluginAddress,
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

    /// Plugin side: the magic cookie is not set to the expected value, so the
    /// binary was not started by its host. go-plugin's message was printed on stderr.
    #[error(
        "this binary is a plugin and was not launched by its host (environment variable {key} is not set to the expected value)"
    )]
    NotLaunchedByHost {
        /// The cookie's environment variable.
        key: String,
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
    #[error("failed to listen for the host: {0}")]
    Listen(String),

    /// Plugin side: the gRPC server failed.
    #[error("gRPC server failed: {0}")]
    Serve(#[source] tonic::transport::Error),

    /// An I/O error, with what was being done.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

fn exit_text(status: &Option<ExitStatus>) -> String {
    match status {
        Some(status) => status.to_string(),
        None => "closed its stdout; killed".to_owned(),
    }
}

/// The last lines a plugin wrote to stderr, kept for error messages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StderrTail(pub String);

impl fmt::Display for StderrTail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.trim().is_empty() {
            return Ok(());
        }
        write!(f, "; plugin stderr:\n{}", self.0.trim_end())
    }
}

/// A handshake line that could not be accepted. Every variant quotes the
/// offending line (truncated to 256 bytes).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The first stdout line is not a handshake line at all: the plugin
    /// printed something else before it. go-plugin hosts read only the
    /// first line, so this plugin would fail with them too.
    #[error("Unrecognized remote plugin message: {line:?}\nThe plugin wrote to stdout before its handshake line{}", following_text(.following))]
    StdoutNoise {
        /// The first line.
        line: String,
        /// A line that looked like a handshake and followed shortly after, if any.
        following: Option<String>,
    },

    /// The line has fewer than the four fields go-plugin requires.
    #[error(
        "Unrecognized remote plugin message: {line:?}\nA handshake line has 4 to 7 fields separated by '|', this one has {fields}"
    )]
    TooFewFields {
        /// The line.
        line: String,
        /// How many fields it had.
        fields: usize,
    },

    /// The line has more than seven fields.
    #[error(
        "Unrecognized remote plugin message: {line:?}\nA handshake line has 4 to 7 fields separated by '|', this one has {fields}"
    )]
    TooManyFields {
        /// The line.
        line: String,
        /// How many fields it had.
        fields: usize,
    },

    /// The plugin wrote more than the limit without a newline.
    #[error(
        "plugin handshake line exceeds {limit} bytes without a newline; it starts with {prefix:?}"
    )]
    LineTooLong {
        /// The limit in bytes.
        limit: usize,
        /// The start of what was read.
        prefix: String,
    },

    /// The line is not valid UTF-8 or contains control characters.
    #[error(
        "Unrecognized remote plugin message: {line:?}\nThe line contains bytes that are not printable UTF-8"
    )]
    NotText {
        /// The line, lossily decoded.
        line: String,
    },

    /// Field 1 is not a number.
    #[error("error parsing core protocol version {value:?} in handshake line {line:?}")]
    InvalidCoreVersion {
        /// The field.
        value: String,
        /// The line.
        line: String,
    },

    /// Field 1 is a number other than 1.
    #[error(
        "incompatible core API version with plugin. Plugin version: {plugin}, Core version: 1\nTo fix this, the plugin usually only needs to be recompiled. Please report this to the plugin author. (line {line:?})"
    )]
    CoreVersionMismatch {
        /// The plugin's core version.
        plugin: u64,
        /// The line.
        line: String,
    },

    /// Field 2 is not a number.
    #[error("Error parsing protocol version {value:?} in handshake line {line:?}")]
    InvalidAppVersion {
        /// The field.
        value: String,
        /// The line.
        line: String,
    },

    /// Field 2 names a version the host did not offer.
    #[error(
        "incompatible API version with plugin. Plugin version: {plugin}, Client versions: {host:?}\nThe plugin chose version {plugin} because it supports none of the versions this host offers; upgrade the older side. (line {line:?}){stderr}"
    )]
    AppVersionMismatch {
        /// The version the plugin chose.
        plugin: u32,
        /// The versions the host offered.
        host: Vec<u32>,
        /// The line.
        line: String,
        /// What the plugin wrote to stderr; a goplug plugin lists the
        /// versions it supports there.
        stderr: StderrTail,
    },

    /// Field 3 is neither `unix` nor `tcp`.
    #[error(
        "unknown address type: network {network:?} (expected \"unix\" or \"tcp\") in handshake line {line:?}"
    )]
    UnknownNetwork {
        /// The field.
        network: String,
        /// The line.
        line: String,
    },

    /// Field 4 is not a usable address for the network.
    #[error("invalid plugin address {address:?}: {reason} (line {line:?})")]
    InvalidAddress {
        /// The field.
        address: String,
        /// Why it was refused.
        reason: &'static str,
        /// The line.
        line: String,
    },

    /// Field 5 names no protocol goplug knows.
    #[error(
        "unsupported plugin protocol {protocol:?}: expected \"grpc\" or \"netrpc\" (line {line:?})"
    )]
    UnknownProtocol {
        /// The field.
        protocol: String,
        /// The line.
        line: String,
    },

    /// Field 5 names a protocol the host does not allow.
    #[error("unsupported plugin protocol {:?}. Supported: [{}] (line {line:?})", .protocol.as_str(), join(.allowed))]
    ProtocolNotAllowed {
        /// The plugin's protocol.
        protocol: Protocol,
        /// The host's allowed protocols.
        allowed: Vec<Protocol>,
        /// The line.
        line: String,
    },

    /// The host asked for automatic mutual TLS, but the line carries no
    /// certificate: the plugin does not support AutoMTLS (or ignored it).
    #[error(
        "the host requested automatic mutual TLS, but the plugin sent no certificate in its handshake (line {line:?}); the plugin does not support AutoMTLS"
    )]
    MissingCertificate {
        /// The line.
        line: String,
    },

    /// The host asked for a multiplexed broker and the line has no 7th
    /// field: the plugin predates go-plugin 1.6 or is not Go.
    #[error(
        "client requested gRPC broker multiplexing but plugin does not support the feature; for Go plugins, you will need to update the github.com/hashicorp/go-plugin dependency and recompile (line {line:?})"
    )]
    MultiplexMissing {
        /// The line.
        line: String,
    },

    /// The host asked for a multiplexed broker and field 7 says no.
    #[error(
        "client requested gRPC broker multiplexing but plugin does not support the feature (line {line:?})"
    )]
    MultiplexRefused {
        /// The line.
        line: String,
    },

    /// Field 7 is not one of Go's booleans.
    #[error(
        "error parsing {value:?} as a boolean for gRPC broker multiplexing support (line {line:?})"
    )]
    InvalidMultiplex {
        /// The field.
        value: String,
        /// The line.
        line: String,
    },

    /// Field 6 is not a certificate.
    #[error("error parsing server cert: {reason}: field {field:?}")]
    InvalidCertificate {
        /// What is wrong with it.
        reason: String,
        /// The field.
        field: String,
    },

    /// Field 6 carries a certificate although the host did not ask for TLS.
    /// (A Go host panics here.)
    #[error(
        "plugin sent a TLS certificate in its handshake, but this host did not request TLS (line {line:?})"
    )]
    UnexpectedCertificate {
        /// The line.
        line: String,
    },
}

fn following_text(following: &Option<String>) -> String {
    match following {
        Some(line) => format!("; a handshake line followed: {line:?}. Remove the output printed before plugin start-up (go-plugin reads only the first line)."),
        None => ". Remove the output printed before plugin start-up (go-plugin reads only the first line).".to_owned(),
    }
}

fn join(protocols: &[Protocol]) -> String {
    protocols
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Truncates peer output for quoting in an error, on a char boundary.
pub(crate) fn quote(text: &str) -> String {
    if text.len() <= QUOTE_LIMIT {
        return text.to_owned();
    }
    let mut end = QUOTE_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_truncates_on_char_boundary() {
        let long = "é".repeat(300);
        let q = quote(&long);
        assert!(q.len() <= QUOTE_LIMIT + '…'.len_utf8());
        assert!(q.ends_with('…'));
        assert_eq!(quote("short"), "short");
    }

    #[test]
    fn go_plugin_texts_are_kept() {
        let e = HandshakeError::AppVersionMismatch {
            plugin: 2,
            host: vec![3],
            line: "1|2|unix|/p|grpc|".into(),
            stderr: StderrTail::default(),
        };
        assert!(e.to_string().starts_with(
            "incompatible API version with plugin. Plugin version: 2, Client versions: [3]"
        ));
        let e = HandshakeError::ProtocolNotAllowed {
            protocol: Protocol::Grpc,
            allowed: vec![Protocol::NetRpc],
            line: "1|1|unix|/s|grpc|".into(),
        };
        assert!(
            e.to_string()
                .starts_with("unsupported plugin protocol \"grpc\". Supported: [netrpc]")
        );
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

//! Why a handshake line was refused: one variant per way a line can be
//! wrong, each quoting the line. Part of the pure protocol core.

use std::fmt;

use super::env;
use super::handshake::Protocol;

/// The longest excerpt of a peer's output quoted in an error.
pub(crate) const QUOTE_LIMIT: usize = 256;
/// A quoted handshake line keeps this much of a long certificate field.
const CERT_QUOTE_PREFIX: usize = 12;
/// Certificate fields longer than this are shortened in quotes.
const CERT_QUOTE_LIMIT: usize = 32;

/// The last lines a plugin wrote to stderr, kept for error messages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StderrTail(pub String);

impl StderrTail {
    /// Whether the plugin refused to start because the magic cookie it got
    /// is not its own: go-plugin's "This binary is a plugin" text (which a
    /// launched plugin prints only then) or goplug's cookie-mismatch text.
    pub fn cookie_rejected(&self) -> bool {
        let first_line = env::NOT_LAUNCHED_BY_HOST.lines().next().unwrap_or_default();
        self.0.contains(first_line) || self.0.contains(env::COOKIE_MISMATCH_MARKER)
    }
}

impl fmt::Display for StderrTail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.trim().is_empty() {
            return Ok(());
        }
        if self.cookie_rejected() {
            // The plugin's text speaks to someone who ran it by hand; the
            // host knows better: it did launch it, with another cookie.
            f.write_str(
                "; the plugin rejected the magic cookie (host and plugin handshake configs differ: check magic_cookie_key/value)",
            )?;
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

    /// The first stdout line looks like a log line (colour codes, a
    /// timestamp, a level): the plugin's logger writes to stdout, which
    /// carries the handshake.
    #[error("Unrecognized remote plugin message: {line:?}\nThe plugin writes its logs to stdout, which carries the handshake: `tracing_subscriber::fmt()` writes to stdout by default; use `goplug::log::init()`, which writes to stderr (or give your subscriber `.with_writer(std::io::stderr)`){}", following_log_text(.following))]
    StdoutLog {
        /// The first line, without its ANSI escape codes.
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

fn following_log_text(following: &Option<String>) -> String {
    match following {
        Some(line) => format!("; a handshake line followed: {line:?}."),
        None => ".".to_owned(),
    }
}

#[cfg(feature = "host")]
impl HandshakeError {
    /// The error with the handshake line that followed stdout noise or a
    /// log line; other errors are returned as they are.
    pub(crate) fn with_following(self, next: Option<String>) -> Self {
        match self {
            Self::StdoutNoise { line, .. } => Self::StdoutNoise {
                line,
                following: next,
            },
            Self::StdoutLog { line, .. } => Self::StdoutLog {
                line,
                following: next,
            },
            other => other,
        }
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

/// Quotes a handshake line for an error: a long certificate (field 6)
/// shortened to its first characters and its length, then [`quote`]d.
pub(crate) fn quote_line(line: &str) -> String {
    let mut fields: Vec<&str> = line.split('|').collect();
    let shortened;
    match fields.get(5) {
        Some(cert) if cert.len() > CERT_QUOTE_LIMIT && is_base64(cert) => {
            shortened = format!("{}…({} chars)", &cert[..CERT_QUOTE_PREFIX], cert.len());
            fields[5] = &shortened;
        }
        _ => return quote(line),
    }
    quote(&fields.join("|"))
}

fn is_base64(field: &str) -> bool {
    field
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_lines_shorten_a_certificate() {
        let cert = format!("MIIByDCCAW2gAwIB{}", "A".repeat(668));
        let cases: Vec<(String, String)> = vec![
            (
                format!("1|2|unix|/tmp/p.sock|grpc|{cert}"),
                "1|2|unix|/tmp/p.sock|grpc|MIIByDCCAW2g…(684 chars)".to_owned(),
            ),
            (
                format!("1|2|unix|/tmp/p.sock|grpc|{cert}|true"),
                "1|2|unix|/tmp/p.sock|grpc|MIIByDCCAW2g…(684 chars)|true".to_owned(),
            ),
            // Short fields, and fields that are not base64, stay whole.
            (
                "1|1|unix|/s|grpc|e30".to_owned(),
                "1|1|unix|/s|grpc|e30".to_owned(),
            ),
            (
                "1|1|unix|/s|grpc|".to_owned(),
                "1|1|unix|/s|grpc|".to_owned(),
            ),
            (
                format!("1|1|unix|/s|grpc|{}", "!".repeat(40)),
                format!("1|1|unix|/s|grpc|{}", "!".repeat(40)),
            ),
            ("hello".to_owned(), "hello".to_owned()),
        ];
        for (line, want) in cases {
            assert_eq!(quote_line(&line), want, "{line:?}");
        }
        // The rest of a long line is still truncated.
        let long = format!("1|1|unix|/{}|grpc|{cert}", "d".repeat(400));
        assert!(quote_line(&long).ends_with('…'));
    }

    #[test]
    fn a_stderr_tail_that_rejects_the_cookie_names_the_cause() {
        let go = StderrTail(env::NOT_LAUNCHED_BY_HOST.to_owned());
        let goplug = StderrTail(env::cookie_mismatch("BASIC_PLUGIN"));
        let other = StderrTail("panicked at main.rs".to_owned());
        for tail in [&go, &goplug] {
            assert!(tail.cookie_rejected(), "{tail:?}");
            let text = tail.to_string();
            assert!(
                text.starts_with("; the plugin rejected the magic cookie (host and plugin handshake configs differ: check magic_cookie_key/value); plugin stderr:\n"),
                "{text}"
            );
        }
        assert!(!other.cookie_rejected());
        assert_eq!(other.to_string(), "; plugin stderr:\npanicked at main.rs");
        assert_eq!(StderrTail::default().to_string(), "");
    }

    #[test]
    fn a_log_line_on_stdout_names_the_fix() {
        let e = HandshakeError::StdoutLog {
            line: "2026-12-02T18:08:17Z  INFO starting".into(),
            following: None,
        };
        let text = e.to_string();
        assert!(
            text.starts_with("Unrecognized remote plugin message: \"2026-12-02T18:08:17Z  INFO starting\"\nThe plugin writes its logs to stdout"),
            "{text}"
        );
        assert!(text.contains("`tracing_subscriber::fmt()` writes to stdout by default"));
        assert!(text.contains("use `goplug::log::init()`, which writes to stderr"));
    }

    #[cfg(feature = "host")]
    #[test]
    fn a_log_line_quotes_the_handshake_that_followed() {
        let e = HandshakeError::StdoutLog {
            line: "INFO starting".into(),
            following: None,
        };
        let e = e.with_following(Some("1|1|unix|/s|grpc|".into()));
        assert!(
            e.to_string()
                .ends_with("; a handshake line followed: \"1|1|unix|/s|grpc|\"."),
            "{e}"
        );
    }

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
    }
}

//! The handshake: the one line a plugin prints on stdout, and version
//! negotiation. Pure code, no I/O: both sides and the tests use it.
//!
//! The line is `CORE|APP|NETWORK|ADDRESS|PROTOCOL|CERT[|MUX]`:
//!
//! | # | field | values |
//! |---|---|---|
//! | 1 | core protocol version | always `1` |
//! | 2 | app protocol version | the negotiated version |
//! | 3 | network | `unix` or `tcp` |
//! | 4 | address | a socket path, or `127.0.0.1:port` |
//! | 5 | protocol | `grpc` or `netrpc` (missing means `netrpc`) |
//! | 6 | server certificate | unpadded base64 DER for automatic mTLS, or empty |
//! | 7 | multiplexing | `true`, only when the host set `PLUGIN_MULTIPLEX_GRPC` |

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use super::handshake_error::{HandshakeError, quote, quote_line};
use super::stdout_log;

/// go-plugin's core protocol version. It has been 1 since go-plugin's first
/// release.
pub const CORE_PROTOCOL_VERSION: u32 = 1;

/// go-plugin ignores field 6 unless it is longer than this: the field once
/// carried a short base64 "extra config" that is now dead.
const CERT_FIELD_MIN_LEN: usize = 50;

/// What host and plugin must agree on before they talk: the default app
/// protocol version and the magic cookie.
///
/// The cookie is a UX guard, not a security measure: it stops a user from
/// running a plugin binary by hand.
///
/// ```
/// use goplug::HandshakeConfig;
/// const HANDSHAKE: HandshakeConfig = HandshakeConfig::new(1, "BASIC_PLUGIN", "hello");
/// assert_eq!(HANDSHAKE.magic_cookie_key, "BASIC_PLUGIN");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandshakeConfig {
    /// The app protocol version used for plugin sets given without a version.
    pub protocol_version: u32,
    /// The environment variable that carries the cookie.
    pub magic_cookie_key: Cow<'static, str>,
    /// The cookie's value.
    pub magic_cookie_value: Cow<'static, str>,
}

impl HandshakeConfig {
    /// A handshake config from static strings, usable in a `const`.
    pub const fn new(
        protocol_version: u32,
        magic_cookie_key: &'static str,
        magic_cookie_value: &'static str,
    ) -> Self {
        Self {
            protocol_version,
            magic_cookie_key: Cow::Borrowed(magic_cookie_key),
            magic_cookie_value: Cow::Borrowed(magic_cookie_value),
        }
    }
}

/// The RPC protocol spoken after the handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Protocol {
    /// gRPC over HTTP/2.
    Grpc,
    /// Go's net/rpc with gob encoding over yamux.
    NetRpc,
}

impl Protocol {
    /// The name used in the handshake line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::NetRpc => "netrpc",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the plugin listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PluginAddress {
    /// A Unix domain socket at an absolute path.
    Unix(PathBuf),
    /// A TCP socket on a loopback address.
    Tcp(SocketAddr),
}

impl PluginAddress {
    /// The network name of the handshake line (`unix` or `tcp`).
    pub const fn network(&self) -> &'static str {
        match self {
            Self::Unix(_) => "unix",
            Self::Tcp(_) => "tcp",
        }
    }

    /// The address as the handshake line spells it.
    pub fn address_string(&self) -> String {
        match self {
            Self::Unix(path) => path.display().to_string(),
            Self::Tcp(addr) => addr.to_string(),
        }
    }
}

impl fmt::Display for PluginAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.network(), self.address_string())
    }
}

/// A parsed handshake line.
///
/// [`HandshakeLine::parse`] checks only what the line itself says; whether the
/// host accepts the version and protocol is [`HandshakeLine::check`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandshakeLine {
    /// The core protocol version (always [`CORE_PROTOCOL_VERSION`] once parsed).
    pub core_version: u32,
    /// The negotiated app protocol version.
    pub app_version: u32,
    /// Where the plugin listens.
    pub address: PluginAddress,
    /// The RPC protocol.
    pub protocol: Protocol,
    /// Field 6: the plugin's certificate (unpadded base64 DER) when present.
    pub server_cert: Option<String>,
    /// Field 7: whether the plugin multiplexes its broker, when present.
    pub multiplex: Option<String>,
}

impl HandshakeLine {
    /// The line a plugin prints (without the newline).
    pub fn new(app_version: u32, address: PluginAddress, protocol: Protocol) -> Self {
        Self {
            core_version: CORE_PROTOCOL_VERSION,
            app_version,
            address,
            protocol,
            server_cert: None,
            multiplex: None,
        }
    }

    /// Parses a line as a go-plugin host does: trim surrounding whitespace
    /// (so CRLF is fine), split on `|`, no per-field trimming.
    ///
    /// # Errors
    ///
    /// A [`HandshakeError`] naming the first field that is wrong.
    pub fn parse(raw: &str) -> Result<Self, HandshakeError> {
        let line = raw.trim();
        // Before the control-character check: coloured logs have escapes.
        if stdout_log::looks_like_log(line) {
            return Err(HandshakeError::StdoutLog {
                line: quote(&stdout_log::strip_ansi(line)),
                following: None,
            });
        }
        if line.chars().any(|c| c.is_control()) {
            return Err(HandshakeError::NotText {
                line: quote_line(line),
            });
        }
        if !line.contains('|') {
            return Err(HandshakeError::StdoutNoise {
                line: quote_line(line),
                following: None,
            });
        }
        let parts: Vec<&str> = line.split('|').collect();
        if parts.len() < 4 {
            return Err(HandshakeError::TooFewFields {
                line: quote_line(line),
                fields: parts.len(),
            });
        }
        if parts.len() > 7 {
            return Err(HandshakeError::TooManyFields {
                line: quote_line(line),
                fields: parts.len(),
            });
        }

        let core: u64 = parts[0]
            .parse()
            .map_err(|_| HandshakeError::InvalidCoreVersion {
                value: quote(parts[0]),
                line: quote_line(line),
            })?;
        if core != u64::from(CORE_PROTOCOL_VERSION) {
            return Err(HandshakeError::CoreVersionMismatch {
                plugin: core,
                line: quote_line(line),
            });
        }
        let app_version: u32 = parts[1]
            .parse()
            .map_err(|_| HandshakeError::InvalidAppVersion {
                value: quote(parts[1]),
                line: quote_line(line),
            })?;

        let address = parse_address(parts[2], parts[3], line)?;

        // go-plugin: a missing 5th field means net/rpc, an empty one is an error.
        let protocol = match parts.get(4) {
            None => Protocol::NetRpc,
            Some(&"grpc") => Protocol::Grpc,
            Some(&"netrpc") => Protocol::NetRpc,
            Some(other) => {
                return Err(HandshakeError::UnknownProtocol {
                    protocol: quote(other),
                    line: quote_line(line),
                });
            }
        };
        let server_cert = parts
            .get(5)
            .filter(|cert| cert.len() > CERT_FIELD_MIN_LEN)
            .map(|cert| (*cert).to_owned());
        let multiplex = parts.get(6).map(|mux| (*mux).to_owned());

        Ok(Self {
            core_version: CORE_PROTOCOL_VERSION,
            app_version,
            address,
            protocol,
            server_cert,
            multiplex,
        })
    }

    /// Checks the line against what the host offered and allows.
    ///
    /// # Errors
    ///
    /// [`HandshakeError::AppVersionMismatch`] when the plugin chose a version
    /// the host did not offer, [`HandshakeError::ProtocolNotAllowed`] when the
    /// protocol is not allowed, [`HandshakeError::UnexpectedCertificate`] when
    /// the plugin sent a certificate the host did not ask for.
    pub fn check(
        &self,
        offered_versions: &[u32],
        allowed_protocols: &[Protocol],
        expects_cert: bool,
    ) -> Result<(), HandshakeError> {
        if !offered_versions.contains(&self.app_version) {
            return Err(HandshakeError::AppVersionMismatch {
                plugin: self.app_version,
                host: offered_versions.to_vec(),
                line: quote_line(&self.to_string()),
                stderr: Default::default(),
            });
        }
        if !allowed_protocols.contains(&self.protocol) {
            return Err(HandshakeError::ProtocolNotAllowed {
                protocol: self.protocol,
                allowed: allowed_protocols.to_vec(),
                line: quote_line(&self.to_string()),
            });
        }
        match (&self.server_cert, expects_cert) {
            (Some(_), false) => Err(HandshakeError::UnexpectedCertificate {
                line: quote_line(&self.to_string()),
            }),
            (None, true) => Err(HandshakeError::MissingCertificate {
                line: quote_line(&self.to_string()),
            }),
            _ => Ok(()),
        }
    }
}

impl HandshakeLine {
    /// A host that asked for a multiplexed broker (`PLUGIN_MULTIPLEX_GRPC`)
    /// accepts only a 7th field that Go parses as true, as go-plugin's host.
    ///
    /// # Errors
    ///
    /// [`HandshakeError::MultiplexMissing`], [`HandshakeError::InvalidMultiplex`],
    /// [`HandshakeError::MultiplexRefused`], with go-plugin's texts.
    pub fn check_multiplex(&self) -> Result<(), HandshakeError> {
        let line = || quote_line(&self.to_string());
        let Some(field) = &self.multiplex else {
            return Err(HandshakeError::MultiplexMissing { line: line() });
        };
        match parse_go_bool(field) {
            Some(true) => Ok(()),
            Some(false) => Err(HandshakeError::MultiplexRefused { line: line() }),
            None => Err(HandshakeError::InvalidMultiplex {
                value: field.clone(),
                line: line(),
            }),
        }
    }
}

/// Go's `strconv.ParseBool`: `1 t T TRUE true True` and
/// `0 f F FALSE false False`; anything else is not a boolean.
pub fn parse_go_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

impl fmt::Display for HandshakeLine {
    /// The line as a go-plugin plugin prints it: field 6 always present
    /// (possibly empty), field 7 only when set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}|{}|{}|{}|{}|{}",
            self.core_version,
            self.app_version,
            self.address.network(),
            self.address.address_string(),
            self.protocol,
            self.server_cert.as_deref().unwrap_or(""),
        )?;
        if let Some(mux) = &self.multiplex {
            write!(f, "|{mux}")?;
        }
        Ok(())
    }
}

fn parse_address(
    network: &str,
    address: &str,
    line: &str,
) -> Result<PluginAddress, HandshakeError> {
    let invalid = |reason| HandshakeError::InvalidAddress {
        address: quote(address),
        reason,
        line: quote_line(line),
    };
    match network {
        "unix" => {
            if address.is_empty() {
                return Err(invalid("the socket path is empty"));
            }
            let path = PathBuf::from(address);
            // go-plugin would resolve a relative path against the host's cwd,
            // which is not necessarily the plugin's; refuse it.
            if !path.is_absolute() {
                return Err(invalid("the socket path is not absolute"));
            }
            Ok(PluginAddress::Unix(path))
        }
        "tcp" => {
            let addr = parse_tcp(address).ok_or_else(|| invalid("not a host:port address"))?;
            // go-plugin supports local networks only; a remote address in a
            // handshake is a misconfiguration or an attack.
            if !addr.ip().is_loopback() {
                return Err(invalid("not a loopback address"));
            }
            Ok(PluginAddress::Tcp(addr))
        }
        other => Err(HandshakeError::UnknownNetwork {
            network: quote(other),
            line: quote_line(line),
        }),
    }
}

/// Accepts what Go's `net.ResolveTCPAddr` accepts for a local plugin:
/// `ip:port`, `[v6]:port`, `localhost:port` and `:port`.
fn parse_tcp(address: &str) -> Option<SocketAddr> {
    if let Ok(addr) = address.parse::<SocketAddr>() {
        return Some(addr);
    }
    let (host, port) = address.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    match host {
        "" | "localhost" => Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)),
        _ => None,
    }
}

/// The value of `PLUGIN_PROTOCOL_VERSIONS` a host sends: its versions,
/// ascending, comma-separated. (go-plugin sends them in random map order.)
pub fn format_versions(versions: &[u32]) -> String {
    let mut sorted = versions.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    sorted
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The plugin side of version negotiation, as go-plugin does it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// The version the plugin serves and announces.
    pub version: u32,
    /// Whether the host offered it. If not, the plugin announces its lowest
    /// version and the host reports the mismatch.
    pub matched: bool,
    /// Entries of the host's list that were not numbers (skipped).
    pub invalid: Vec<String>,
}

/// Picks the highest plugin version the host offered, or else the plugin's
/// lowest. `host_offer` is the raw `PLUGIN_PROTOCOL_VERSIONS` value; `None` or
/// empty means a legacy host that offers nothing.
///
/// Returns `None` only when the plugin has no versions at all.
pub fn negotiate(host_offer: Option<&str>, plugin_versions: &[u32]) -> Option<Negotiated> {
    let lowest = *plugin_versions.iter().min()?;
    let mut offered = Vec::new();
    let mut invalid = Vec::new();
    for entry in host_offer.unwrap_or("").split(',') {
        if entry.is_empty() {
            continue;
        }
        match entry.parse::<u32>() {
            Ok(version) => offered.push(version),
            Err(_) => invalid.push(entry.to_owned()),
        }
    }
    let best = plugin_versions
        .iter()
        .copied()
        .filter(|v| offered.contains(v))
        .max();
    Some(Negotiated {
        version: best.unwrap_or(lowest),
        matched: best.is_some(),
        invalid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiplex_field_is_checked_as_go_hosts_do() {
        let base = "1|1|unix|/tmp/p|grpc|";
        let cases: &[(&str, Option<&str>)] = &[
            ("|true", None),
            ("|1", None),
            ("|True", None),
            (
                "",
                Some("update the github.com/hashicorp/go-plugin dependency"),
            ),
            ("|false", Some("plugin does not support the feature (line")),
            ("|0", Some("plugin does not support the feature (line")),
            ("|yes", Some("error parsing \"yes\" as a boolean")),
            ("|", Some("error parsing \"\" as a boolean")),
        ];
        for (tail, expected) in cases {
            let line = HandshakeLine::parse(&format!("{base}{tail}")).unwrap();
            match (line.check_multiplex(), expected) {
                (Ok(()), None) => {}
                (Err(e), Some(needle)) => {
                    let text = e.to_string();
                    assert!(
                        text.starts_with("client requested gRPC broker multiplexing")
                            || text.starts_with("error parsing"),
                        "{tail:?}: {text}"
                    );
                    assert!(text.contains(needle), "{tail:?}: {text}");
                }
                (other, _) => panic!("{tail:?}: {other:?}"),
            }
        }
        assert_eq!(parse_go_bool("TRUE"), Some(true));
        assert_eq!(parse_go_bool("tRuE"), None);
        assert_eq!(parse_go_bool("F"), Some(false));
    }

    fn unix(path: &str) -> PluginAddress {
        PluginAddress::Unix(PathBuf::from(path))
    }

    #[test]
    fn parses_valid_lines() {
        let cert = "A".repeat(60);
        let cases: Vec<(String, HandshakeLine)> = vec![
            (
                "1|1|unix|/tmp/plugin123|grpc|".into(),
                HandshakeLine::new(1, unix("/tmp/plugin123"), Protocol::Grpc),
            ),
            (
                "1|3|unix|/tmp/p|grpc|\r\n".into(),
                HandshakeLine::new(3, unix("/tmp/p"), Protocol::Grpc),
            ),
            (
                "  1|1|tcp|127.0.0.1:1234|grpc  ".into(),
                HandshakeLine::new(
                    1,
                    PluginAddress::Tcp("127.0.0.1:1234".parse().unwrap()),
                    Protocol::Grpc,
                ),
            ),
            // Python's example prints five fields.
            (
                "1|1|tcp|127.0.0.1:1234|grpc".into(),
                HandshakeLine::new(
                    1,
                    PluginAddress::Tcp("127.0.0.1:1234".parse().unwrap()),
                    Protocol::Grpc,
                ),
            ),
            // Four fields: net/rpc.
            (
                "1|2|tcp|:1234".into(),
                HandshakeLine::new(
                    2,
                    PluginAddress::Tcp("127.0.0.1:1234".parse().unwrap()),
                    Protocol::NetRpc,
                ),
            ),
            (
                "1|1|tcp|[::1]:99|netrpc|".into(),
                HandshakeLine::new(
                    1,
                    PluginAddress::Tcp("[::1]:99".parse().unwrap()),
                    Protocol::NetRpc,
                ),
            ),
            // A short field 6 is go-plugin's dead "extra config": ignored.
            (
                "1|1|unix|/s|grpc|e30".into(),
                HandshakeLine::new(1, unix("/s"), Protocol::Grpc),
            ),
            (
                format!("1|1|unix|/s|grpc|{cert}"),
                HandshakeLine {
                    server_cert: Some(cert),
                    ..HandshakeLine::new(1, unix("/s"), Protocol::Grpc)
                },
            ),
            (
                "1|1|unix|/s|grpc||true".into(),
                HandshakeLine {
                    multiplex: Some("true".into()),
                    ..HandshakeLine::new(1, unix("/s"), Protocol::Grpc)
                },
            ),
        ];
        for (line, want) in cases {
            assert_eq!(
                HandshakeLine::parse(&line).as_ref(),
                Ok(&want),
                "line {line:?}"
            );
        }
    }

    type ErrorCheck = fn(&HandshakeError) -> bool;
    /// Host offer, plugin versions, chosen version, matched, invalid entries.
    type NegotiationCase = (Option<&'static str>, Vec<u32>, u32, bool, Vec<&'static str>);

    #[test]
    fn rejects_malformed_lines_with_distinct_errors() {
        use HandshakeError as E;
        let cases: Vec<(&str, ErrorCheck)> = vec![
            ("", |e| matches!(e, E::StdoutNoise { .. })),
            ("hello", |e| matches!(e, E::StdoutNoise { .. })),
            ("1|1|tcp", |e| {
                matches!(e, E::TooFewFields { fields: 3, .. })
            }),
            ("1|1|unix|/s|grpc||true|x", |e| {
                matches!(e, E::TooManyFields { fields: 8, .. })
            }),
            ("x|1|unix|/p|grpc", |e| {
                matches!(e, E::InvalidCoreVersion { .. })
            }),
            ("2|1|unix|/p|grpc", |e| {
                matches!(e, E::CoreVersionMismatch { plugin: 2, .. })
            }),
            ("1|v1|unix|/p|grpc", |e| {
                matches!(e, E::InvalidAppVersion { .. })
            }),
            ("1|-1|unix|/p|grpc", |e| {
                matches!(e, E::InvalidAppVersion { .. })
            }),
            ("1|1|udp|127.0.0.1:1|grpc", |e| {
                matches!(e, E::UnknownNetwork { .. })
            }),
            ("1|1|tcp4|127.0.0.1:1|grpc", |e| {
                matches!(e, E::UnknownNetwork { .. })
            }),
            ("1|1|tcp|127.0.0.1:notaport|grpc", |e| {
                matches!(e, E::InvalidAddress { .. })
            }),
            ("1|1|tcp|10.1.2.3:1234|grpc", |e| {
                matches!(
                    e,
                    E::InvalidAddress {
                        reason: "not a loopback address",
                        ..
                    }
                )
            }),
            ("1|1|unix|relative/sock|grpc", |e| {
                matches!(e, E::InvalidAddress { .. })
            }),
            ("1|1|unix||grpc", |e| matches!(e, E::InvalidAddress { .. })),
            ("1|1|unix|/s|", |e| matches!(e, E::UnknownProtocol { .. })),
            ("1|1|unix|/s|http", |e| {
                matches!(e, E::UnknownProtocol { .. })
            }),
            ("1|1|unix|/s\0|grpc", |e| matches!(e, E::NotText { .. })),
            // Coloured logs are logs, not "not printable UTF-8".
            (
                "\x1b[2m2026-12-02T18:08:17Z\x1b[0m \x1b[32m INFO\x1b[0m hi",
                |e| matches!(e, E::StdoutLog { line, .. } if line == "2026-12-02T18:08:17Z  INFO hi"),
            ),
            ("[INFO]  plugin: starting", |e| {
                matches!(e, E::StdoutLog { .. })
            }),
        ];
        for (line, is_expected) in cases {
            let err = HandshakeLine::parse(line).expect_err(line);
            assert!(is_expected(&err), "line {line:?} gave {err:?}");
        }
    }

    #[test]
    fn errors_quote_a_truncated_line() {
        let long = format!("1|1|udp|{}", "x".repeat(10_000));
        let err = HandshakeLine::parse(&long).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("udp"));
        assert!(text.len() < 1_000, "{} bytes", text.len());
    }

    #[test]
    fn formats_as_go_plugin_prints() {
        let line = HandshakeLine::new(3, unix("/tmp/plugin1"), Protocol::Grpc);
        assert_eq!(line.to_string(), "1|3|unix|/tmp/plugin1|grpc|");
        let mux = HandshakeLine {
            multiplex: Some("true".into()),
            ..line.clone()
        };
        assert_eq!(mux.to_string(), "1|3|unix|/tmp/plugin1|grpc||true");
        assert_eq!(HandshakeLine::parse(&line.to_string()), Ok(line));
    }

    #[test]
    fn host_checks_version_protocol_and_certificate() {
        let line = HandshakeLine::parse("1|2|unix|/s|grpc|").unwrap();
        assert_eq!(line.check(&[1, 2], &[Protocol::Grpc], false), Ok(()));
        assert!(matches!(
            line.check(&[3], &[Protocol::Grpc], false),
            Err(HandshakeError::AppVersionMismatch { plugin: 2, ref host, .. }) if host == &[3]
        ));
        assert!(matches!(
            line.check(&[2], &[Protocol::NetRpc], false),
            Err(HandshakeError::ProtocolNotAllowed {
                protocol: Protocol::Grpc,
                ..
            })
        ));
        let with_cert =
            HandshakeLine::parse(&format!("1|2|unix|/s|grpc|{}", "Q".repeat(80))).unwrap();
        assert!(matches!(
            with_cert.check(&[2], &[Protocol::Grpc], false),
            Err(HandshakeError::UnexpectedCertificate { .. })
        ));
        assert_eq!(with_cert.check(&[2], &[Protocol::Grpc], true), Ok(()));
        assert!(matches!(
            line.check(&[2], &[Protocol::Grpc], true),
            Err(HandshakeError::MissingCertificate { .. })
        ));
    }

    #[test]
    fn negotiation_matches_go_plugin() {
        let cases: Vec<NegotiationCase> = vec![
            (Some("1,2,3"), vec![2, 3], 3, true, vec![]),
            (Some("3,1"), vec![1, 2, 3], 3, true, vec![]),
            (Some("2"), vec![2, 3], 2, true, vec![]),
            // No common version: the plugin's lowest, and the host refuses it.
            (Some("5"), vec![2, 3], 2, false, vec![]),
            // Legacy host (no variable) or empty list.
            (None, vec![4, 1], 1, false, vec![]),
            (Some(""), vec![4, 1], 1, false, vec![]),
            // Invalid entries are skipped and reported.
            (Some("x,3, 2"), vec![2, 3], 3, true, vec!["x", " 2"]),
        ];
        for (offer, plugin, version, matched, invalid) in cases {
            let got = negotiate(offer, &plugin).unwrap();
            assert_eq!(
                got,
                Negotiated {
                    version,
                    matched,
                    invalid: invalid.into_iter().map(String::from).collect()
                },
                "offer {offer:?} plugin {plugin:?}"
            );
        }
        assert_eq!(negotiate(Some("1"), &[]), None);
        assert_eq!(format_versions(&[3, 1, 2, 3]), "1,2,3");
    }
}

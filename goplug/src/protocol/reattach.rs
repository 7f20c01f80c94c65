//! Reattach configs: how a host finds a plugin it did not launch.
//!
//! A plugin in debug mode ([`plugin::serve_debug`](crate::plugin::serve_debug)),
//! a plugin a previous host detached from
//! ([`Client::detach`](crate::host::Client::detach)), or a Go plugin served
//! with go-plugin's `ServeTestConfig` is described by a [`ReattachConfig`].
//! Its JSON form is the per-provider object of Terraform's
//! `TF_REATTACH_PROVIDERS`:
//!
//! ```json
//! {"Protocol":"grpc","ProtocolVersion":5,"Pid":1234,"Test":true,
//!  "Addr":{"Network":"unix","String":"/tmp/plugin123"}}
//! ```
//!
//! Parsing is pure and total: any input gives a config or a
//! [`ReattachError`] naming what was wrong (it converts into
//! [`Error::Reattach`](crate::Error::Reattach)).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::handshake::{PluginAddress, Protocol};

/// A reattach config that cannot be used: malformed JSON, an unknown
/// protocol or network, a relative socket path.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid reattach config: {reason}")]
pub struct ReattachError {
    /// What was wrong.
    pub reason: String,
}

type Result<T> = std::result::Result<T, ReattachError>;

/// Longest reattach JSON accepted; a real one is a few hundred bytes.
pub const MAX_REATTACH_JSON: usize = 64 * 1024;

/// Everything a host needs to attach to a running plugin: go-plugin's
/// `ReattachConfig`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReattachConfig {
    /// The plugin's protocol. go-plugin treats an empty one as net/rpc.
    pub protocol: Protocol,
    /// The app protocol version the plugin serves. go-plugin uses it only
    /// in test mode; goplug uses it whenever it is not 0.
    pub protocol_version: u32,
    /// Where the plugin listens.
    pub address: PluginAddress,
    /// The plugin's process id, watched for exit.
    pub pid: u32,
    /// Test (debug) mode: the host never stops or kills the plugin.
    pub test: bool,
}

impl ReattachConfig {
    /// A config for a plugin at `address` with process id `pid`.
    pub fn new(
        protocol: Protocol,
        protocol_version: u32,
        address: PluginAddress,
        pid: u32,
    ) -> Self {
        Self {
            protocol,
            protocol_version,
            address,
            pid,
            test: false,
        }
    }

    /// Marks the config as test (debug) mode.
    #[must_use]
    pub fn test(mut self, test: bool) -> Self {
        self.test = test;
        self
    }

    /// Parses the JSON object of one plugin.
    ///
    /// # Errors
    ///
    /// [`ReattachError`] naming the field or syntax that was wrong.
    pub fn from_json(json: &str) -> Result<Self> {
        if json.len() > MAX_REATTACH_JSON {
            return Err(reattach_error(format!(
                "the config is {} bytes, more than the {MAX_REATTACH_JSON} accepted",
                json.len()
            )));
        }
        let wire: WireConfig = serde_json::from_str(json.trim())
            .map_err(|e| reattach_error(format!("not a reattach config: {e}")))?;
        wire.try_into()
    }

    /// The JSON object of one plugin, as `TF_REATTACH_PROVIDERS` holds it.
    pub fn to_json(&self) -> String {
        // Serialising plain strings and numbers cannot fail.
        serde_json::to_string(&WireConfig::from(self)).unwrap_or_default()
    }

    /// Parses a whole `TF_REATTACH_PROVIDERS`-style map: plugin name to config.
    ///
    /// # Errors
    ///
    /// [`ReattachError`] naming the entry that was wrong.
    pub fn map_from_json(json: &str) -> Result<BTreeMap<String, Self>> {
        if json.len() > MAX_REATTACH_JSON {
            return Err(reattach_error(format!(
                "the map is {} bytes, more than the {MAX_REATTACH_JSON} accepted",
                json.len()
            )));
        }
        let wire: BTreeMap<String, WireConfig> = serde_json::from_str(json.trim())
            .map_err(|e| reattach_error(format!("not a map of reattach configs: {e}")))?;
        wire.into_iter()
            .map(|(name, config)| match Self::try_from(config) {
                Ok(config) => Ok((name, config)),
                Err(ReattachError { reason }) => Err(reattach_error(format!("{name}: {reason}"))),
            })
            .collect()
    }

    /// The JSON of a `TF_REATTACH_PROVIDERS`-style map.
    pub fn map_to_json<'a>(entries: impl IntoIterator<Item = (&'a str, &'a Self)>) -> String {
        let wire: BTreeMap<&str, WireConfig> = entries
            .into_iter()
            .map(|(name, config)| (name, WireConfig::from(config)))
            .collect();
        serde_json::to_string(&wire).unwrap_or_default()
    }
}

fn reattach_error(reason: String) -> ReattachError {
    ReattachError { reason }
}

/// The JSON shape, field names as Terraform and go-plugin spell them.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireConfig {
    #[serde(rename = "Protocol", default)]
    protocol: String,
    #[serde(rename = "ProtocolVersion", default)]
    protocol_version: u32,
    #[serde(rename = "Pid")]
    pid: u32,
    #[serde(rename = "Test", default)]
    test: bool,
    #[serde(rename = "Addr")]
    addr: WireAddr,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireAddr {
    #[serde(rename = "Network")]
    network: String,
    #[serde(rename = "String")]
    string: String,
}

impl From<&ReattachConfig> for WireConfig {
    fn from(config: &ReattachConfig) -> Self {
        Self {
            protocol: config.protocol.as_str().to_owned(),
            protocol_version: config.protocol_version,
            pid: config.pid,
            test: config.test,
            addr: WireAddr {
                network: config.address.network().to_owned(),
                string: config.address.address_string(),
            },
        }
    }
}

impl TryFrom<WireConfig> for ReattachConfig {
    type Error = ReattachError;

    fn try_from(wire: WireConfig) -> Result<Self> {
        let protocol = match wire.protocol.as_str() {
            "" | "netrpc" => Protocol::NetRpc,
            "grpc" => Protocol::Grpc,
            other => return Err(reattach_error(format!("unknown protocol {other:?}"))),
        };
        if wire.pid == 0 {
            return Err(reattach_error("pid 0 names no plugin process".to_owned()));
        }
        let address = match wire.addr.network.as_str() {
            "unix" if wire.addr.string.starts_with('/') => {
                PluginAddress::Unix(PathBuf::from(wire.addr.string))
            }
            "unix" => {
                return Err(reattach_error(format!(
                    "unix socket path {:?} is not absolute",
                    wire.addr.string
                )));
            }
            "tcp" => {
                PluginAddress::Tcp(wire.addr.string.parse::<SocketAddr>().map_err(|e| {
                    reattach_error(format!("tcp address {:?}: {e}", wire.addr.string))
                })?)
            }
            other => return Err(reattach_error(format!("unknown network {other:?}"))),
        };
        Ok(Self {
            protocol,
            protocol_version: wire.protocol_version,
            address,
            pid: wire.pid,
            test: wire.test,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_terraform_shaped_configs() {
        let cases: &[(&str, ReattachConfig)] = &[
            (
                r#"{"Protocol":"grpc","ProtocolVersion":5,"Pid":1234,"Test":true,"Addr":{"Network":"unix","String":"/tmp/plugin1"}}"#,
                ReattachConfig::new(
                    Protocol::Grpc,
                    5,
                    PluginAddress::Unix("/tmp/plugin1".into()),
                    1234,
                )
                .test(true),
            ),
            (
                // go-plugin: an empty protocol is net/rpc; Test defaults to false.
                r#" {"Protocol":"","Pid":7,"Addr":{"Network":"tcp","String":"127.0.0.1:10000"}}
"#,
                ReattachConfig::new(
                    Protocol::NetRpc,
                    0,
                    PluginAddress::Tcp("127.0.0.1:10000".parse().unwrap()),
                    7,
                ),
            ),
        ];
        for (json, expected) in cases {
            let parsed = ReattachConfig::from_json(json).unwrap();
            assert_eq!(&parsed, expected, "{json}");
            let again = ReattachConfig::from_json(&parsed.to_json()).unwrap();
            assert_eq!(&again, expected, "round trip of {json}");
        }
    }

    #[test]
    fn rejects_bad_configs_naming_the_fault() {
        let cases = [
            ("", "not a reattach config"),
            ("[]", "not a reattach config"),
            (r#"{"Pid":1}"#, "missing field `Addr`"),
            (
                r#"{"Pid":1,"Addr":{"Network":"udp","String":"x"}}"#,
                "unknown network \"udp\"",
            ),
            (
                r#"{"Pid":1,"Addr":{"Network":"unix","String":"rel/sock"}}"#,
                "not absolute",
            ),
            (
                r#"{"Pid":1,"Addr":{"Network":"tcp","String":"nohost"}}"#,
                "tcp address \"nohost\"",
            ),
            (
                r#"{"Protocol":"http","Pid":1,"Addr":{"Network":"unix","String":"/s"}}"#,
                "unknown protocol \"http\"",
            ),
            (
                r#"{"Pid":0,"Addr":{"Network":"unix","String":"/s"}}"#,
                "pid 0",
            ),
            (
                r#"{"Pid":-1,"Addr":{"Network":"unix","String":"/s"}}"#,
                "invalid value",
            ),
            (
                r#"{"Pid":1,"Extra":1,"Addr":{"Network":"unix","String":"/s"}}"#,
                "unknown field `Extra`",
            ),
        ];
        for (json, needle) in cases {
            let err = ReattachConfig::from_json(json).unwrap_err();
            let text = err.to_string();
            assert!(!err.reason.is_empty(), "{json}: {err:?}");
            assert!(text.contains(needle), "{json}: {text}");
        }
        let huge = " ".repeat(MAX_REATTACH_JSON + 1);
        assert!(ReattachConfig::from_json(&huge).is_err());
    }

    #[test]
    fn provider_maps_round_trip() {
        let a = ReattachConfig::new(Protocol::Grpc, 6, PluginAddress::Unix("/a".into()), 10);
        let b =
            ReattachConfig::new(Protocol::Grpc, 5, PluginAddress::Unix("/b".into()), 11).test(true);
        let json = ReattachConfig::map_to_json([
            ("registry.terraform.io/hashicorp/a", &a),
            ("registry.terraform.io/hashicorp/b", &b),
        ]);
        let parsed = ReattachConfig::map_from_json(&json).unwrap();
        assert_eq!(parsed["registry.terraform.io/hashicorp/a"], a);
        assert_eq!(parsed["registry.terraform.io/hashicorp/b"], b);
        let err = ReattachConfig::map_from_json(
            r#"{"x":{"Pid":0,"Addr":{"Network":"unix","String":"/s"}}}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("x: pid 0"), "{err}");
    }
}

//! Reattach tickets: what a later host process needs to take over a
//! running plugin, AutoMTLS keys included.
//!
//! go-plugin's `ReattachConfig` has no TLS material, so a Go host can only
//! reattach to a plugin it launched without AutoMTLS. A ticket carries the
//! host's AutoMTLS certificate and key and the plugin's certificate, so the
//! new host presents the identity the plugin pinned at launch, and the
//! plugin's socket directory, so the new host removes it when the plugin
//! goes. It is a secret: store it where only the host can read it (the
//! supervisor writes it with mode 0600).

use std::path::PathBuf;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::protocol::reattach::ReattachConfig;
use crate::transport::tls::{AutoCert, TlsVersion};

/// Longest ticket JSON accepted; a real one is a few kilobytes.
const MAX_TICKET_JSON: usize = 256 * 1024;

/// Everything a new host process needs to reattach to a running plugin:
/// its [`ReattachConfig`], the AutoMTLS keys of the launch, and its socket
/// directory. From [`Client::reattach_ticket`](super::Client::reattach_ticket);
/// used with [`ClientBuilder::reattach_ticket`](super::ClientBuilder::reattach_ticket).
#[derive(Clone)]
pub struct ReattachTicket {
    pub(super) config: ReattachConfig,
    pub(super) auto_mtls: Option<AutoMtlsKeys>,
    pub(super) socket_dir: Option<PathBuf>,
}

/// The AutoMTLS material of one launch, as DER.
#[derive(Clone)]
pub(super) struct AutoMtlsKeys {
    pub(super) host_cert: Vec<u8>,
    pub(super) host_key: Vec<u8>,
    pub(super) plugin_cert: Vec<u8>,
    pub(super) max_tls_version: TlsVersion,
}

impl AutoMtlsKeys {
    pub(super) fn new(own: &AutoCert, plugin_cert: &[u8], max_tls_version: TlsVersion) -> Self {
        Self {
            host_cert: own.cert.to_vec(),
            host_key: own.key_der().to_vec(),
            plugin_cert: plugin_cert.to_vec(),
            max_tls_version,
        }
    }
}

impl std::fmt::Debug for ReattachTicket {
    // Keys stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReattachTicket")
            .field("config", &self.config)
            .field("auto_mtls", &self.auto_mtls.is_some())
            .field("socket_dir", &self.socket_dir)
            .finish()
    }
}

/// The ticket's JSON form.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TicketJson {
    /// go-plugin's reattach config, as in `TF_REATTACH_PROVIDERS`.
    reattach: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    auto_mtls: Option<KeysJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    socket_dir: Option<PathBuf>,
}

/// Standard base64 of each DER.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysJson {
    host_cert: String,
    host_key: String,
    plugin_cert: String,
    /// The highest TLS version offered: `1.3` or `1.2`.
    max_tls: String,
}

impl ReattachTicket {
    /// The plugin's reattach config (without the keys).
    pub fn config(&self) -> &ReattachConfig {
        &self.config
    }

    /// Whether the ticket carries AutoMTLS keys.
    pub fn has_auto_mtls(&self) -> bool {
        self.auto_mtls.is_some()
    }

    /// The ticket as JSON. It holds a private key: keep it private.
    pub fn to_json(&self) -> String {
        let b64 = |der: &[u8]| base64::engine::general_purpose::STANDARD.encode(der);
        let reattach = serde_json::from_str(&self.config.to_json()).unwrap_or_default();
        let json = TicketJson {
            reattach,
            auto_mtls: self.auto_mtls.as_ref().map(|keys| KeysJson {
                host_cert: b64(&keys.host_cert),
                host_key: b64(&keys.host_key),
                plugin_cert: b64(&keys.plugin_cert),
                max_tls: match keys.max_tls_version {
                    TlsVersion::Tls12 => "1.2",
                    _ => "1.3",
                }
                .to_owned(),
            }),
            socket_dir: self.socket_dir.clone(),
        };
        serde_json::to_string(&json).unwrap_or_default()
    }

    /// Reads a ticket written by [`to_json`](Self::to_json).
    ///
    /// # Errors
    ///
    /// [`Error::Reattach`] naming what is malformed.
    pub fn from_json(json: &str) -> Result<Self> {
        let invalid = |reason: String| Error::Reattach {
            reason: format!("reattach ticket: {reason}"),
        };
        if json.len() > MAX_TICKET_JSON {
            return Err(invalid(format!(
                "{} bytes, more than the {MAX_TICKET_JSON} accepted",
                json.len()
            )));
        }
        let parsed: TicketJson =
            serde_json::from_str(json).map_err(|e| invalid(format!("not a ticket ({e})")))?;
        let config = ReattachConfig::from_json(&parsed.reattach.to_string())?;
        let der = |what: &str, text: &str| {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| invalid(format!("{what} is not base64 ({e})")))
        };
        let auto_mtls = match parsed.auto_mtls {
            None => None,
            Some(keys) => Some(AutoMtlsKeys {
                host_cert: der("host_cert", &keys.host_cert)?,
                host_key: der("host_key", &keys.host_key)?,
                plugin_cert: der("plugin_cert", &keys.plugin_cert)?,
                max_tls_version: match keys.max_tls.as_str() {
                    "1.3" => TlsVersion::Tls13,
                    "1.2" => TlsVersion::Tls12,
                    other => {
                        return Err(invalid(format!("max_tls {other:?} is neither 1.3 nor 1.2")));
                    }
                },
            }),
        };
        if let Some(dir) = &parsed.socket_dir
            && !dir.is_absolute()
        {
            return Err(invalid(format!(
                "socket_dir {} is not absolute",
                dir.display()
            )));
        }
        Ok(Self {
            config,
            auto_mtls,
            socket_dir: parsed.socket_dir,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{PluginAddress, Protocol};
    use crate::transport::tls::CertCurve;

    fn ticket(keys: bool) -> ReattachTicket {
        let own = AutoCert::generate(CertCurve::P256).expect("cert");
        ReattachTicket {
            config: ReattachConfig::new(
                Protocol::Grpc,
                3,
                PluginAddress::Unix("/tmp/goplug-x/plugin1".into()),
                42,
            ),
            auto_mtls: keys.then(|| AutoMtlsKeys::new(&own, &own.cert, TlsVersion::Tls13)),
            socket_dir: Some("/tmp/goplug-x".into()),
        }
    }

    #[test]
    fn tickets_round_trip_through_json() {
        for keys in [false, true] {
            let before = ticket(keys);
            let after = ReattachTicket::from_json(&before.to_json()).expect("parses");
            assert_eq!(after.config, before.config);
            assert_eq!(after.socket_dir, before.socket_dir);
            assert_eq!(after.has_auto_mtls(), keys);
            if let (Some(a), Some(b)) = (&after.auto_mtls, &before.auto_mtls) {
                assert_eq!(a.host_key, b.host_key);
                assert_eq!(a.plugin_cert, b.plugin_cert);
                assert_eq!(a.max_tls_version, b.max_tls_version);
            }
        }
    }

    #[test]
    fn bad_tickets_name_what_is_wrong() {
        let good = ticket(true).to_json();
        let cases = [
            ("{", "not a ticket"),
            (r#"{"reattach":{}}"#, "invalid reattach config"),
            (
                &good.replace("\"socket_dir\":\"/tmp", "\"socket_dir\":\"tmp"),
                "not absolute",
            ),
            (
                &good.replace("\"host_key\":\"", "\"host_key\":\"!"),
                "host_key is not base64",
            ),
            (&good.replace("\"reattach\"", "\"other\""), "not a ticket"),
        ];
        for (json, expected) in cases {
            let error = ReattachTicket::from_json(json).expect_err(json).to_string();
            assert!(error.contains(expected), "{json}: {error}");
        }
    }

    #[test]
    fn the_debug_form_hides_the_keys() {
        let shown = format!("{:?}", ticket(true));
        assert!(shown.contains("auto_mtls: true"), "{shown}");
        assert!(!shown.contains("host_key"), "{shown}");
    }
}

//! Which TLS a plugin serves with: a manual config, automatic mutual TLS,
//! or none.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::grpc::broker::BrokerTls;
use crate::protocol::env;
use crate::transport::dial::TlsConnect;
use crate::transport::tls::{self, CertCurve, TlsVersion};

/// What [`tls_setup`] decides.
#[derive(Default)]
pub(super) struct TlsSetup {
    /// The config the plugin's server serves with.
    pub(super) server: Option<Arc<rustls::ServerConfig>>,
    /// Field 6 of the handshake line: the AutoMTLS certificate.
    pub(super) handshake_cert: Option<String>,
    /// The TLS of brokered connections.
    pub(super) broker: Option<BrokerTls>,
}

/// A manual config, or AutoMTLS when the host sent `PLUGIN_CLIENT_CERT`.
/// (With a manual server config the plugin has no client config to dial
/// the host's brokered servers with, so those stay plaintext, on the
/// host's private socket.)
pub(super) fn tls_setup(
    manual: Option<Arc<rustls::ServerConfig>>,
    max_version: TlsVersion,
    curve: CertCurve,
) -> Result<TlsSetup> {
    if manual.is_some() {
        return Ok(TlsSetup {
            server: manual,
            ..TlsSetup::default()
        });
    }
    let Some(host_pem) = std::env::var(env::PLUGIN_CLIENT_CERT)
        .ok()
        .filter(|pem| !pem.is_empty())
    else {
        return Ok(TlsSetup::default());
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
                    error: Some(Box::new(e)),
                },
            )?,
            negotiated: Arc::default(),
        },
    };
    Ok(TlsSetup {
        server: Some(mutual.server),
        handshake_cert: Some(own.handshake_field()),
        broker: Some(broker_tls),
    })
}

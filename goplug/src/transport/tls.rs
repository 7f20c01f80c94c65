//! TLS: go-plugin's automatic mutual TLS (AutoMTLS) and manual TLS.
//!
//! With AutoMTLS each side makes a throwaway self-signed certificate at
//! launch: the host passes its certificate (PEM) to the plugin in
//! `PLUGIN_CLIENT_CERT`; the plugin answers with its own (unpadded base64
//! DER) in field 6 of the handshake line. Each side then trusts exactly the
//! other's certificate, as server and as client, which is what brokered
//! connections in either direction need.
//!
//! Two things differ from a browser-style TLS setup, both required by Go
//! peers: go-plugin's certificates are CAs used as their own leaf (so a
//! WebPKI verifier refuses them; goplug pins the exact certificate instead),
//! and grpc-go ≥ 1.67 refuses TLS without ALPN `h2`.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
#[cfg(feature = "plugin")]
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme,
};

use crate::error::{Error, Result};
#[cfg(feature = "host")]
use crate::protocol::{HandshakeError, quote};

/// The server name both sides use, as go-plugin's certificates carry it.
pub(crate) const SERVER_NAME: &str = "localhost";

/// A TLS protocol version: what a connection negotiated, or the highest a
/// side offers (`max_tls_version`; go-plugin's sides offer 1.2 and 1.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    #[default]
    Tls13,
}

impl TlsVersion {
    pub(crate) fn from_rustls(version: rustls::ProtocolVersion) -> Option<Self> {
        match version {
            rustls::ProtocolVersion::TLSv1_2 => Some(Self::Tls12),
            rustls::ProtocolVersion::TLSv1_3 => Some(Self::Tls13),
            _ => None,
        }
    }

    fn versions(self) -> &'static [&'static rustls::SupportedProtocolVersion] {
        static TLS12_ONLY: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
        static TLS13_AND_12: [&rustls::SupportedProtocolVersion; 2] =
            [&rustls::version::TLS13, &rustls::version::TLS12];
        match self {
            Self::Tls12 => &TLS12_ONLY,
            Self::Tls13 => &TLS13_AND_12,
        }
    }
}

/// Which elliptic curve AutoMTLS certificates of this side use.
///
/// go-plugin uses P-521. Go peers accept any curve in a pinned certificate,
/// and a P-256 key is generated and used several times faster, so goplug
/// defaults to P-256; the peer's P-521 signatures are verified either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertCurve {
    /// ECDSA P-256 with SHA-256 (goplug's default).
    #[default]
    P256,
    /// ECDSA P-521 with SHA-512, as go-plugin's own certificates.
    P521,
}

pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A certificate and key made for one launch, following go-plugin's profile
/// (`mtls.go`): CN and SAN `localhost`, O `HashiCorp`, CA, client and server
/// use, valid from 30 s ago for about 30 years.
pub(crate) struct AutoCert {
    pub(crate) cert: CertificateDer<'static>,
    pub(crate) pem: String,
    key: PrivatePkcs8KeyDer<'static>,
}

impl fmt::Debug for AutoCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AutoCert").finish_non_exhaustive()
    }
}

impl AutoCert {
    pub(crate) fn generate(curve: CertCurve) -> Result<Self> {
        use rcgen::{
            BasicConstraints, CertificateParams, DistinguishedName as Dn, DnType,
            ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SerialNumber,
        };
        let failed = |e: rcgen::Error| Error::Tls {
            context: "generating the AutoMTLS certificate",
            reason: e.to_string(),
            error: Some(Box::new(e)),
        };
        let algorithm = match curve {
            CertCurve::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            CertCurve::P521 => &rcgen::PKCS_ECDSA_P521_SHA512,
        };
        let key = KeyPair::generate_for(algorithm).map_err(failed)?;
        let mut params = CertificateParams::new(vec![SERVER_NAME.to_owned()]).map_err(failed)?;
        let mut name = Dn::new();
        name.push(DnType::CommonName, SERVER_NAME);
        name.push(DnType::OrganizationName, "HashiCorp");
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
            KeyUsagePurpose::KeyAgreement,
            KeyUsagePurpose::KeyCertSign,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ClientAuth,
            ExtendedKeyUsagePurpose::ServerAuth,
        ];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::seconds(30);
        params.not_after = now + time::Duration::hours(262_980);
        let mut serial = [0u8; 16];
        provider()
            .secure_random
            .fill(&mut serial)
            .map_err(|_| Error::Tls {
                context: "generating the AutoMTLS certificate",
                reason: "no random serial number".to_owned(),
                error: None,
            })?;
        serial[0] &= 0x7f; // a positive INTEGER
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        let cert = params.self_signed(&key).map_err(failed)?;
        Ok(Self {
            pem: cert.pem(),
            cert: cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        })
    }

    /// Field 6 of the handshake line: unpadded standard base64 of the DER
    /// (Go's `base64.RawStdEncoding`).
    #[cfg(feature = "plugin")]
    pub(crate) fn handshake_field(&self) -> String {
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(self.cert.as_ref())
    }

    fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }

    /// The key as PKCS#8 DER, for a host that persists its AutoMTLS
    /// material to reattach later.
    #[cfg(feature = "host")]
    pub(crate) fn key_der(&self) -> &[u8] {
        self.key.secret_pkcs8_der()
    }

    /// A certificate and key persisted earlier.
    #[cfg(feature = "host")]
    pub(crate) fn from_der(cert: Vec<u8>, key: Vec<u8>) -> Result<Self> {
        let cert = CertificateDer::from(cert);
        rustls::server::ParsedCertificate::try_from(&cert).map_err(|e| Error::Tls {
            context: "reading persisted AutoMTLS material",
            reason: format!("not an X.509 certificate ({e})"),
            error: Some(Box::new(e)),
        })?;
        let pem = pem_of(&cert);
        Ok(Self {
            cert,
            pem,
            key: PrivatePkcs8KeyDer::from(key),
        })
    }
}

/// PEM text of a DER certificate.
#[cfg(feature = "host")]
fn pem_of(cert: &CertificateDer<'_>) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

/// Generates a certificate and key exactly as AutoMTLS does for each
/// launch, and returns the certificate as PEM (what a host sends in
/// `PLUGIN_CLIENT_CERT`). For tools and benchmarks.
///
/// # Errors
///
/// [`Error::Tls`] when key generation fails.
pub fn generate_auto_mtls_cert(curve: CertCurve) -> Result<String> {
    AutoCert::generate(curve).map(|cert| cert.pem)
}

/// Decodes field 6 of a handshake line into the plugin's certificate.
#[cfg(feature = "host")]
pub(crate) fn decode_handshake_cert(
    field: &str,
) -> Result<CertificateDer<'static>, HandshakeError> {
    let der = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(field)
        .map_err(|e| HandshakeError::InvalidCertificate {
            reason: format!("not unpadded base64 ({e})"),
            field: quote(field),
        })?;
    let cert = CertificateDer::from(der);
    rustls::server::ParsedCertificate::try_from(&cert).map_err(|e| {
        HandshakeError::InvalidCertificate {
            reason: format!("not an X.509 certificate ({e})"),
            field: quote(field),
        }
    })?;
    Ok(cert)
}

/// Parses the host's `PLUGIN_CLIENT_CERT`.
#[cfg(feature = "plugin")]
pub(crate) fn parse_pem_cert(pem: &str) -> Result<CertificateDer<'static>> {
    let cert = CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| Error::Tls {
        context: "reading PLUGIN_CLIENT_CERT",
        reason: format!("not a PEM certificate ({e})"),
        error: Some(Box::new(e)),
    })?;
    rustls::server::ParsedCertificate::try_from(&cert).map_err(|e| Error::Tls {
        context: "reading PLUGIN_CLIENT_CERT",
        reason: format!("not an X.509 certificate ({e})"),
        error: Some(Box::new(e)),
    })?;
    Ok(cert)
}

/// Client and server configs of one side of an AutoMTLS pair: the side's
/// own certificate, and the peer's pinned as the only trusted one, for
/// connections in both directions (the broker dials both ways).
#[derive(Clone, Debug)]
pub(crate) struct MutualTls {
    pub(crate) client: Arc<ClientConfig>,
    pub(crate) server: Arc<ServerConfig>,
}

impl MutualTls {
    pub(crate) fn new(
        own: &AutoCert,
        peer: CertificateDer<'static>,
        max_version: TlsVersion,
    ) -> Result<Self> {
        let provider = provider();
        let pinned = Arc::new(Pinned {
            cert: peer,
            algorithms: provider.signature_verification_algorithms,
        });
        let config_error = |e: rustls::Error| Error::Tls {
            context: "building the TLS configuration",
            reason: e.to_string(),
            error: Some(Box::new(e)),
        };
        let mut client = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(max_version.versions())
            .map_err(config_error)?
            .dangerous()
            .with_custom_certificate_verifier(pinned.clone())
            .with_client_auth_cert(vec![own.cert.clone()], own.key())
            .map_err(config_error)?;
        client.alpn_protocols = vec![b"h2".to_vec()];
        let mut server = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(max_version.versions())
            .map_err(config_error)?
            .with_client_cert_verifier(pinned)
            .with_single_cert(vec![own.cert.clone()], own.key())
            .map_err(config_error)?;
        server.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Self {
            client: Arc::new(client),
            server: Arc::new(server),
        })
    }
}

/// Makes sure a user's config offers ALPN `h2`, without which grpc-go
/// (≥ 1.67) refuses the connection.
pub(crate) fn with_h2<T: AlpnConfig>(mut config: T) -> T {
    if !config.alpn().iter().any(|p| p == b"h2") {
        config.alpn().push(b"h2".to_vec());
    }
    config
}

pub(crate) trait AlpnConfig {
    fn alpn(&mut self) -> &mut Vec<Vec<u8>>;
}

impl AlpnConfig for ClientConfig {
    fn alpn(&mut self) -> &mut Vec<Vec<u8>> {
        &mut self.alpn_protocols
    }
}

impl AlpnConfig for ServerConfig {
    fn alpn(&mut self) -> &mut Vec<Vec<u8>> {
        &mut self.alpn_protocols
    }
}

/// Trusts exactly one certificate, byte for byte, as server or client.
/// Signatures are still checked, with aws-lc-rs (P-521 included).
#[derive(Debug)]
struct Pinned {
    cert: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl Pinned {
    fn check(&self, presented: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        if presented.as_ref() == self.cert.as_ref() {
            Ok(())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }
}

/// The handshake-signature methods both verifier traits require, checked
/// with the provider's algorithms (aws-lc-rs: P-521 included).
macro_rules! signature_checks {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.algorithms.supported_schemes()
        }
    };
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity)
            .map(|()| ServerCertVerified::assertion())
    }

    signature_checks!();
}

impl ClientCertVerifier for Pinned {
    /// Empty: Go clients then send their certificate whatever its issuer.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity)
            .map(|()| ClientCertVerified::assertion())
    }

    signature_checks!();
}

#[cfg(all(test, feature = "host", feature = "plugin"))]
mod tests {
    use super::*;

    #[test]
    fn certificates_follow_go_plugins_profile_and_round_trip() {
        for curve in [CertCurve::P256, CertCurve::P521] {
            let cert = AutoCert::generate(curve).unwrap();
            assert!(cert.pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
            assert_eq!(parse_pem_cert(&cert.pem).unwrap(), cert.cert);
            let field = cert.handshake_field();
            assert!(!field.contains('='), "Go's RawStdEncoding has no padding");
            assert!(field.len() > 50, "go-plugin ignores field 6 up to 50 bytes");
            assert_eq!(decode_handshake_cert(&field).unwrap(), cert.cert);
        }
    }

    #[test]
    fn bad_handshake_certificates_are_typed_errors() {
        let cert = AutoCert::generate(CertCurve::P256).unwrap();
        let padded = base64::engine::general_purpose::STANDARD.encode(cert.cert.as_ref());
        let cases = [
            "!!!not base64!!!".to_owned(),
            base64::engine::general_purpose::STANDARD_NO_PAD
                .encode(b"valid base64, not a certificate at all"),
        ];
        for field in cases {
            assert!(
                matches!(
                    decode_handshake_cert(&field),
                    Err(HandshakeError::InvalidCertificate { .. })
                ),
                "{field}"
            );
        }
        if padded.ends_with('=') {
            assert!(
                decode_handshake_cert(&padded).is_err(),
                "padding is an error, as in Go"
            );
        }
        assert!(parse_pem_cert("not pem").is_err());
    }

    #[test]
    fn pinning_accepts_only_the_exact_certificate() {
        let a = AutoCert::generate(CertCurve::P256).unwrap();
        let b = AutoCert::generate(CertCurve::P256).unwrap();
        let pinned = Pinned {
            cert: a.cert.clone(),
            algorithms: provider().signature_verification_algorithms,
        };
        assert!(pinned.check(&a.cert).is_ok());
        assert!(pinned.check(&b.cert).is_err());
    }
}

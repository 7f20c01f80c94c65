//! Automatic mutual TLS and manual TLS between the Rust host and the Rust
//! plugin, and every bad input: each gives a typed error within the start
//! timeout, with the plugin killed and nothing left behind.

use std::path::Path;
use std::time::{Duration, Instant};

use goplug::host::{Channel, Client};
use goplug::tls::{CertCurve, TlsVersion};
use goplug::{Error, HandshakeError};
use goplug_example_kv::{pb, pb::kv_client::KvClient};
use goplug_test::pki::{self, TestPki};
use goplug_test::{FAKE, Harness, read_pid};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BOUND: Duration = Duration::from_secs(10);

async fn put_get(client: &Client) {
    let mut kv: KvClient<Channel> = client.dispense_named("kv").unwrap();
    kv.put(pb::PutRequest {
        key: "k".into(),
        value: b"v".to_vec(),
    })
    .await
    .unwrap();
    let got = kv.get(pb::GetRequest { key: "k".into() }).await.unwrap();
    assert!(
        got.into_inner()
            .value
            .starts_with(b"v\n\nWritten from plugin")
    );
}

#[tokio::test]
async fn auto_mtls_over_tls_1_3_and_1_2() {
    type Case = (
        &'static str,
        Option<TlsVersion>,
        &'static [(&'static str, &'static str)],
        CertCurve,
        TlsVersion,
    );
    let cases: [Case; 4] = [
        ("default", None, &[], CertCurve::P256, TlsVersion::Tls13),
        (
            "host limits to 1.2",
            Some(TlsVersion::Tls12),
            &[],
            CertCurve::P256,
            TlsVersion::Tls12,
        ),
        (
            "plugin limits to 1.2",
            None,
            &[("FAKE_TLS_MAX", "1.2")],
            CertCurve::P256,
            TlsVersion::Tls12,
        ),
        (
            "go-plugin's P-521 on both sides",
            None,
            &[("FAKE_CURVE", "p521")],
            CertCurve::P521,
            TlsVersion::Tls13,
        ),
    ];
    for (name, host_max, plugin_env, curve, expected) in cases {
        let s = Harness::shared();
        let mut builder = s
            .kv_host(s.fake_with_env("kv", plugin_env))
            .auto_mtls(true)
            .cert_curve(curve);
        if let Some(max) = host_max {
            builder = builder.max_tls_version(max);
        }
        let client = builder
            .start()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(client.tls_version(), Some(expected), "{name}");
        client.ping().await.unwrap();
        put_get(&client).await;
        assert!(client.shutdown().await.graceful, "{name}");
        s.assert_clean().await;
    }
}

#[tokio::test]
async fn a_plugin_without_automtls_support_is_refused() {
    let s = Harness::shared();
    let err = s
        .kv_host(s.script(&format!("unset PLUGIN_CLIENT_CERT; exec '{FAKE}' kv")))
        .auto_mtls(true)
        .start()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Handshake(HandshakeError::MissingCertificate { .. })
        ),
        "{err:?}"
    );
    s.assert_clean().await;
}

#[tokio::test]
async fn certificates_that_are_not_certificates_are_refused() {
    use base64::Engine as _;
    let fields = [
        "!!!!this-is-not-base64-at-all-but-is-longer-than-fifty-bytes!!!!".to_owned(),
        base64::engine::general_purpose::STANDARD_NO_PAD.encode([7u8; 120]),
    ];
    for field in fields {
        let s = Harness::shared();
        let err = s
            .kv_host(s.script(&format!("echo '1|1|unix|/s|grpc|{field}'; exec sleep 30")))
            .auto_mtls(true)
            .start()
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Handshake(HandshakeError::InvalidCertificate { .. })
            ),
            "{field}: {err:?}"
        );
        assert!(
            err.to_string().starts_with("error parsing server cert"),
            "{err}"
        );
        s.assert_clean().await;
    }
}

/// Serves one connection on a Unix socket with `config` (or plaintext),
/// returning the first bytes the host sent.
async fn fake_listener(
    path: &Path,
    config: Option<rustls::ServerConfig>,
) -> tokio::task::JoinHandle<Vec<u8>> {
    let listener = tokio::net::UnixListener::bind(path).unwrap();
    tokio::spawn(async move {
        let Ok((stream, _)) = listener.accept().await else {
            return Vec::new();
        };
        match config {
            Some(config) => {
                let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
                let _ = acceptor.accept(stream).await;
                Vec::new()
            }
            None => {
                let mut stream = stream;
                let mut first = vec![0u8; 3];
                let _ = stream.read_exact(&mut first).await;
                first
            }
        }
    })
}

#[tokio::test]
async fn a_certificate_that_is_not_the_peers_is_refused() {
    // The handshake names one certificate; the socket presents another.
    let s = Harness::shared();
    let pki = TestPki::generate(&s.work);
    let socket = s.path("impostor.sock");
    let server = fake_listener(
        &socket,
        Some(pki::server_config(
            pki.server_cert.to_str().unwrap(),
            pki.server_key.to_str().unwrap(),
            None,
        )),
    )
    .await;
    let field = pki::handshake_field(&pki.ca);
    let started = Instant::now();
    let err = s
        .kv_host(s.script(&format!(
            "echo '1|1|unix|{}|grpc|{field}'; exec sleep 30",
            socket.display()
        )))
        .auto_mtls(true)
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    // The TLS failure is kept typed, not only as text.
    assert!(err.cause().is_some(), "{err:?}");
    assert!(started.elapsed() < BOUND);
    server.abort();
    s.assert_clean().await;
}

#[tokio::test]
async fn the_host_speaks_tls_on_the_socket() {
    // A plaintext listener records what the host sends: a TLS record
    // (content type 22, handshake; version 3.x), not an HTTP/2 preface.
    let s = Harness::shared();
    let pki = TestPki::generate(&s.work);
    let socket = s.path("recorder.sock");
    let recorder = fake_listener(&socket, None).await;
    let field = pki::handshake_field(&pki.server_cert);
    let err = s
        .kv_host(s.script(&format!(
            "echo '1|1|unix|{}|grpc|{field}'; exec sleep 30",
            socket.display()
        )))
        .auto_mtls(true)
        .start()
        .await
        .unwrap_err();
    let first = recorder.await.unwrap();
    assert_eq!(
        &first[..2],
        &[0x16, 0x03],
        "not a TLS handshake record: {first:?}"
    );
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    s.assert_clean().await;
}

#[tokio::test]
async fn tls_against_a_plaintext_plugin_fails_cleanly() {
    // A real plaintext plugin, whose handshake line gets a certificate
    // appended: the host's TLS handshake meets HTTP/2.
    let s = Harness::shared();
    let pki = TestPki::generate(&s.work);
    let field = pki::handshake_field(&pki.server_cert);
    let script = format!(
        "unset PLUGIN_CLIENT_CERT; '{FAKE}' pid-file '{}' kv | {{ read line; echo \"${{line}}{field}\"; exec cat > /dev/null; }}",
        s.path("plugin-pid").display()
    );
    let started = Instant::now();
    let err = s
        .kv_host(s.script(&script))
        .auto_mtls(true)
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    assert!(started.elapsed() < BOUND, "{:?}", started.elapsed());
    goplug_test::process_gone(read_pid(&s.path("plugin-pid")), Duration::from_secs(5)).await;
    s.assert_clean().await;
}

#[tokio::test]
async fn plaintext_against_a_tls_plugin_fails_cleanly() {
    let s = Harness::shared();
    let pki = TestPki::generate(&s.work);
    let cert = pki.server_cert.to_str().unwrap();
    let key = pki.server_key.to_str().unwrap();
    let started = Instant::now();
    let err = s
        .kv_host(s.fake_with_env("kv", &[("FAKE_TLS_CERT", cert), ("FAKE_TLS_KEY", key)]))
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(started.elapsed() < BOUND, "{:?}", started.elapsed());
    s.assert_clean().await;
}

#[tokio::test]
async fn an_automtls_plugin_refuses_strangers_and_speaks_tls() {
    let s = Harness::shared();
    let client = s
        .kv_host(s.fake_with_env("kv", &[]))
        .auto_mtls(true)
        .start()
        .await
        .unwrap();
    let goplug::handshake::PluginAddress::Unix(socket) = client.address().clone() else {
        panic!("expected a unix socket");
    };

    // Plaintext HTTP/2: the plugin answers with a TLS alert or nothing.
    let mut raw = tokio::net::UnixStream::connect(&socket).await.unwrap();
    raw.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(BOUND, raw.read_to_end(&mut reply)).await;
    assert!(
        reply.is_empty() || reply[0] == 0x15,
        "plaintext got an answer: {reply:?}"
    );

    // TLS without a client certificate: refused.
    let stranger =
        tokio_rustls::TlsConnector::from(std::sync::Arc::new(pki::stranger_client_config()));
    let stream = tokio::net::UnixStream::connect(&socket).await.unwrap();
    let outcome = tokio::time::timeout(BOUND, async {
        let mut tls = stranger
            .connect(ServerName::try_from("localhost").unwrap(), stream)
            .await?;
        tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await?;
        let mut buf = [0u8; 64];
        tls.read(&mut buf).await
    })
    .await
    .unwrap();
    // Refused: a TLS alert (usually "certificate required"), or the
    // connection closed before it could be read; never HTTP/2 data.
    match outcome {
        Err(_) | Ok(0) => {}
        Ok(n) => panic!("a client without a certificate was served {n} bytes"),
    }

    // The real host is unaffected.
    client.ping().await.unwrap();
    assert!(client.shutdown().await.graceful);
    s.assert_clean().await;
}

#[tokio::test]
async fn manual_tls_with_client_certificates() {
    let s = Harness::shared();
    let pki = TestPki::generate(&s.work);
    let (ca, cert, key) = (
        pki.ca.to_str().unwrap(),
        pki.server_cert.to_str().unwrap(),
        pki.server_key.to_str().unwrap(),
    );
    let plugin_env = [
        ("FAKE_TLS_CERT", cert),
        ("FAKE_TLS_KEY", key),
        ("FAKE_TLS_CLIENT_CA", ca),
    ];
    let client_cert = (
        pki.client_cert.to_str().unwrap(),
        pki.client_key.to_str().unwrap(),
    );
    let client = s
        .kv_host(s.fake_with_env("kv", &plugin_env))
        .tls(
            pki::client_config(ca, Some(client_cert)),
            ServerName::try_from("localhost").unwrap(),
        )
        .start()
        .await
        .unwrap();
    assert_eq!(client.tls_version(), Some(TlsVersion::Tls13));
    put_get(&client).await;
    assert!(client.shutdown().await.graceful);
    s.assert_clean().await;

    // Without a client certificate the plugin refuses the host.
    let s = Harness::shared();
    let pki = TestPki::generate(&s.work);
    let (ca, cert, key) = (
        pki.ca.to_str().unwrap(),
        pki.server_cert.to_str().unwrap(),
        pki.server_key.to_str().unwrap(),
    );
    let plugin_env = [
        ("FAKE_TLS_CERT", cert),
        ("FAKE_TLS_KEY", key),
        ("FAKE_TLS_CLIENT_CA", ca),
    ];
    let err = s
        .kv_host(s.fake_with_env("kv", &plugin_env))
        .tls(
            pki::client_config(ca, None),
            ServerName::try_from("localhost").unwrap(),
        )
        .start()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Tls { .. } | Error::Connect { .. }),
        "{err:?}"
    );
    s.assert_clean().await;
}

#[tokio::test]
async fn auto_mtls_and_manual_tls_are_exclusive() {
    let s = Harness::shared();
    let pki = TestPki::generate(&s.work);
    let err = s
        .kv_host(s.fake_with_env("kv", &[]))
        .auto_mtls(true)
        .tls(
            pki::client_config(pki.ca.to_str().unwrap(), None),
            ServerName::try_from("localhost").unwrap(),
        )
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    assert!(!s.pid_file().exists(), "nothing may be launched");
}

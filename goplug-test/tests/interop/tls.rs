//! TLS against the real go-plugin v1.8.0 and grpcio: AutoMTLS in the four
//! pairings over TLS 1.3 and 1.2, manual TLS with client certificates, and
//! the Python plugin with manual TLS.

use std::time::Duration;

use goplug::host::{Channel, Client, PluginSet};
use goplug::tls::TlsVersion;
use goplug_example_kv::{HANDSHAKE, pb, pb::kv_client::KvClient};
use goplug_test::pki::{self, TestPki};
use goplug_test::{FAKE, go_bin, leftovers, python_kv_plugin_command};
use rustls::pki_types::ServerName;
use serde_json::Value;

fn go_plugin(env: &str) -> String {
    format!("{env} exec '{}'", go_bin("probe-plugin").display())
}

fn rust_plugin(env: &str) -> String {
    format!("{env} exec '{FAKE}' kv")
}

fn assert_served(report: &Value, tls_version: &str, case: &str) {
    assert_eq!(report["ok"], true, "{case}: {report}");
    assert_eq!(report["tls_version"], tls_version, "{case}: {report}");
    assert_eq!(report["graceful"], true, "{case}: {report}");
    assert_eq!(report["warnings"], Value::Array(vec![]), "{case}: {report}");
    assert!(
        report["get"]
            .as_str()
            .unwrap()
            .starts_with("v\n\nWritten from plugin"),
        "{case}: {report}"
    );
}

#[test]
fn go_host_with_automtls() {
    let ops = ["-automtls", "-ping", "-put", "k=v", "-get", "k"];
    // Go/Go is the reference; the Rust plugin must give the same report.
    for (name, plugin) in [("go", go_plugin("")), ("rust", rust_plugin(""))] {
        assert_served(
            &goplug_test::probe_host(&plugin, &ops, tempfile::tempdir().unwrap().path()),
            "1.3",
            &format!("{name} plugin, TLS 1.3"),
        );
        let mut limited = ops.to_vec();
        limited.extend(["-tls-max", "1.2"]);
        assert_served(
            &goplug_test::probe_host(&plugin, &limited, tempfile::tempdir().unwrap().path()),
            "1.2",
            &format!("{name} plugin, host limits to TLS 1.2"),
        );
    }
    // Plugins that limit themselves to TLS 1.2.
    for (name, plugin) in [
        ("go", go_plugin("PROBE_TLS_MAX=1.2")),
        ("rust", rust_plugin("FAKE_TLS_MAX=1.2")),
    ] {
        assert_served(
            &goplug_test::probe_host(&plugin, &ops, tempfile::tempdir().unwrap().path()),
            "1.2",
            &format!("{name} plugin limits to TLS 1.2"),
        );
    }
    // go-plugin's own P-521 certificate on the Rust side too.
    assert_served(
        &goplug_test::probe_host(
            &rust_plugin("FAKE_CURVE=p521"),
            &ops,
            tempfile::tempdir().unwrap().path(),
        ),
        "1.3",
        "rust plugin, P-521",
    );
}

async fn rust_host(
    command: &str,
    configure: impl FnOnce(goplug::host::ClientBuilder) -> goplug::host::ClientBuilder,
) -> (Client, tempfile::TempDir) {
    let sockets = tempfile::tempdir().unwrap();
    let builder = Client::builder(HANDSHAKE)
        .plugins(PluginSet::new().grpc::<KvClient<Channel>>("kv"))
        .command(goplug::host::shell_command(command))
        .unix_socket_dir(sockets.path())
        .start_timeout(Duration::from_secs(20));
    let client = configure(builder)
        .start()
        .await
        .unwrap_or_else(|e| panic!("{command}: {e}"));
    (client, sockets)
}

async fn use_and_stop(
    client: Client,
    sockets: tempfile::TempDir,
    work: &std::path::Path,
    case: &str,
) {
    let mut kv: KvClient<Channel> = client.dispense_named("kv").unwrap();
    let key = format!("k{}", client.pid().unwrap_or_default());
    kv.put(pb::PutRequest {
        key: key.clone(),
        value: b"v".to_vec(),
    })
    .await
    .unwrap_or_else(|e| panic!("{case}: {e}"));
    let got = kv.get(pb::GetRequest { key }).await.unwrap().into_inner();
    assert!(got.value.starts_with(b"v\n\nWritten from plugin"), "{case}");
    drop(kv);
    let report = client.shutdown().await;
    assert!(report.graceful, "{case}: {report:?}");
    assert!(
        leftovers(sockets.path()).is_empty(),
        "{case}: socket left behind"
    );
    let _ = work;
}

#[tokio::test]
async fn rust_host_with_automtls() {
    let work = tempfile::tempdir().unwrap();
    let cd = format!("cd '{}' &&", work.path().display());
    let cases = [
        ("go plugin", go_plugin(""), TlsVersion::Tls13, None),
        ("rust plugin", rust_plugin(""), TlsVersion::Tls13, None),
        (
            "go plugin, host limits",
            go_plugin(""),
            TlsVersion::Tls12,
            Some(TlsVersion::Tls12),
        ),
        (
            "rust plugin, host limits",
            rust_plugin(""),
            TlsVersion::Tls12,
            Some(TlsVersion::Tls12),
        ),
        (
            "go plugin limits",
            go_plugin("PROBE_TLS_MAX=1.2"),
            TlsVersion::Tls12,
            None,
        ),
        (
            "rust plugin limits",
            rust_plugin("FAKE_TLS_MAX=1.2"),
            TlsVersion::Tls12,
            None,
        ),
    ];
    for (case, plugin, expected, host_max) in cases {
        let (client, sockets) = rust_host(&format!("{cd} {plugin}"), |b| {
            let b = b.auto_mtls(true);
            match host_max {
                Some(max) => b.max_tls_version(max),
                None => b,
            }
        })
        .await;
        assert_eq!(client.tls_version(), Some(expected), "{case}");
        client.ping().await.unwrap();
        use_and_stop(client, sockets, work.path(), case).await;
    }
}

#[tokio::test]
async fn manual_tls_with_client_certificates_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate(dir.path());
    let (ca, cert, key) = (
        pki.ca.display().to_string(),
        pki.server_cert.display().to_string(),
        pki.server_key.display().to_string(),
    );
    let (client_cert, client_key) = (
        pki.client_cert.display().to_string(),
        pki.client_key.display().to_string(),
    );

    // Go host (go-plugin's TLSConfig) against Go and Rust plugins (TLSProvider).
    let host_flags = [
        "-tls-ca",
        &ca,
        "-tls-cert",
        &client_cert,
        "-tls-key",
        &client_key,
        "-ping",
        "-put",
        "k=v",
        "-get",
        "k",
    ];
    let go = go_plugin(&format!(
        "PROBE_TLS_CERT='{cert}' PROBE_TLS_KEY='{key}' PROBE_TLS_CLIENT_CA='{ca}'"
    ));
    let rust = rust_plugin(&format!(
        "FAKE_TLS_CERT='{cert}' FAKE_TLS_KEY='{key}' FAKE_TLS_CLIENT_CA='{ca}'"
    ));
    for (name, plugin) in [("go", &go), ("rust", &rust)] {
        assert_served(
            &goplug_test::probe_host(plugin, &host_flags, tempfile::tempdir().unwrap().path()),
            "1.3",
            &format!("go host, {name} plugin"),
        );
    }

    // Rust host (a rustls ClientConfig) against the same plugins and Python.
    let work = tempfile::tempdir().unwrap();
    let cd = format!("cd '{}' &&", work.path().display());
    let python = format!(
        "KV_PLUGIN_TLS_CERT='{cert}' KV_PLUGIN_TLS_KEY='{key}' KV_PLUGIN_TLS_CLIENT_CA='{ca}' exec {}",
        python_kv_plugin_command()
    );
    for (case, plugin) in [
        ("go plugin", &go),
        ("rust plugin", &rust),
        ("python plugin", &python),
    ] {
        let config = pki::client_config(&ca, Some((&client_cert, &client_key)));
        let (client, sockets) = rust_host(&format!("{cd} {plugin}"), |b| {
            b.tls(config, ServerName::try_from("localhost").unwrap())
        })
        .await;
        assert_eq!(client.tls_version(), Some(TlsVersion::Tls13), "{case}");
        use_and_stop(client, sockets, work.path(), case).await;
    }
}

#[tokio::test]
async fn python_plugin_without_tls_under_a_rust_host() {
    // The Python plugin knows no AutoMTLS: asked for it, it is refused with a
    // clear error instead of failing at the first call as with a Go host.
    let sockets = tempfile::tempdir().unwrap();
    let err = Client::builder(HANDSHAKE)
        .command(goplug::host::shell_command(python_kv_plugin_command()))
        .unix_socket_dir(sockets.path())
        .auto_mtls(true)
        .start()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            goplug::Error::Handshake(goplug::HandshakeError::MissingCertificate { .. })
        ),
        "{err:?}"
    );
}

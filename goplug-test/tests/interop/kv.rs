//! Handshake, negotiation and refusals against the real go-plugin v1.8.0.
//!
//! Go host side: `probe-host` (go-plugin's `Client`) launches the Rust test
//! plugin and the Go `probe-plugin` with the same flags; the Rust plugin
//! must produce exactly what the Go plugin produces, errors included.
//! Rust host side: our `Client` launches both plugins; the outcomes must
//! match too.

use std::time::Duration;

use goplug::host::{Channel, Client, PluginSet};
use goplug::{Error, HandshakeConfig, HandshakeError, Protocol};
use goplug_example_kv::{HANDSHAKE, pb, pb::kv_client::KvClient};
use goplug_test::{FAKE, go_bin, leftovers};
use serde_json::Value;

/// The two plugins under comparison, as `sh -c` commands with versions.
fn plugins(versions: &str) -> [(&'static str, String); 2] {
    [
        (
            "go",
            format!(
                "PROBE_VERSIONS={versions} exec '{}'",
                go_bin("probe-plugin").display()
            ),
        ),
        ("rust", format!("FAKE_VERSIONS={versions} exec '{FAKE}' kv")),
    ]
}

#[test]
fn go_host_uses_a_rust_plugin_like_a_go_plugin() {
    for (name, command) in plugins("1") {
        let report = goplug_test::probe_host(
            &command,
            &["-ping", "-put", "k=v", "-get", "k"],
            tempfile::tempdir().unwrap().path(),
        );
        assert_eq!(report["ok"], true, "{name}: {report}");
        assert_eq!(report["protocol"], "grpc", "{name}");
        assert_eq!(report["version"], 1, "{name}");
        assert!(
            report["get"]
                .as_str()
                .unwrap()
                .starts_with("v\n\nWritten from plugin"),
            "{name}: {report}"
        );
        // Exited on the Shutdown request, without being killed, and the Go
        // host logged no warning (no missing stdio service, no forced kill).
        assert_eq!(report["graceful"], true, "{name}: {report}");
        assert_eq!(report["exited"], true, "{name}");
        assert_eq!(report["warnings"], Value::Array(vec![]), "{name}: {report}");
    }
}

#[test]
fn go_host_negotiates_the_same_version_with_both() {
    let cases = [("1,2,3", "2,3,4", 3), ("2,5,9", "4,5,10", 5), ("1", "1", 1)];
    for (plugin_versions, host_versions, expected) in cases {
        for (name, command) in plugins(plugin_versions) {
            let report = goplug_test::probe_host(
                &command,
                &["-versions", host_versions, "-ping"],
                tempfile::tempdir().unwrap().path(),
            );
            assert_eq!(
                report["ok"], true,
                "{name} {plugin_versions}/{host_versions}: {report}"
            );
            assert_eq!(
                report["version"], expected,
                "{name} {plugin_versions}/{host_versions}"
            );
        }
    }
}

#[test]
fn go_host_refuses_both_with_identical_errors() {
    let cases: [(&str, &[&str], &str); 4] = [
        (
            "version mismatch",
            &["-versions", "7"],
            "incompatible API version with plugin. Plugin version: 1, Client versions: [7]",
        ),
        (
            "protocol not allowed",
            &["-protocols", "netrpc"],
            "unsupported plugin protocol \"grpc\". Supported: [netrpc]",
        ),
        (
            "wrong cookie",
            &["-cookie-value", "not-hello"],
            "Unrecognized remote plugin message: \nFailed to read any lines from plugin's stdout",
        ),
        (
            "wrong cookie key",
            &["-cookie-key", "OTHER_COOKIE"],
            "Unrecognized remote plugin message: \nFailed to read any lines from plugin's stdout",
        ),
    ];
    for (case, flags, expected) in cases {
        let reports: Vec<Value> = plugins("1")
            .iter()
            .map(|(_, command)| {
                goplug_test::probe_host(command, flags, tempfile::tempdir().unwrap().path())
            })
            .collect();
        for (report, (name, _)) in reports.iter().zip(plugins("1")) {
            assert_eq!(report["ok"], false, "{case} {name}: {report}");
            assert_eq!(report["stage"], "start", "{case} {name}");
            let error = report["error"].as_str().unwrap();
            assert!(error.starts_with(expected), "{case} {name}: {error}");
            assert_eq!(report["exited"], true, "{case} {name}");
            assert_eq!(report["kill_hung"], false, "{case} {name}");
        }
        assert_eq!(
            reports[0]["error"], reports[1]["error"],
            "{case}: the Go host must see the same error"
        );
    }
}

/// Starts `command` with our host, offering `versions`.
async fn rust_host(
    command: &str,
    versions: &[u32],
    handshake: HandshakeConfig,
    allowed: &[Protocol],
) -> (goplug::Result<Client>, tempfile::TempDir) {
    let sockets = tempfile::tempdir().unwrap();
    let mut builder = Client::builder(handshake)
        .command(goplug::host::shell_command(command))
        .unix_socket_dir(sockets.path())
        .allowed_protocols(allowed.iter().copied())
        .start_timeout(Duration::from_secs(20));
    for version in versions {
        builder = builder.version(*version, PluginSet::new().grpc::<KvClient<Channel>>("kv"));
    }
    (builder.start().await, sockets)
}

#[tokio::test]
async fn rust_host_uses_a_go_plugin_like_a_rust_plugin() {
    let work = tempfile::tempdir().unwrap();
    for (name, command) in plugins("1,2,3") {
        let command = format!("cd '{}' && {command}", work.path().display());
        let (client, sockets) = rust_host(&command, &[2, 3, 4], HANDSHAKE, &[Protocol::Grpc]).await;
        let client = client.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(client.negotiated_version(), 3, "{name}");
        client.ping().await.unwrap();
        let mut kv: KvClient<Channel> = client.dispense_named("kv").unwrap();
        kv.put(pb::PutRequest {
            key: "k".into(),
            value: b"v".to_vec(),
        })
        .await
        .unwrap();
        let got = kv
            .get(pb::GetRequest { key: "k".into() })
            .await
            .unwrap()
            .into_inner();
        assert!(got.value.starts_with(b"v\n\nWritten from plugin"), "{name}");
        drop(kv);
        let report = client.shutdown().await;
        assert!(report.graceful, "{name}: {report:?}");
        assert!(report.status.unwrap().success(), "{name}: {report:?}");
        // Go plugins honour PLUGIN_UNIX_SOCKET_DIR; nothing is left in it.
        assert!(leftovers(sockets.path()).is_empty(), "{name}");
    }
}

#[tokio::test]
async fn rust_host_refuses_both_alike() {
    for (name, command) in plugins("1") {
        let (err, _sockets) = rust_host(&command, &[7], HANDSHAKE, &[Protocol::Grpc]).await;
        match err.unwrap_err() {
            Error::Handshake(HandshakeError::AppVersionMismatch {
                plugin: 1, host, ..
            }) => assert_eq!(host, [7], "{name}"),
            other => panic!("{name}: expected a version mismatch, got {other:?}"),
        }

        let (err, _sockets) = rust_host(&command, &[1], HANDSHAKE, &[Protocol::NetRpc]).await;
        let err = err.unwrap_err();
        assert!(
            matches!(
                err,
                Error::Handshake(HandshakeError::ProtocolNotAllowed {
                    protocol: Protocol::Grpc,
                    ..
                })
            ),
            "{name}: {err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("unsupported plugin protocol \"grpc\". Supported: [netrpc]")
        );

        let wrong_cookie = HandshakeConfig::new(1, "BASIC_PLUGIN", "not-hello");
        let (err, _sockets) = rust_host(&command, &[1], wrong_cookie, &[Protocol::Grpc]).await;
        let err = err.unwrap_err();
        let Error::ExitedBeforeHandshake { status, stderr } = &err else {
            panic!("{name}: expected an early exit, got {err:?}");
        };
        assert_eq!(status.and_then(|s| s.code()), Some(1), "{name}");
        // The plugin's own explanation reaches the host's error: go-plugin's
        // text from Go, goplug's naming the variable from Rust.
        let own_words = match name {
            "go" => "This binary is a plugin.",
            _ => "BASIC_PLUGIN is set, but not to this plugin's value",
        };
        assert!(stderr.0.contains(own_words), "{name}: {stderr:?}");
        // Either way the host says what it means: the cookies differ.
        assert!(stderr.cookie_rejected(), "{name}: {stderr:?}");
        assert!(
            err.to_string().contains(
                "; the plugin rejected the magic cookie (host and plugin handshake configs differ: check magic_cookie_key/value); plugin stderr:"
            ),
            "{name}: {err}"
        );
    }
}

#[test]
fn go_host_uses_a_rust_plugin_over_tcp() {
    // go-plugin's Windows transport, selectable in goplug on any OS.
    let work = tempfile::tempdir().unwrap();
    let report = goplug_test::probe_host(
        &format!("exec '{FAKE}' kv-tcp"),
        &["-ping", "-put", "k=v", "-get", "k"],
        work.path(),
    );
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["graceful"], true, "{report}");
    assert_eq!(report["warnings"], Value::Array(vec![]), "{report}");
}

//! The multiplexed gRPC broker's handshake (`PLUGIN_MULTIPLEX_GRPC` and the
//! 7th field), held to go-plugin's host behaviour. The broker itself is
//! exercised in every pairing by examples/bidirectional's tests.

use std::time::Duration;

use goplug::{Error, HandshakeError};
use goplug_test::{FAKE, Harness, probe_host, python_kv_plugin_command};

/// A "plugin" that prints `line` and then waits.
fn scripted(s: &Harness, line: &str) -> String {
    format!(
        "echo $$ > '{}'; echo '{line}'; exec sleep 30",
        s.pid_file().display()
    )
}

#[tokio::test]
async fn both_hosts_refuse_a_plugin_without_multiplexing_alike() {
    // (handshake line, expected Rust error, start of the Go host's error)
    type Case = (&'static str, fn(&Error) -> bool, &'static str);
    let cases: [Case; 3] = [
        (
            "1|1|unix|/nonexistent|grpc|",
            |e| matches!(e, Error::Handshake(HandshakeError::MultiplexMissing { .. })),
            "client requested gRPC broker multiplexing but plugin does not support the feature; for Go plugins, you will need to update the github.com/hashicorp/go-plugin dependency and recompile",
        ),
        (
            "1|1|unix|/nonexistent|grpc||false",
            |e| matches!(e, Error::Handshake(HandshakeError::MultiplexRefused { .. })),
            "client requested gRPC broker multiplexing but plugin does not support the feature",
        ),
        (
            "1|1|unix|/nonexistent|grpc||yes",
            |e| matches!(e, Error::Handshake(HandshakeError::InvalidMultiplex { .. })),
            "error parsing \"yes\" as a boolean for gRPC broker multiplexing support",
        ),
    ];
    for (line, is_expected, go_text) in cases {
        let s = Harness::shared();
        let err = s
            .kv_host(s.script(&format!("echo '{line}'; exec sleep 30")))
            .grpc_broker_multiplex(true)
            .start()
            .await
            .unwrap_err();
        assert!(is_expected(&err), "{line}: {err:?}");
        assert!(err.to_string().starts_with(go_text), "{line}: {err}");
        s.assert_clean().await;

        let s = Harness::shared();
        let report = probe_host(&scripted(&s, line), &["-multiplex"], &s.work);
        let go_error = report["error"].as_str().unwrap_or_default();
        assert!(
            go_error.contains(go_text),
            "{line}: Go host said {go_error:?}"
        );
        s.assert_clean().await;
    }
}

#[tokio::test]
async fn a_python_plugin_cannot_multiplex() {
    let s = Harness::shared();
    let err = s
        .kv_host(goplug::host::shell_command(python_kv_plugin_command()))
        .grpc_broker_multiplex(true)
        .start_timeout(Duration::from_secs(30))
        .start()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Handshake(HandshakeError::MultiplexMissing { .. })
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_go_host_multiplexes_with_a_rust_plugin() {
    for flags in [&["-multiplex"][..], &["-multiplex", "-automtls"]] {
        let s = Harness::shared();
        let plugin = format!("exec {FAKE} kv");
        let mut all = flags.to_vec();
        all.extend(["-ping", "-put", "k=v", "-get", "k"]);
        let report = probe_host(&plugin, &all, &s.work);
        assert_eq!(report["ok"], true, "{flags:?}: {report}");
        assert_eq!(report["multiplexed"], true, "{flags:?}: {report}");
        assert!(
            report["get"]
                .as_str()
                .unwrap_or_default()
                .starts_with("v\n"),
            "{report}"
        );
        assert_eq!(report["graceful"], true, "{report}");
    }
}

#[tokio::test]
async fn a_rust_host_multiplexes_with_go_and_rust_kv_plugins() {
    use goplug_example_kv::pb;
    let go_plugin = goplug_test::go_bin("kv-plugin-go-grpc");
    for (name, plugin) in [
        ("rust", format!("exec {FAKE} kv")),
        ("go", format!("exec {}", go_plugin.display())),
    ] {
        for auto_mtls in [false, true] {
            let s = Harness::shared();
            let mut command = goplug::host::shell_command(plugin.clone());
            command.current_dir(&s.work);
            let client = s
                .kv_host(command)
                .grpc_broker_multiplex(true)
                .auto_mtls(auto_mtls)
                .start()
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(client.broker_multiplexed());
            assert_eq!(client.tls_version().is_some(), auto_mtls);
            client.ping().await.unwrap();
            let mut kv: pb::kv_client::KvClient<goplug::host::Channel> =
                client.dispense_named("kv").unwrap();
            kv.put(pb::PutRequest {
                key: "m".into(),
                value: b"x".to_vec(),
            })
            .await
            .unwrap();
            let report = client.shutdown().await;
            assert!(report.graceful, "{name}: {report:?}");
        }
    }
}

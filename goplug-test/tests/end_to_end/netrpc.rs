//! go-plugin's net/rpc protocol end to end, held to Go's behaviour: the Rust
//! and Go hosts against the Rust and Go plugins, go-plugin's error texts,
//! stdout over the stdout stream, AutoMTLS, and plugins that die mid-call.

use std::time::Duration;

use goplug::host::{Client, PluginSet, shell_command};
use goplug::netrpc::gob::GoInterface;
use goplug::{Error, Protocol};
use goplug_example_kv::{HANDSHAKE, KvRpc};
use goplug_test::{FAKE, Harness, go_bin, probe_host};

fn rust_plugin() -> String {
    format!("FAKE_PROTOCOL=netrpc exec {FAKE} kv")
}

fn go_plugin() -> String {
    format!(
        "PROBE_PROTOCOL=netrpc exec {}",
        go_bin("probe-plugin").display()
    )
}

fn host(s: &Harness, plugin: &str) -> goplug::host::ClientBuilder {
    let mut command = shell_command(plugin);
    command.current_dir(&s.work);
    Client::builder(HANDSHAKE)
        .plugins(PluginSet::new().netrpc_with("kv", |rpc, _| KvRpc::new(rpc)))
        .command(command)
        .allowed_protocols([Protocol::NetRpc])
        .unix_socket_dir(&s.sockets)
        .start_timeout(Duration::from_secs(20))
}

#[tokio::test]
async fn the_rust_host_drives_both_plugins_over_net_rpc() {
    for (name, plugin) in [("rust", rust_plugin()), ("go", go_plugin())] {
        for auto_mtls in [false, true] {
            let s = Harness::shared();
            let client = host(&s, &plugin)
                .auto_mtls(auto_mtls)
                .start()
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(client.protocol(), Protocol::NetRpc);
            assert_eq!(client.tls_version().is_some(), auto_mtls, "{name}");
            assert!(client.mux_broker().is_some());
            client.ping().await.unwrap();
            let kv: KvRpc = client.dispense_named_async("kv").await.unwrap();
            kv.put("k", b"v").await.unwrap();
            let value = kv.get("k").await.unwrap();
            assert!(
                value.starts_with(b"v\n\nWritten from plugin"),
                "{name}: {value:?}"
            );
            // Concurrent calls on one connection.
            let mut calls = tokio::task::JoinSet::new();
            for i in 0..32 {
                let kv = kv.clone();
                calls.spawn(async move { kv.put(&format!("c{i}"), b"x").await });
            }
            while let Some(result) = calls.join_next().await {
                result.unwrap().unwrap();
            }
            let report = client.shutdown().await;
            // A Go net/rpc plugin may exit before its Quit reply is written
            // (go-plugin's own host then reports a non-graceful exit too).
            if name == "rust" {
                assert!(report.graceful, "{name}: {report:?}");
            }
            s.assert_clean().await;
        }
    }
}

#[tokio::test]
async fn errors_carry_go_plugins_texts_in_both_directions() {
    // The Rust host against both plugins.
    for (name, plugin) in [("rust", rust_plugin()), ("go", go_plugin())] {
        let s = Harness::shared();
        let client = host(&s, &plugin).start().await.unwrap();
        let err = client
            .dispense_named_async::<KvRpc>("nope")
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::UnknownPlugin { .. }),
            "{name}: {err:?}"
        );
        // A name the host knows and the plugin does not: the plugin says so.
        let kv: KvRpc = client.dispense_named_async("kv").await.unwrap();
        let err = kv.get("missing").await.unwrap_err();
        match &err {
            Error::RemoteCall { method, message } => {
                assert_eq!(method, "Plugin.Get");
                assert!(
                    message.starts_with("open ") && message.contains("kv_missing"),
                    "{name}: {message}"
                );
            }
            other => panic!("{name}: {other:?}"),
        }
        client.shutdown().await;
    }

    // Go's host against both plugins: the same texts, byte for byte.
    let mut texts = Vec::new();
    for (name, plugin) in [("rust", rust_plugin()), ("go", go_plugin())] {
        let s = Harness::shared();
        let mut report = Vec::new();
        for flags in [
            &["-dispense", "nope"][..],
            &["-call", "Plugin.Nope", "-call-arg", "x"],
            &["-call", "Nope.Get", "-call-arg", "x"],
            &["-call", "Nope", "-call-arg", "x"],
        ] {
            let mut all = vec!["-protocols", "netrpc"];
            all.extend(flags);
            let json = probe_host(&plugin, &all, &s.work);
            report.push(json["error"].as_str().unwrap_or_default().to_owned());
        }
        assert!(
            report[0].contains("unknown plugin type: nope"),
            "{name}: {report:?}"
        );
        assert!(
            report[1].contains("rpc: can't find method Plugin.Nope"),
            "{name}: {report:?}"
        );
        assert!(
            report[2].contains("rpc: can't find service Nope.Get"),
            "{name}: {report:?}"
        );
        assert!(
            report[3].contains("rpc: service/method request ill-formed: Nope"),
            "{name}: {report:?}"
        );
        texts.push(report);
    }
    assert_eq!(texts[0], texts[1]);
}

#[tokio::test]
async fn a_missing_method_with_a_nil_argument_gets_an_answer() {
    // A Go net/rpc server never answers this call (gob cannot skip a nil
    // interface body); goplug's answers at once.
    let s = Harness::shared();
    let mut command = shell_command(rust_plugin());
    command.current_dir(&s.work);
    let client = Client::builder(HANDSHAKE)
        .plugins(PluginSet::new().netrpc_with("kv", |rpc, _| rpc))
        .command(command)
        .allowed_protocols([Protocol::NetRpc])
        .unix_socket_dir(&s.sockets)
        .start()
        .await
        .unwrap();
    let rpc: goplug::netrpc::rpc::RpcClient = client.dispense_named_async("kv").await.unwrap();
    let nil = GoInterface::nil();
    let call = rpc.call::<GoInterface, GoInterface>("Plugin.Nope", &nil);
    let err = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .expect("an answer")
        .unwrap_err();
    assert_eq!(err.to_string(), "rpc: can't find method Plugin.Nope");
    // The connection still works afterwards.
    let missing = rpc
        .call::<String, Vec<u8>>("Plugin.Get", &"missing".to_owned())
        .await;
    assert!(
        matches!(missing, Err(Error::RemoteCall { .. })),
        "{missing:?}"
    );
    rpc.call::<std::collections::BTreeMap<String, GoInterface>, GoInterface>(
        "Plugin.Put",
        &[
            (
                "key".to_owned(),
                goplug::netrpc::gob::InterfaceValue::string("a").into(),
            ),
            (
                "value".to_owned(),
                goplug::netrpc::gob::InterfaceValue::bytes(b"b".to_vec()).into(),
            ),
        ]
        .into_iter()
        .collect(),
    )
    .await
    .unwrap();
    assert!(client.shutdown().await.graceful);
    s.assert_clean().await;
}

#[tokio::test]
async fn the_go_host_drives_the_rust_plugin_like_the_go_one() {
    let mut reports = Vec::new();
    for plugin in [rust_plugin(), go_plugin()] {
        for flags in [&[][..], &["-automtls"]] {
            let s = Harness::shared();
            let mut all = vec!["-protocols", "netrpc", "-ping", "-put", "k=v", "-get", "k"];
            all.extend(flags);
            let report = probe_host(&plugin, &all, &s.work);
            assert_eq!(report["ok"], true, "{plugin} {flags:?}: {report}");
            assert_eq!(report["protocol"], "netrpc");
            // (probe-host reads the TLS version off gRPC connections only;
            // with -automtls the Go host wraps the connection in TLS, so
            // `ok` means the plugin spoke TLS.)
            assert!(
                report["get"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("v\n\nWritten from plugin")
            );
            reports.push((report["version"].clone(), report["exited"].clone()));
        }
    }
    assert_eq!(reports[0], reports[2]);
}

#[tokio::test]
async fn stdout_reaches_the_host_over_the_stdout_stream() {
    // The Go plugin prints after serving; the Rust host syncs it.
    let s = Harness::shared();
    let (writer, mut reader) = tokio::io::duplex(1 << 16);
    let plugin = format!("PROBE_STDOUT_TEXT='hello over net/rpc' {}", go_plugin());
    let client = host(&s, &plugin).sync_stdout(writer).start().await.unwrap();
    let kv: KvRpc = client.dispense_named_async("kv").await.unwrap();
    kv.put("k", b"v").await.unwrap();
    let mut got = Vec::new();
    let read = async {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 256];
        while !String::from_utf8_lossy(&got).contains("hello over net/rpc\n") {
            let n = reader.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .unwrap();
    client.shutdown().await;

    // The Rust plugin's stdout reaches the Go host the same way.
    let s = Harness::shared();
    let sync = s.path("synced");
    let plugin = format!("FAKE_PROTOCOL=netrpc exec {FAKE} kv-print");
    let report = probe_host(
        &plugin,
        &[
            "-protocols",
            "netrpc",
            "-ping",
            "-sync-stdout",
            sync.to_str().unwrap(),
            "-wait",
            "1s",
        ],
        &s.work,
    );
    assert_eq!(report["ok"], true, "{report}");
    let synced = std::fs::read_to_string(&sync).unwrap_or_default();
    assert_eq!(synced, "hello from the plugin's stdout\n");
}

#[tokio::test]
async fn a_plugin_killed_mid_call_fails_the_call_not_the_host() {
    let s = Harness::shared();
    let client = host(
        &s,
        &format!(
            "FAKE_PROTOCOL=netrpc exec {FAKE} pid-file '{}' kv",
            s.pid_file().display()
        ),
    )
    .start()
    .await
    .unwrap();
    let kv: KvRpc = client.dispense_named_async("kv").await.unwrap();
    kv.put("k", b"v").await.unwrap();
    let pid = goplug_test::read_pid(&s.pid_file());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let err = tokio::time::timeout(Duration::from_secs(10), kv.get("k"))
        .await
        .expect("the call ends")
        .unwrap_err();
    assert!(matches!(err, Error::NetRpc { .. }), "{err:?}");
    assert!(err.to_string().contains("connection is shut down"), "{err}");
    assert!(client.wait_exit(Duration::from_secs(5)).await);
    let report = client.shutdown().await;
    assert!(!report.graceful || report.status.is_some());
    s.assert_clean().await;
}

/// A plugin declared once as a typed handle is registered and dispensed
/// with the same value: a `GrpcPlugin` gives the client at once, a
/// `NetRpcPlugin` a future (its dispense is a call to the plugin). A handle
/// of the other protocol fails with an error that says which to declare.
#[tokio::test]
async fn typed_handles_dispense_grpc_and_net_rpc_plugins() {
    use goplug::host::{Channel, GrpcPlugin, NetRpcPlugin};
    use goplug_example_kv::pb::kv_client::KvClient;
    const KV_GRPC: GrpcPlugin<KvClient<Channel>> = GrpcPlugin::new("kv");
    const KV_NETRPC: NetRpcPlugin<KvRpc> = NetRpcPlugin::new("kv", |rpc, _| KvRpc::new(rpc));

    for (name, plugin) in [("rust", rust_plugin()), ("go", go_plugin())] {
        let s = Harness::shared();
        let mut command = shell_command(&plugin);
        command.current_dir(&s.work);
        let client = Client::builder(HANDSHAKE)
            .plugins(PluginSet::new().plugin(KV_NETRPC))
            .command(command)
            .allowed_protocols([Protocol::NetRpc])
            .unix_socket_dir(&s.sockets)
            .start()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let kv = client.dispense(KV_NETRPC).await.unwrap();
        kv.put("typed", b"v").await.unwrap();
        assert!(
            kv.get("typed").await.unwrap().starts_with(b"v\n\n"),
            "{name}"
        );
        let err = client.dispense(KV_GRPC).unwrap_err();
        assert!(
            err.to_string().contains("declare it as a NetRpcPlugin"),
            "{name}: {err}"
        );
        assert!(client.shutdown().await.graceful, "{name}");
        s.assert_clean().await;
    }

    let s = Harness::shared();
    let mut command = shell_command(format!("exec {FAKE} kv"));
    command.current_dir(&s.work);
    let client = Client::builder(HANDSHAKE)
        .plugins(PluginSet::new().plugin(KV_GRPC))
        .command(command)
        .unix_socket_dir(&s.sockets)
        .start()
        .await
        .unwrap();
    let mut kv = client.dispense(KV_GRPC).unwrap();
    goplug_test::put(&mut kv, "typed", b"v".to_vec())
        .await
        .unwrap();
    let err = client.dispense(KV_NETRPC).await.unwrap_err();
    assert!(
        err.to_string().contains("declare it as a GrpcPlugin"),
        "{err}"
    );
    // A handle the negotiated set lacks: go-plugin's text.
    const OTHER: GrpcPlugin<KvClient<Channel>> = GrpcPlugin::new("other");
    let err = client.dispense(OTHER).unwrap_err();
    assert!(
        err.to_string().starts_with("unknown plugin type: other"),
        "{err}"
    );
    assert!(client.shutdown().await.graceful);
    s.assert_clean().await;
}

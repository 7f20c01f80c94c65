//! `goplug::testing::connect`: a plugin's services tested through the whole
//! goplug stack inside the test process (go-plugin's `TestPluginGRPCConn`).

use std::time::Duration;

use goplug::Error;
use goplug::handshake::PluginAddress;
use goplug::host::{Channel, PluginSet};
use goplug_example_kv::{FileKv, HANDSHAKE, pb, pb::kv_client::KvClient};

fn host_plugins() -> PluginSet {
    PluginSet::new().grpc::<KvClient<Channel>>("kv")
}

fn socket_of(client: &goplug::host::Client) -> std::path::PathBuf {
    match client.address() {
        PluginAddress::Unix(path) => path.clone(),
        other => panic!("expected a unix socket, got {other}"),
    }
}

async fn gone(path: &std::path::Path) -> bool {
    for _ in 0..250 {
        if !path.exists() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn a_plugin_is_served_and_called_in_one_process() {
    let key = format!("in-process-{}", std::process::id());
    let client = goplug::testing::connect(goplug_example_kv::serve_config(), host_plugins())
        .await
        .unwrap();
    assert_eq!(client.negotiated_version(), 1);
    assert_eq!(client.pid(), None);
    client.ping().await.unwrap();
    let mut kv: KvClient<Channel> = client.dispense_named("kv").unwrap();
    kv.put(pb::PutRequest {
        key: key.clone(),
        value: b"here".to_vec(),
    })
    .await
    .unwrap();
    let value = kv
        .get(pb::GetRequest { key: key.clone() })
        .await
        .unwrap()
        .into_inner()
        .value;
    let _ = std::fs::remove_file(format!("kv_{key}"));
    assert!(
        value.starts_with(b"here\n"),
        "{:?}",
        String::from_utf8_lossy(&value)
    );

    let socket = socket_of(&client);
    assert!(socket.exists());
    let report = client.shutdown().await;
    assert!(report.graceful, "{report:?}");
    assert!(
        gone(&socket).await,
        "the socket outlived the in-process plugin"
    );
}

#[tokio::test]
async fn dropping_the_client_stops_the_in_process_plugin() {
    let client = goplug::testing::connect(goplug_example_kv::serve_config(), host_plugins())
        .await
        .unwrap();
    let socket = socket_of(&client);
    drop(client);
    assert!(gone(&socket).await, "the in-process plugin kept serving");
}

#[tokio::test]
async fn a_service_registered_twice_is_a_config_error_not_a_panic() {
    let twice = goplug::plugin::ServeConfig::new(HANDSHAKE).plugins(
        goplug::plugin::Services::new()
            .grpc("kv", pb::kv_server::KvServer::new(FileKv::new("a")))
            .grpc("kv2", pb::kv_server::KvServer::new(FileKv::new("b"))),
    );
    let err = goplug::testing::connect(twice, host_plugins())
        .await
        .unwrap_err();
    match &err {
        Error::Config(text) => assert!(text.contains("\"kv2\" serves proto.KV"), "{text}"),
        other => panic!("expected a config error, got {other:?}"),
    }
    // goplug's own services are reserved too.
    let health = goplug::plugin::ServeConfig::new(HANDSHAKE).plugins(
        goplug::plugin::Services::new().grpc("health", tonic_health::server::health_reporter().1),
    );
    let err = goplug::testing::connect(health, host_plugins())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("grpc.health.v1.Health"), "{err}");
}

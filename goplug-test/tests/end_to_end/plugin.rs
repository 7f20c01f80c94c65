//! The Rust plugin side, observed from outside: its cookie check, its exact
//! handshake line, the services it registers, SIGINT, and shutdown.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use goplug::host::{Channel, Client, PluginSet};
use goplug_example_kv::{HANDSHAKE, pb::kv_client::KvClient};
use goplug_test::{FAKE, leftovers, run_with_timeout};

#[test]
fn prints_exactly_one_go_plugin_handshake_line() {
    let sockets = tempfile::tempdir().unwrap();
    let mut child = Command::new(&FAKE)
        .arg("kv")
        .env("BASIC_PLUGIN", "hello")
        .env("PLUGIN_PROTOCOL_VERSIONS", "1")
        .env("PLUGIN_UNIX_SOCKET_DIR", sockets.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();

    assert!(line.ends_with("|grpc|\n"), "{line:?}");
    let fields: Vec<&str> = line.trim_end().split('|').collect();
    assert_eq!(fields.len(), 6, "{line:?}");
    assert_eq!(&fields[..3], ["1", "1", "unix"]);
    let socket = std::path::Path::new(fields[3]);
    assert!(socket.starts_with(sockets.path()), "{line:?}");
    assert_eq!(fields[4], "grpc");
    assert_eq!(fields[5], "", "no certificate without PLUGIN_CLIENT_CERT");
}

#[test]
fn misconfigured_port_range_is_a_clear_error() {
    let output = run_with_timeout(
        Command::new(&FAKE)
            .arg("kv-tcp")
            .env("BASIC_PLUGIN", "hello")
            .env("PLUGIN_MIN_PORT", "20000")
            .env("PLUGIN_MAX_PORT", "10000"),
        Duration::from_secs(10),
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "PLUGIN_MIN_PORT (20000) must be less than or equal to PLUGIN_MAX_PORT (10000)"
        ),
        "{stderr}"
    );
}

#[test]
fn a_too_long_socket_path_is_reported_before_the_handshake() {
    let base = tempfile::tempdir().unwrap();
    let deep = base.path().join("d".repeat(100));
    std::fs::create_dir(&deep).unwrap();
    let output = run_with_timeout(
        Command::new(&FAKE)
            .arg("kv")
            .env("BASIC_PLUGIN", "hello")
            .env("PLUGIN_UNIX_SOCKET_DIR", &deep),
        Duration::from_secs(10),
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unix socket path") && stderr.contains("over the limit of 107"),
        "{stderr}"
    );
    assert!(
        leftovers(&deep).is_empty(),
        "the socket directory was left behind"
    );
}

async fn start(sockets: &std::path::Path, work: &std::path::Path) -> Client {
    let mut command = Command::new(&FAKE);
    command.arg("kv").current_dir(work);
    Client::builder(HANDSHAKE)
        .plugins(PluginSet::new().grpc::<KvClient<Channel>>("kv"))
        .command(command)
        .unix_socket_dir(sockets)
        .start_timeout(Duration::from_secs(20))
        .start()
        .await
        .unwrap()
}

#[tokio::test]
async fn sigint_is_ignored_like_a_go_plugin() {
    let (sockets, work) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let client = start(sockets.path(), work.path()).await;
    let pid = nix::unistd::Pid::from_raw(client.pid().expect("a local plugin has a pid") as i32);
    for _ in 0..3 {
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!client.exited());
    client.ping().await.unwrap();
    let report = client.shutdown().await;
    assert!(
        report.graceful && report.status.unwrap().success(),
        "{report:?}"
    );
}

#[tokio::test]
async fn sigterm_shuts_down_cleanly() {
    let (sockets, work) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let client = start(sockets.path(), work.path()).await;
    let goplug::handshake::PluginAddress::Unix(socket) = client.address().clone() else {
        panic!("expected a unix socket");
    };
    let pid = nix::unistd::Pid::from_raw(client.pid().expect("a local plugin has a pid") as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    assert!(client.wait_exit(Duration::from_secs(2)).await);
    assert_eq!(client.exit_status().and_then(|s| s.code()), Some(0));
    assert!(!socket.exists(), "the plugin left its socket behind");
    client.shutdown().await;
}

#[tokio::test]
async fn shutdown_request_exits_promptly_and_removes_the_socket() {
    let (sockets, work) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let client = start(sockets.path(), work.path()).await;
    let socket = match client.address() {
        goplug::handshake::PluginAddress::Unix(path) => path.clone(),
        other => panic!("expected a unix socket, got {other}"),
    };
    assert!(socket.exists());
    // Talk to the controller directly: the plugin must answer and then exit.
    let mut controller =
        goplug::grpc::pb::grpc_controller_client::GrpcControllerClient::new(client.channel());
    controller
        .shutdown(goplug::grpc::pb::Empty {})
        .await
        .unwrap();
    assert!(
        client.wait_exit(Duration::from_secs(2)).await,
        "plugin did not exit within 2 s"
    );
    assert_eq!(client.exit_status().and_then(|s| s.code()), Some(0));
    assert!(!socket.exists(), "the plugin left its socket behind");
    client.shutdown().await;
    assert!(leftovers(sockets.path()).is_empty());
}

#[tokio::test]
async fn registers_go_plugins_services_and_reflection() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let (sockets, work) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let client = start(sockets.path(), work.path()).await;
    let mut reflection = ServerReflectionClient::new(client.channel());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response {response:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "plugin.GRPCBroker",
            "plugin.GRPCController",
            "plugin.GRPCStdio",
            "proto.KV",
        ]
    );
    client.shutdown().await;
}

/// `ServeConfig::runtime(CurrentThread)`: the plugin serves and stops as
/// usual, with fewer threads than on the default multi-thread runtime.
#[tokio::test]
async fn a_current_thread_plugin_serves_with_fewer_threads() {
    let mut threads = Vec::new();
    for runtime in ["multi", "current"] {
        let s = goplug_test::Harness::shared();
        let client = s
            .kv_host(s.fake_with_env("kv", &[("FAKE_RUNTIME", runtime)]))
            .start()
            .await
            .expect("start");
        let mut kv = client
            .dispense_named::<KvClient<Channel>>("kv")
            .expect("kv");
        kv.put(goplug_example_kv::pb::PutRequest {
            key: "k".to_owned(),
            value: b"v".to_vec(),
        })
        .await
        .expect("put");
        let pid = client.pid().expect("a launched plugin");
        threads.push(goplug_test::threads(&pid.to_string()).expect("plugin threads"));
        let report = client.shutdown().await;
        assert!(report.graceful, "{runtime}: {report:?}");
        s.assert_clean().await;
    }
    let (multi, current) = (threads[0], threads[1]);
    if std::thread::available_parallelism().map_or(1, usize::from) > 1 {
        assert!(
            current < multi,
            "current-thread {current}, multi-thread {multi}"
        );
    }
}

//! go-plugin's bidirectional example in every pairing, with and without
//! AutoMTLS: the plugin calls back into the host through the broker.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use goplug::host::{Channel, Client, PluginSet, shell_command};
use goplug_example_bidirectional::{HANDSHAKE, pb, pb::counter_client::CounterClient};
use goplug_test::{go_bin, run_with_timeout};

const RUST_HOST: &str = env!("CARGO_BIN_EXE_counter");
const RUST_PLUGIN: &str = env!("CARGO_BIN_EXE_counter-rust-grpc");

fn run(host: &Path, plugin: &Path, dir: &Path, auto_mtls: bool, args: &[&str]) -> Output {
    run_mode(host, plugin, dir, (auto_mtls, false), args)
}

/// Runs the Rust host with goplug's default sandbox on the plugin.
fn run_sandboxed(
    plugin: &Path,
    dir: &Path,
    (auto_mtls, multiplex): (bool, bool),
    args: &[&str],
) -> Output {
    let flag = |on: bool| if on { "1" } else { "0" };
    run_with_timeout(
        Command::new(RUST_HOST)
            .args(args)
            .current_dir(dir)
            .env("COUNTER_PLUGIN", plugin)
            .env("COUNTER_AUTOMTLS", flag(auto_mtls))
            .env("COUNTER_MULTIPLEX", flag(multiplex))
            .env("COUNTER_SANDBOX", "1"),
        Duration::from_secs(60),
    )
}

/// Runs `host` with AutoMTLS and broker multiplexing on or off, in `dir`,
/// which is its `TMPDIR` too: go-plugin's host gives the plugin no socket
/// directory, and a multiplexed Go plugin never removes its socket.
fn run_mode(
    host: &Path,
    plugin: &Path,
    dir: &Path,
    (auto_mtls, multiplex): (bool, bool),
    args: &[&str],
) -> Output {
    let flag = |on: bool| if on { "1" } else { "0" };
    run_with_timeout(
        Command::new(host)
            .args(args)
            .current_dir(dir)
            .env("TMPDIR", dir)
            .env("COUNTER_PLUGIN", plugin)
            .env("COUNTER_AUTOMTLS", flag(auto_mtls))
            .env("COUNTER_MULTIPLEX", flag(multiplex)),
        Duration::from_secs(60),
    )
}

/// The go-plugin and goplug sockets (`plugin*`) directly in `dir`.
fn sockets_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("plugin"))
        .collect();
    names.sort();
    names
}

#[test]
fn the_plugin_calls_back_into_the_host_in_every_pairing() {
    let hosts = [
        ("go", go_bin("bidirectional-host")),
        ("rust", PathBuf::from(RUST_HOST)),
    ];
    let plugins = [
        ("go", go_bin("bidirectional-plugin-go")),
        ("rust", PathBuf::from(RUST_PLUGIN)),
    ];
    for mode @ (auto_mtls, multiplex) in
        [(false, false), (true, false), (false, true), (true, true)]
    {
        for (host_name, host) in &hosts {
            for (plugin_name, plugin) in &plugins {
                let case = format!(
                    "{host_name} host, {plugin_name} plugin, AutoMTLS {auto_mtls}, multiplexed {multiplex}"
                );
                let dir = tempfile::tempdir().unwrap();
                for value in ["3", "4"] {
                    let put = run_mode(host, plugin, dir.path(), mode, &["put", "a", value]);
                    assert!(put.status.success(), "{case}: {put:?}");
                    assert!(put.stdout.is_empty(), "{case}: {put:?}");
                }
                let get = run_mode(host, plugin, dir.path(), mode, &["get", "a"]);
                assert_eq!(
                    String::from_utf8_lossy(&get.stdout),
                    "7\n",
                    "{case}: {get:?}"
                );
                let stored = std::fs::read_to_string(dir.path().join("kv_a")).unwrap();
                assert_eq!(stored, r#"{"Value":7}"#, "{case}");
                // No socket left in the TMPDIR, but a multiplexed Go
                // plugin's: go-plugin closes its yamux session, never the
                // listener under it.
                if !(*plugin_name == "go" && multiplex) {
                    assert_eq!(sockets_in(dir.path()), Vec::<String>::new(), "{case}");
                }
            }
        }
    }
}

/// The default sandbox leaves everything the example needs: the plugin's
/// socket, the host's brokered socket it dials back, AutoMTLS, the
/// multiplexed broker, the working directory it keeps its file in.
#[test]
fn a_sandboxed_plugin_still_calls_back_into_the_host() {
    let plugins = [
        ("go", go_bin("bidirectional-plugin-go")),
        ("rust", PathBuf::from(RUST_PLUGIN)),
    ];
    for mode @ (auto_mtls, multiplex) in [(false, false), (true, false), (true, true)] {
        for (plugin_name, plugin) in &plugins {
            let case =
                format!("{plugin_name} plugin, AutoMTLS {auto_mtls}, multiplexed {multiplex}");
            let dir = tempfile::tempdir().unwrap();
            for value in ["3", "4"] {
                let put = run_sandboxed(plugin, dir.path(), mode, &["put", "a", value]);
                assert!(put.status.success(), "{case}: {put:?}");
            }
            let get = run_sandboxed(plugin, dir.path(), mode, &["get", "a"]);
            assert_eq!(
                String::from_utf8_lossy(&get.stdout),
                "7\n",
                "{case}: {get:?}"
            );
        }
    }
}

#[test]
fn hosts_report_errors_alike() {
    for host in [go_bin("bidirectional-host"), PathBuf::from(RUST_HOST)] {
        let dir = tempfile::tempdir().unwrap();
        let get = run(
            &host,
            Path::new(RUST_PLUGIN),
            dir.path(),
            false,
            &["get", "missing"],
        );
        assert_eq!(get.status.code(), Some(1), "{get:?}");
        let stdout = String::from_utf8_lossy(&get.stdout);
        assert!(
            stdout.starts_with("Error: ") && stdout.contains("kv_missing"),
            "{stdout}"
        );
        let other = run(&host, Path::new(RUST_PLUGIN), dir.path(), false, &["frob"]);
        assert_eq!(
            String::from_utf8_lossy(&other.stdout),
            "Please only use 'get' or 'put'\n"
        );
    }
}

#[tokio::test]
async fn a_callback_id_that_was_never_served_times_out_cleanly() {
    // Both plugins dial the id they are given; nobody announced 999.
    for plugin in [
        go_bin("bidirectional-plugin-go"),
        PathBuf::from(RUST_PLUGIN),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut command = shell_command(format!("exec '{}'", plugin.display()));
        command.current_dir(dir.path());
        let client = Client::builder(HANDSHAKE)
            .plugins(PluginSet::new().grpc::<CounterClient<Channel>>("counter"))
            .command(command)
            .unix_socket_dir(dir.path())
            .start()
            .await
            .unwrap();
        let mut counter: CounterClient<Channel> = client.dispense_named("counter").unwrap();
        let started = std::time::Instant::now();
        let status = counter
            .put(pb::PutRequest {
                add_server: 999,
                key: "a".into(),
                value: 1,
            })
            .await
            .unwrap_err();
        assert!(
            status
                .message()
                .contains("timeout waiting for connection info"),
            "{status:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(15));
        assert!(client.shutdown().await.graceful);
    }
}

#[tokio::test]
async fn with_multiplexing_a_callback_id_never_served_fails_at_once() {
    // The knock for 999 is answered with an error instead of a timeout.
    for plugin in [
        go_bin("bidirectional-plugin-go"),
        PathBuf::from(RUST_PLUGIN),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut command = shell_command(format!("exec '{}'", plugin.display()));
        command.current_dir(dir.path());
        let client = Client::builder(HANDSHAKE)
            .plugins(PluginSet::new().grpc::<CounterClient<Channel>>("counter"))
            .command(command)
            .unix_socket_dir(dir.path())
            .grpc_broker_multiplex(true)
            .start()
            .await
            .unwrap();
        assert!(client.broker_multiplexed());
        let mut counter: CounterClient<Channel> = client.dispense_named("counter").unwrap();
        let started = std::time::Instant::now();
        let status = counter
            .put(pb::PutRequest {
                add_server: 999,
                key: "a".into(),
                value: 1,
            })
            .await
            .unwrap_err();
        assert!(
            status
                .message()
                .contains("failed to knock for id 999: no listener for id 999"),
            "{}: {status:?}",
            plugin.display()
        );
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
        // The session survives the refused knock: a served callback works.
        let broker = client.broker();
        let id = broker.next_id();
        let helper = broker
            .accept_and_serve(
                id,
                pb::add_helper_server::AddHelperServer::new(goplug_example_bidirectional::Adder),
            )
            .await
            .unwrap();
        counter
            .put(pb::PutRequest {
                add_server: id,
                key: "a".into(),
                value: 5,
            })
            .await
            .unwrap();
        helper.stop();
        assert!(client.shutdown().await.graceful);
    }
}

#[tokio::test]
async fn with_multiplexing_the_host_dials_an_id_the_rust_plugin_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = shell_command(format!("exec '{RUST_PLUGIN}'"));
    command.current_dir(dir.path());
    let client = Client::builder(HANDSHAKE)
        .plugins(PluginSet::new().grpc::<CounterClient<Channel>>("counter"))
        .command(command)
        .unix_socket_dir(dir.path())
        .grpc_broker_multiplex(true)
        .start()
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let err = client.broker().dial(42).await.unwrap_err();
    assert!(
        matches!(err, goplug::Error::Broker { id: 42, .. })
            && err.to_string().contains("no listener for id 42"),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
    client.ping().await.unwrap();
    assert!(client.shutdown().await.graceful);
}

#[tokio::test]
async fn the_host_dials_a_server_the_plugin_never_announced() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = shell_command(format!("exec '{RUST_PLUGIN}'"));
    command.current_dir(dir.path());
    let client = Client::builder(HANDSHAKE)
        .plugins(PluginSet::new().grpc::<CounterClient<Channel>>("counter"))
        .command(command)
        .unix_socket_dir(dir.path())
        .start()
        .await
        .unwrap();
    let err = client.broker().dial(42).await.unwrap_err();
    assert!(
        matches!(err, goplug::Error::Broker { id: 42, .. })
            && err
                .to_string()
                .contains("timeout waiting for connection info"),
        "{err:?}"
    );
    assert!(client.shutdown().await.graceful);
}

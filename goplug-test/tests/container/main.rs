//! The container runner against Podman's Docker-compatible API: a Go
//! plugin (go-plugin's KV example, built static) and a Rust one (with its
//! libraries copied into an empty image) run as containers, are called,
//! stopped, and leave no container, socket or service behind. Each test
//! starts a Podman service of its own and builds its image once.
//!
//! Needs `podman` and `runc` (CI installs them); fails without them.

mod podman;

use std::process::Command;

use goplug::Error;
use goplug::host::{Channel, Client, ClientBuilder, ContainerRunner, PluginSet};
use goplug_example_kv::{HANDSHAKE, pb::kv_client::KvClient};
use goplug_test::{FAKE, Harness, leftovers, put_get, settle, step};
use podman::Podman;

/// A KV host for `command` run by `runner`, with the harness's socket
/// directory.
fn host(h: &Harness, command: Command, runner: ContainerRunner) -> ClientBuilder {
    Client::builder(HANDSHAKE)
        .plugins(PluginSet::new().grpc::<KvClient<Channel>>("kv"))
        .command(command)
        .unix_socket_dir(&h.sockets)
        .start_timeout(step())
        .shutdown_grace(grace())
        .runner(runner)
}

/// The grace period of a container plugin's shutdown. Podman reports an
/// exit only once its cleanup process ran (the container is `stopped`
/// until then): under load that outlasts go-plugin's 2 s, and a plugin
/// that stopped would be counted as killed.
fn grace() -> std::time::Duration {
    step()
}

async fn assert_no_container(podman: &Podman, what: &str) {
    let deadline = std::time::Instant::now() + settle();
    loop {
        let left = podman.containers().await;
        if left.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {:?}: {left:?}",
            settle()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Start, put/get, graceful shutdown with exit status 0, nothing left;
/// then a failed start and a dropped client, each leaving nothing.
async fn exercise(h: &Harness, podman: &Podman, image: &str, command: impl Fn() -> Command) {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("goplug=debug")
        .try_init();
    let runner = || ContainerRunner::new(image).engine(podman.endpoint());
    let client = host(h, command(), runner())
        .start()
        .await
        .expect("the plugin starts in a container");
    assert_eq!(client.pid(), None, "a container has no host pid");
    let value = put_get(&client, "boxed", "hello").await;
    assert!(
        value.starts_with("hello\n\nWritten from plugin"),
        "{value:?}"
    );
    assert_eq!(
        podman.containers().await.len(),
        1,
        "one container while it runs"
    );
    assert!(
        !leftovers(&h.sockets).is_empty(),
        "the plugin's socket is in the host's directory"
    );
    let report = client.shutdown().await;
    assert!(report.graceful, "{report:?}");
    assert_eq!(report.status.and_then(|s| s.code()), Some(0), "{report:?}");
    let left = podman.containers().await;
    assert!(left.is_empty(), "containers after shutdown: {left:?}");
    assert_eq!(leftovers(&h.sockets), Vec::<std::path::PathBuf>::new());

    // The plugin refuses a host with the wrong cookie and exits 1 before
    // its handshake: the error has its status and its stderr.
    let wrong = goplug::HandshakeConfig::new(1, "BASIC_PLUGIN", "not-hello");
    let err = Client::builder(wrong)
        .plugins(PluginSet::new().grpc::<KvClient<Channel>>("kv"))
        .command(command())
        .unix_socket_dir(&h.sockets)
        .start_timeout(step())
        .shutdown_grace(grace())
        .runner(runner())
        .start()
        .await
        .expect_err("a plugin with another cookie exits");
    let Error::ExitedBeforeHandshake { status, stderr } = &err else {
        panic!("not an early exit: {err}");
    };
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{err}");
    assert!(
        stderr.0.contains("plugin"),
        "the container's stderr is the plugin's log: {err}"
    );
    assert!(
        podman.containers().await.is_empty(),
        "a failed start leaves no container"
    );
    assert_eq!(leftovers(&h.sockets), Vec::<std::path::PathBuf>::new());

    // A client dropped without shutdown kills and removes its container.
    let client = host(h, command(), runner())
        .start()
        .await
        .expect("a second start");
    drop(client);
    assert_no_container(podman, "the dropped client's container is removed").await;
}

#[test]
fn go_plugin_runs_in_a_container_and_leaves_nothing() {
    let podman = Podman::start();
    let image = podman.build_image(
        "goplug-kv-go",
        &[(
            "/plugin".to_owned(),
            podman::static_go_plugin("kv-plugin-go-grpc"),
        )],
    );
    Harness::shared().run(async |h| {
        exercise(h, &podman, &image, || Command::new("kv-plugin-go-grpc")).await;

        // A start cut short at any step (looking up the image, creating,
        // attaching, starting, the handshake) leaves no container.
        for ms in [1, 20, 100, 300, 1000] {
            let started = host(
                h,
                Command::new("kv"),
                ContainerRunner::new(&image).engine(podman.endpoint()),
            )
            .start_timeout(std::time::Duration::from_millis(ms))
            .start()
            .await;
            match started {
                Ok(client) => assert!(client.shutdown().await.graceful),
                Err(e) => assert!(matches!(e, Error::StartTimeout { .. }), "{ms} ms: {e}"),
            }
            assert_no_container(&podman, &format!("a start cut short after {ms} ms")).await;
        }
        assert_eq!(leftovers(&h.sockets), Vec::<std::path::PathBuf>::new());

        // The image must be in the store: goplug never pulls.
        let missing = format!("sha256:{}", "0".repeat(64));
        let err = host(
            h,
            Command::new("kv"),
            ContainerRunner::new(&missing).engine(podman.endpoint()),
        )
        .start()
        .await
        .expect_err("no such image");
        let text = err.to_string();
        assert!(matches!(err, Error::Container { .. }), "{err:?}");
        assert!(
            text.contains(&missing) && text.contains("never pulls"),
            "{text}"
        );

        // A tag alone is refused unless allowed.
        let err = host(
            h,
            Command::new("kv"),
            ContainerRunner::new("localhost/goplug-kv-go:latest").engine(podman.endpoint()),
        )
        .start()
        .await
        .expect_err("an unpinned image");
        assert!(err.to_string().contains("not pinned by digest"), "{err}");
        let client = host(
            h,
            Command::new("kv"),
            ContainerRunner::new("localhost/goplug-kv-go:latest")
                .allow_unpinned(true)
                .engine(podman.endpoint()),
        )
        .start()
        .await
        .expect("an unpinned image, allowed");
        assert!(client.shutdown().await.graceful);
        assert!(podman.containers().await.is_empty());
    });
    podman.stop();
}

#[test]
fn rust_plugin_runs_in_a_container_and_leaves_nothing() {
    let podman = Podman::start();
    let image = podman.build_image("goplug-kv-rust", &podman::with_libraries(FAKE.path()));
    Harness::shared().run(async |h| {
        exercise(h, &podman, &image, || {
            let mut command = Command::new(FAKE.path());
            command.arg("kv");
            command
        })
        .await;
    });
    podman.stop();
}

#[test]
fn a_go_plugin_in_a_container_calls_back_through_the_broker() {
    use goplug_example_bidirectional::{Adder, pb};
    let podman = Podman::start();
    let image = podman.build_image(
        "goplug-counter-go",
        &[(
            "/plugin".to_owned(),
            podman::static_go_plugin("bidirectional-plugin-go"),
        )],
    );
    Harness::shared().run(async |h| {
        // Without multiplexing the plugin dials the host's broker socket
        // through the shared directory; with it, over its one connection.
        for multiplex in [false, true] {
            let client = Client::builder(goplug_example_bidirectional::HANDSHAKE)
                .plugins(
                    PluginSet::new().grpc::<pb::counter_client::CounterClient<Channel>>("counter"),
                )
                .command(Command::new("counter-plugin"))
                .unix_socket_dir(&h.sockets)
                .start_timeout(step())
                .auto_mtls(true)
                .grpc_broker_multiplex(multiplex)
                .shutdown_grace(grace())
                .runner(ContainerRunner::new(&image).engine(podman.endpoint()))
                .start()
                .await
                .expect("the counter plugin starts in a container");
            let mut counter: pb::counter_client::CounterClient<Channel> =
                client.dispense_named("counter").unwrap();
            for value in [3, 4] {
                let broker = client.broker();
                let id = broker.next_id();
                let helper = broker
                    .accept_and_serve(id, pb::add_helper_server::AddHelperServer::new(Adder))
                    .await
                    .expect("the host's helper serves");
                counter
                    .put(pb::PutRequest {
                        add_server: id,
                        key: "a".to_owned(),
                        value,
                    })
                    .await
                    .unwrap_or_else(|e| panic!("multiplexed {multiplex}: put {value}: {e}"));
                helper.stop();
            }
            let sum = counter
                .get(pb::GetRequest {
                    key: "a".to_owned(),
                })
                .await
                .expect("get")
                .into_inner()
                .value;
            assert_eq!(
                sum, 7,
                "multiplexed {multiplex}: the plugin added through the host"
            );
            let report = client.shutdown().await;
            assert!(report.graceful, "{report:?}");
            assert!(podman.containers().await.is_empty());
            assert_eq!(leftovers(&h.sockets), Vec::<std::path::PathBuf>::new());
        }
    });
    podman.stop();
}

#[test]
fn an_unreachable_engine_is_named() {
    let dir = tempfile::tempdir().unwrap();
    // A socket file nobody listens on, and no file at all.
    let dead = dir.path().join("dead.sock");
    drop(std::os::unix::net::UnixListener::bind(&dead).unwrap());
    let missing = dir.path().join("missing.sock");
    Harness::shared().run(async |h| {
        for socket in [&dead, &missing] {
            let runner = ContainerRunner::new(format!("sha256:{}", "a".repeat(64)))
                .engine(format!("unix://{}", socket.display()));
            let err = host(h, Command::new("kv"), runner)
                .start()
                .await
                .expect_err("no engine");
            let text = err.to_string();
            assert!(matches!(err, Error::Container { .. }), "{err:?}");
            assert!(text.contains(&socket.display().to_string()), "{text}");
            assert!(err.cause().is_some(), "the client's error is kept: {err:?}");
        }
    });
}

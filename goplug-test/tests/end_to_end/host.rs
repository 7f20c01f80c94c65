//! The Rust host against Rust test plugins and shell scripts that misbehave.
//! Every test checks that the plugin process is gone and that the socket
//! directory it was given is empty afterwards.

use std::process::Command;
use std::time::{Duration, Instant};

use goplug::host::{Channel, Client, PluginSet};
use goplug::{Error, HandshakeError, Protocol};
use goplug_example_kv::{HANDSHAKE, pb::kv_client::KvClient};
use goplug_test::{FAKE, Harness, prompt, put_get};

/// What "promptly" means in these tests: far below the 20 s start timeout
/// and the 30 s sleeps of the scripts, with room for a loaded machine.
fn bound() -> Duration {
    2 * prompt()
}

#[tokio::test]
async fn start_dispense_call_and_graceful_shutdown() {
    let s = Harness::shared();
    let client = s.kv_host(s.fake("kv")).start().await.unwrap();
    assert_eq!(client.protocol(), Protocol::Grpc);
    assert_eq!(client.negotiated_version(), 1);
    client.ping().await.unwrap();
    let value = put_get(&client, "hello", "world").await;
    assert_eq!(
        value,
        "world\n\nWritten from plugin version 1\nRead by plugin version 1\n"
    );
    assert!(!client.exited());
    let report = client.shutdown().await;
    assert!(report.graceful, "{report:?}");
    assert!(report.status.unwrap().success(), "{report:?}");
    s.assert_clean().await;
}

#[tokio::test]
async fn serves_over_tcp_when_asked() {
    let s = Harness::shared();
    let client = s.kv_host(s.fake("kv-tcp")).start().await.unwrap();
    match client.address() {
        goplug::handshake::PluginAddress::Tcp(addr) => {
            assert!(addr.ip().is_loopback());
            assert!((10000..=25000).contains(&addr.port()), "{addr}");
        }
        other => panic!("expected TCP, got {other}"),
    }
    assert_eq!(
        put_get(&client, "k", "v").await,
        "v\n\nWritten from plugin version 1\nRead by plugin version 1\n"
    );
    assert!(client.shutdown().await.graceful);
    s.assert_clean().await;
}

#[tokio::test]
async fn an_unreachable_netrpc_plugin_is_a_connect_error() {
    let s = Harness::shared();
    let err = s
        .kv_host(s.script("echo '1|1|unix|/s|netrpc|'; exec sleep 30"))
        .allowed_protocols([Protocol::Grpc, Protocol::NetRpc])
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    // The OS error is typed, not only text: no socket at that path.
    let os = err.io_error().and_then(std::io::Error::raw_os_error);
    assert_eq!(os, Some(nix::libc::ENOENT), "{err:?}");
    s.assert_clean().await;
}

#[tokio::test]
async fn unreachable_address_is_a_connect_error() {
    let s = Harness::shared();
    let err = s
        .kv_host(s.script("echo '1|1|unix|/nonexistent/goplug.sock|grpc|'; exec sleep 30"))
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    let os = err.io_error().and_then(std::io::Error::raw_os_error);
    assert_eq!(os, Some(nix::libc::ENOENT), "{err:?}");
    s.assert_clean().await;
}

#[tokio::test]
async fn a_missing_program_is_a_spawn_error() {
    let s = Harness::shared();
    let err = s
        .kv_host(Command::new("/nonexistent/plugin"))
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Spawn { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/plugin"));
    s.assert_clean().await;
}

#[tokio::test]
async fn versions_negotiate_to_the_highest_common_one() {
    let s = Harness::shared();
    let mut command = s.fake("kv");
    command.env("FAKE_VERSIONS", "1,2,3");
    let set = || PluginSet::new().grpc::<KvClient<Channel>>("kv");
    let client = Client::builder(HANDSHAKE)
        .version(2, set())
        .version(3, set())
        .version(4, set())
        .command(command)
        .unix_socket_dir(&s.sockets)
        .start()
        .await
        .unwrap();
    assert_eq!(client.negotiated_version(), 3);
    assert!(
        put_get(&client, "n", "v")
            .await
            .ends_with("Read by plugin version 3\n")
    );
    assert!(client.shutdown().await.graceful);
    s.assert_clean().await;

    let s = Harness::shared();
    let mut command = s.fake("kv");
    command.env("FAKE_VERSIONS", "1,2,3");
    let err = Client::builder(HANDSHAKE)
        .version(5, set())
        .version(6, set())
        .command(command)
        .unix_socket_dir(&s.sockets)
        .start()
        .await
        .unwrap_err();
    match &err {
        Error::Handshake(HandshakeError::AppVersionMismatch { plugin, host, .. }) => {
            assert_eq!((*plugin, host.as_slice()), (1, &[5, 6][..]));
        }
        other => panic!("expected a version mismatch, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.starts_with(
            "incompatible API version with plugin. Plugin version: 1, Client versions: [5, 6]"
        ),
        "{text}"
    );
    // A goplug plugin says on stderr which versions it has; the error shows it.
    assert!(
        text.contains("host offered [5 6], plugin supports [1 2 3]"),
        "{text}"
    );
    s.assert_clean().await;
}

#[tokio::test]
async fn a_failed_start_kills_a_plugin_behind_a_shell() {
    // `sh -c plugin` without exec: the plugin is the shell's child. go-plugin
    // kills only the shell here, and then hangs on the orphan's pipes.
    let s = Harness::shared();
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(format!(
            "'{FAKE}' pid-file '{}' kv; echo shell-survived",
            s.pid_file().display()
        ))
        .current_dir(&s.work);
    let started = Instant::now();
    let err = Client::builder(HANDSHAKE)
        .version(7, PluginSet::new())
        .command(command)
        .unix_socket_dir(&s.sockets)
        .start()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Handshake(HandshakeError::AppVersionMismatch { .. })
        ),
        "{err:?}"
    );
    assert!(started.elapsed() < bound(), "{:?}", started.elapsed());
    s.assert_clean().await;
}

#[tokio::test]
async fn dispense_is_typed() {
    let s = Harness::shared();
    let client = s.kv_host(s.fake("kv")).start().await.unwrap();
    let err = client
        .dispense_named::<KvClient<Channel>>("nope")
        .unwrap_err();
    assert!(
        matches!(err, Error::UnknownPlugin { ref name, ref available } if name == "nope" && available == &["kv"]),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("unknown plugin type: nope"));
    let err = client.dispense_named::<String>("kv").unwrap_err();
    assert!(matches!(err, Error::DispenseType { .. }), "{err:?}");
    // Named as users import it, not by its private module.
    assert!(
        err.to_string()
            .contains("KvClient<goplug::host::Channel>, not alloc::string::String"),
        "{err}"
    );
    assert!(client.shutdown().await.graceful);
    s.assert_clean().await;
}

#[tokio::test]
async fn a_crashed_plugin_is_noticed() {
    let s = Harness::shared();
    let client = s.kv_host(s.fake("kv")).start().await.unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(client.pid().expect("a local plugin has a pid") as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(client.wait_exit(Duration::from_secs(2)).await);
    assert!(client.exited());
    assert!(client.ping().await.is_err());
    let started = Instant::now();
    let report = client.shutdown().await;
    assert!(started.elapsed() < bound(), "{report:?}");
    assert!(!report.status.unwrap().success());
    // The host removes the socket directory the dead plugin could not.
    s.assert_clean().await;
}

#[tokio::test]
async fn environment_is_caller_then_host_then_go_plugin() {
    let s = Harness::shared();
    let env_file = s.work.join("env");
    let mut command = s.script(&format!(
        "export -p > '{}'; exec '{FAKE}' kv",
        env_file.display()
    ));
    command
        .env("GOPLUG_TEST_CALLER", "from-caller")
        .env("PATH", "/caller/path")
        .env("PLUGIN_MIN_PORT", "1");
    let client = s
        .kv_host(command)
        .port_range(12000, 12010)
        .start()
        .await
        .unwrap();
    let env = std::fs::read_to_string(&env_file).unwrap();
    for expected in [
        "GOPLUG_TEST_CALLER='from-caller'",
        "BASIC_PLUGIN='hello'",
        "PLUGIN_MIN_PORT='12000'",
        "PLUGIN_MAX_PORT='12010'",
        "PLUGIN_PROTOCOL_VERSIONS='1'",
    ] {
        assert!(env.contains(expected), "{expected} missing from {env}");
    }
    // The host's own PATH overrides the caller's, as in go-plugin.
    assert!(!env.contains("/caller/path"), "{env}");
    assert!(
        env.contains(&format!("PLUGIN_UNIX_SOCKET_DIR='{}", s.sockets.display())),
        "{env}"
    );
    assert!(client.shutdown().await.graceful);
    s.assert_clean().await;

    // With skip_host_env, only the caller's and go-plugin's variables.
    let s = Harness::shared();
    let env_file = s.work.join("env");
    let mut command = s.script(&format!(
        "export -p > '{}'; exec '{FAKE}' kv",
        env_file.display()
    ));
    command.env("GOPLUG_TEST_CALLER", "from-caller");
    let client = s
        .kv_host(command)
        .skip_host_env(true)
        .start()
        .await
        .unwrap();
    let env = std::fs::read_to_string(&env_file).unwrap();
    assert!(env.contains("GOPLUG_TEST_CALLER='from-caller'"), "{env}");
    assert!(!env.contains(" HOME="), "host env leaked: {env}");
    assert!(client.shutdown().await.graceful);
    s.assert_clean().await;
}

#[tokio::test]
async fn stderr_lines_reach_the_configured_writer() {
    let s = Harness::shared();
    let log = s.work.join("stderr.log");
    let file = tokio::fs::File::create(&log).await.unwrap();
    let client = s
        .kv_host(s.script(&format!(
            "echo first >&2; echo second >&2; exec '{FAKE}' kv"
        )))
        .stderr(file)
        .start()
        .await
        .unwrap();
    assert!(client.shutdown().await.graceful);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.starts_with("first\nsecond\n"), "{text:?}");
    s.assert_clean().await;
}

#[tokio::test]
async fn output_after_the_handshake_never_blocks_the_plugin() {
    let s = Harness::shared();
    let client = s.kv_host(s.fake("kv-chatty")).start().await.unwrap();
    let done = s.work.join("chatty-done");
    let started = Instant::now();
    while !done.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the plugin is stuck writing 1 MiB to stdout and stderr"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    client.ping().await.unwrap();
    assert!(client.shutdown().await.graceful);
    s.assert_clean().await;
}

#[tokio::test]
async fn a_stopped_plugin_is_killed_within_the_grace() {
    let s = Harness::shared();
    let client = s
        .kv_host(s.fake("kv"))
        .shutdown_grace(Duration::from_millis(500))
        .start()
        .await
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(client.pid().expect("a local plugin has a pid") as i32),
        nix::sys::signal::Signal::SIGSTOP,
    )
    .unwrap();
    let report = client.shutdown().await;
    assert!(!report.graceful, "{report:?}");
    assert!(report.elapsed < bound(), "{report:?}");
    s.assert_clean().await;
}

/// The host's per-plugin directory: the socket sits straight in it, as
/// go-plugin's do.
fn host_socket_dir(socket: &std::path::Path) -> &std::path::Path {
    let dir = socket.parent().unwrap();
    let name = dir.file_name().unwrap().to_string_lossy();
    assert!(name.starts_with("goplug-"), "{}", socket.display());
    dir
}

#[tokio::test]
async fn socket_group_gets_access_like_go_plugin() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // gid 1 is `daemon` on Debian; the group must exist for a name lookup.
    for group in ["1", "daemon"] {
        let s = Harness::shared();
        let client = s
            .kv_host(s.fake("kv"))
            .unix_socket_group(group)
            .start()
            .await
            .unwrap();
        let goplug::handshake::PluginAddress::Unix(socket) = client.address().clone() else {
            panic!("expected a unix socket");
        };
        let meta = std::fs::metadata(&socket).unwrap();
        assert_eq!(meta.gid(), 1, "{group}: socket group");
        assert_eq!(
            meta.permissions().mode() & 0o777,
            0o660,
            "{group}: socket mode"
        );
        let dir = host_socket_dir(&socket);
        let meta = std::fs::metadata(dir).unwrap();
        assert_eq!(meta.gid(), 1, "{group}: {}", dir.display());
        assert_eq!(
            meta.permissions().mode() & 0o777,
            0o770,
            "{group}: {}",
            dir.display()
        );
        assert!(client.shutdown().await.graceful);
        s.assert_clean().await;
    }
}

#[tokio::test]
async fn sockets_are_private_without_a_group() {
    use std::os::unix::fs::PermissionsExt;
    let s = Harness::shared();
    let client = s.kv_host(s.fake("kv")).start().await.unwrap();
    let goplug::handshake::PluginAddress::Unix(socket) = client.address().clone() else {
        panic!("expected a unix socket");
    };
    // Owner-only.
    let dir = host_socket_dir(&socket);
    let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "{}", dir.display());
    assert!(client.shutdown().await.graceful);
    s.assert_clean().await;
}

/// `ClientBuilder::run` shuts the plugin down gracefully even when the body
/// leaves early with `?`: the plugin serves to the end instead of being
/// killed, and the body's error comes back as its value.
#[tokio::test]
async fn a_scoped_client_stops_gracefully_on_an_early_error() {
    let s = Harness::shared();
    let outcome = s
        .kv_host(s.fake("kv-exit-file"))
        .run(async |client| -> goplug::Result<()> {
            client.ping().await?;
            Err(Error::Config("the body gave up early".to_owned()))?;
            unreachable!("the ? above returns");
        })
        .await
        .expect("the plugin starts");
    assert!(
        matches!(&outcome, Err(Error::Config(text)) if text == "the body gave up early"),
        "{outcome:?}"
    );
    assert!(
        s.work.join("served-to-the-end").exists(),
        "the plugin was killed instead of asked to stop"
    );
    s.assert_clean().await;
}

/// A second plugin set for the same version used to be dropped silently
/// (the first one won); now start refuses it and names the version, and
/// nothing is launched.
#[tokio::test]
async fn a_plugin_set_given_twice_is_refused() {
    let s = Harness::shared();
    let err = s
        .kv_host(s.fake("kv"))
        .plugins(PluginSet::new())
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("plugin set of app protocol version 1 was given twice"),
        "{err}"
    );
    let err = s
        .kv_host(s.fake("kv"))
        .version(1, PluginSet::new())
        .start()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("was given twice"), "{err}");
    s.assert_clean().await;
}

//! What the default profile stops, probe by probe, in a Rust and a Go
//! plugin, against the same plugins unconfined (so each check can fail).

use goplug::SandboxFeature;
use goplug::host::{Sandbox, SandboxMode};
use goplug_test::Harness;

use super::{probe, probes, start};

/// The test's files: one next to the plugin's working directory, and a
/// TCP listener of the test.
struct Fixture {
    secret: std::path::PathBuf,
    outside: std::path::PathBuf,
    inside: std::path::PathBuf,
    listener: std::net::TcpListener,
    /// An abstract Unix socket of the test, and its name.
    _abstract: std::os::unix::net::UnixListener,
    abstract_name: String,
}

impl Fixture {
    fn new(s: &Harness) -> Self {
        let next_door = s.work.parent().expect("the work dir has a parent");
        let secret = next_door.join("secret");
        std::fs::write(&secret, "the host's secret").unwrap();
        let abstract_name = format!("goplug-test-{}", s.id());
        let abstract_listener = {
            use std::os::linux::net::SocketAddrExt;
            let address =
                std::os::unix::net::SocketAddr::from_abstract_name(&abstract_name).unwrap();
            std::os::unix::net::UnixListener::bind_addr(&address).unwrap()
        };
        Self {
            _abstract: abstract_listener,
            abstract_name,
            secret,
            outside: next_door.join("planted"),
            inside: s.path("own-file"),
            listener: std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
        }
    }

    fn port(&self) -> u16 {
        self.listener.local_addr().unwrap().port()
    }
}

#[test]
fn the_default_profile_stops_reads_writes_connects_execs_and_ptrace_outside_its_rights() {
    Harness::shared().run(async |s| {
        let fixture = Fixture::new(s);
        let host_pid = std::process::id();
        for (name, command) in probes(s) {
            let client = start(s, command, Some(Sandbox::new().mode(SandboxMode::Strict))).await;
            assert_eq!(
                client.sandbox_report().map(|r| r.is_complete()),
                Some(true),
                "{name}: {:?}",
                client.sandbox_report()
            );
            let read = probe(&client, &format!("read {}", fixture.secret.display())).await;
            assert_eq!(read, "err:EACCES", "{name}: reading next door");
            let write = probe(&client, &format!("write {}", fixture.outside.display())).await;
            assert_eq!(write, "err:EACCES", "{name}: writing next door");
            assert!(
                !fixture.outside.exists(),
                "{name}: the write created the file"
            );
            let connect = probe(&client, &format!("connect 127.0.0.1:{}", fixture.port())).await;
            assert_eq!(
                connect, "err:EACCES",
                "{name}: connecting to the test's listener"
            );
            let exec = probe(&client, "exec /bin/sh").await;
            assert_eq!(exec, "err:EACCES", "{name}: running a shell");
            let ptrace = probe(&client, &format!("ptrace {host_pid}")).await;
            assert_eq!(ptrace, "err:EPERM", "{name}: tracing the host");
            let signal = probe(&client, &format!("signal {host_pid}")).await;
            assert_eq!(signal, "err:EPERM", "{name}: signalling the host");
            let abstract_socket =
                probe(&client, &format!("abstract {}", fixture.abstract_name)).await;
            assert_eq!(
                abstract_socket, "err:EPERM",
                "{name}: the test's abstract socket"
            );

            let status = probe(&client, "read /proc/self/status").await;
            assert!(status.contains("NoNewPrivs:\t1"), "{name}: {status}");
            assert!(status.contains("Seccomp:\t2"), "{name}: {status}");

            // What it must still do: its working directory, its own TMPDIR.
            let own = probe(&client, &format!("write {}", fixture.inside.display())).await;
            assert_eq!(own, "ok:", "{name}: writing its working directory");
            let temp = probe(&client, "env TMPDIR").await;
            let temp = temp.strip_prefix("ok:").unwrap_or_default().to_owned();
            assert!(
                temp.starts_with(s.sockets.to_str().unwrap()),
                "{name}: TMPDIR {temp}"
            );
            let in_temp = probe(&client, &format!("write {temp}/scratch")).await;
            assert_eq!(in_temp, "ok:", "{name}: writing its TMPDIR");
            let report = client.shutdown().await;
            assert!(report.graceful, "{name}: {report:?}");
            std::fs::remove_file(&fixture.inside).unwrap();
        }
        s.assert_clean().await;
    });
}

#[test]
fn the_same_probes_succeed_without_a_sandbox() {
    Harness::shared().run(async |s| {
        let fixture = Fixture::new(s);
        for (name, command) in probes(s) {
            let client = start(s, command, None).await;
            assert_eq!(client.sandbox_report(), None, "{name}");
            let read = probe(&client, &format!("read {}", fixture.secret.display())).await;
            assert_eq!(read, "ok:the host's secret", "{name}");
            let write = probe(&client, &format!("write {}", fixture.outside.display())).await;
            assert_eq!(write, "ok:", "{name}");
            assert!(fixture.outside.exists(), "{name}");
            std::fs::remove_file(&fixture.outside).unwrap();
            let connect = probe(&client, &format!("connect 127.0.0.1:{}", fixture.port())).await;
            assert_eq!(connect, "ok:", "{name}");
            let exec = probe(&client, "exec /bin/sh").await;
            assert!(exec.starts_with("ok:"), "{name}: {exec}");
            let signal = probe(&client, &format!("signal {}", std::process::id())).await;
            assert_eq!(signal, "ok:", "{name}");
            let abstract_socket =
                probe(&client, &format!("abstract {}", fixture.abstract_name)).await;
            assert_eq!(abstract_socket, "ok:", "{name}");
            client.shutdown().await;
        }
        s.assert_clean().await;
    });
}

#[test]
fn allowed_paths_and_ports_open_exactly_what_they_name() {
    Harness::shared().run(async |s| {
        let fixture = Fixture::new(s);
        let next_door = fixture.secret.parent().unwrap().to_path_buf();
        let extra = next_door.join("extra");
        std::fs::create_dir(&extra).unwrap();
        for (name, command) in probes(s) {
            let sandbox = Sandbox::new()
                .allow_read(&fixture.secret)
                .allow_write(&extra)
                .allow_exec("/bin/sh")
                .allow_connect(fixture.port());
            let client = start(s, command, Some(sandbox)).await;
            let read = probe(&client, &format!("read {}", fixture.secret.display())).await;
            assert_eq!(read, "ok:the host's secret", "{name}");
            let write = probe(&client, &format!("write {}", extra.join(name).display())).await;
            assert_eq!(write, "ok:", "{name}");
            // Still nothing else next door.
            let write = probe(&client, &format!("write {}", fixture.outside.display())).await;
            assert_eq!(write, "err:EACCES", "{name}");
            let connect = probe(&client, &format!("connect 127.0.0.1:{}", fixture.port())).await;
            assert_eq!(connect, "ok:", "{name}");
            let exec = probe(&client, "exec /bin/sh").await;
            assert!(exec.starts_with("ok:"), "{name}: {exec}");
            client.shutdown().await;
        }
        s.assert_clean().await;
    });
}

#[test]
fn a_network_namespace_leaves_the_plugin_no_network_but_its_socket() {
    Harness::shared().run(async |s| {
        let fixture = Fixture::new(s);
        for (name, command) in probes(s) {
            let sandbox = Sandbox::new().allow_net(true).network_namespace(true);
            let client = start(s, command, Some(sandbox)).await;
            let report = client.sandbox_report().cloned().unwrap_or_default();
            if report.lacks(SandboxFeature::UserNamespace) {
                eprintln!("{name}: no user namespaces here: {report:?}");
                client.shutdown().await;
                continue;
            }
            let connect = probe(&client, &format!("connect 127.0.0.1:{}", fixture.port())).await;
            assert_eq!(connect, "err:ENETUNREACH", "{name}");
            assert!(client.shutdown().await.graceful, "{name}");
        }
        s.assert_clean().await;
    });
}

#[test]
fn a_sandbox_with_a_custom_runner_or_a_reattach_is_refused() {
    Harness::shared().run(async |s| {
        let runner = s
            .kv_host(s.command(&goplug_test::SANDBOX_PROBE))
            .runner(goplug::host::LocalRunner::new())
            .sandbox(Sandbox::new())
            .start()
            .await
            .expect_err("a custom runner confines its plugins itself");
        assert!(
            matches!(runner, goplug::Error::Config(ref m) if m.contains("runner")),
            "{runner}"
        );
        let config = goplug::reattach::ReattachConfig::new(
            goplug::Protocol::Grpc,
            1,
            goplug::handshake::PluginAddress::Unix("/nonexistent".into()),
            std::process::id(),
        );
        let reattach = s
            .kv_host(s.command("/nonexistent"))
            .sandbox(Sandbox::new())
            .reattach(config)
            .start()
            .await
            .expect_err("a plugin the host did not launch");
        assert!(
            matches!(reattach, goplug::Error::Config(ref m) if m.contains("sandbox")),
            "{reattach}"
        );
    });
}

/// A pinned binary is executed through the descriptor that was hashed;
/// the sandbox lets exactly that file run. (The Go probe only: hashing a
/// debug build of the Rust one takes seconds.)
#[test]
fn a_checksummed_plugin_runs_sandboxed() {
    Harness::shared().run(async |s| {
        for (name, command) in probes(s).into_iter().filter(|(name, _)| *name == "go") {
            let program = std::path::PathBuf::from(command.get_program());
            let sum = goplug::host::Checksum::of_file(&program).unwrap();
            let client = s
                .kv_host(command)
                .checksum(sum)
                .sandbox(Sandbox::new().mode(SandboxMode::Strict))
                .start()
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let exec = probe(&client, "exec /bin/sh").await;
            assert_eq!(exec, "err:EACCES", "{name}");
            assert!(client.shutdown().await.graceful, "{name}");
        }
        s.assert_clean().await;
    });
}

/// Alone in its process, so that the fd count means something: the
/// ruleset, the path descriptors and the report pipe are all closed,
/// after a launch that served and after ones that failed at each stage.
#[test]
fn sandboxed_launches_leave_no_descriptor_process_or_file_behind() {
    Harness::exclusive().run(async |s| {
        for (name, command) in probes(s) {
            let client = start(s, command, Some(Sandbox::new().memory_limit(2 << 30))).await;
            let own = probe(&client, &format!("write {}", s.path(name).display())).await;
            assert_eq!(own, "ok:", "{name}");
            assert!(client.shutdown().await.graceful, "{name}");
        }
        // Fails while preparing: a path to allow that does not exist.
        let missing = s
            .kv_host(s.command(&goplug_test::SANDBOX_PROBE))
            .sandbox(Sandbox::new().allow_read(s.path("missing")))
            .start()
            .await
            .expect_err("an allowed path that does not exist");
        assert!(
            matches!(missing, goplug::Error::Sandbox { .. }),
            "{missing}"
        );
        // Fails after the spawn: without its socket directory a plugin
        // cannot serve, and says so before it exits.
        for (name, command) in probes(s) {
            let failed = s
                .kv_host(command)
                .sandbox(Sandbox::new().writable_socket_dir(false))
                .start()
                .await
                .expect_err("a plugin that cannot create its socket");
            assert!(
                matches!(failed, goplug::Error::ExitedBeforeHandshake { .. }),
                "{name}: {failed}"
            );
            assert!(
                failed
                    .to_string()
                    .to_lowercase()
                    .contains("permission denied"),
                "{name}: {failed}"
            );
        }
        // The harness checks fds, processes and files once the runtime is gone.
    });
}

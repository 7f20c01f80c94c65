//! Reliability suite, series B: runtime faults and lifecycle
//! (`research/reliability.md` §5, T12–T22): T12 a crash mid-call, T13
//! SIGKILL under 100 calls, T14 a stopped plugin, T15 a plugin ignoring
//! shutdown, T16 a descendant holding the pipes, T17 shutdown after the
//! plugin's own exit, T18 a dropped client, T19 the host dies, T20 a new
//! host reattaches, T21 reattach to a decoy pid, T22 reattach to something
//! else. Every test runs under a [`Harness::exclusive`]: its processes
//! gone, no zombies, fds and socket dir at baseline.

use std::os::unix::process::ExitStatusExt as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use goplug::handshake::PluginAddress;
use goplug::host::{Channel, Client, ClientBuilder};
use goplug::reattach::ReattachConfig;
use goplug::{Error, Protocol};
use goplug_example_kv::pb;
use goplug_test::{
    FAKE, FAULT, GRACE, Harness, LIFECYCLE_HOST, PluginLogs, prompt, scaled, signal,
};
use nix::sys::signal::Signal;

type Kv = pb::kv_client::KvClient<Channel>;

fn host(h: &Harness, command: Command) -> ClientBuilder {
    h.kv_host(command)
}

/// Starts the plugin (bounded) and tracks its pid.
async fn start(h: &Harness, builder: ClientBuilder) -> Client {
    let client = tokio::time::timeout(Duration::from_secs(20), builder.start())
        .await
        .expect("start is bounded")
        .expect("the plugin starts");
    h.track(client.pid().expect("a launched plugin"));
    client
}

fn kv(client: &Client) -> Kv {
    client.dispense_named("kv").expect("the kv plugin")
}

/// `Get(key)`, bounded by `within`; the value as text.
async fn get(client: &Client, key: &str, within: Duration) -> Result<String, tonic::Status> {
    let request = pb::GetRequest {
        key: key.to_owned(),
    };
    tokio::time::timeout(within, kv(client).get(request))
        .await
        .unwrap_or_else(|_| panic!("Get({key}) took over {within:?}"))
        .map(|response| String::from_utf8_lossy(&response.into_inner().value).into_owned())
}

/// Waits until `pid` (reparented to this subreaper) has exited, and reaps it.
async fn wait_dead(pid: u32, within: Duration) {
    let started = Instant::now();
    loop {
        match goplug_test::describe(pid) {
            None => return,
            Some(process) if process.is_zombie() => {
                let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("a pid"));
                let _ = nix::sys::wait::waitpid(pid, None);
                return;
            }
            Some(process) => assert!(
                started.elapsed() < within,
                "{process:?} still runs after {within:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `pid` is stopped (SIGSTOP is delivered asynchronously).
async fn wait_stopped(pid: u32) {
    let started = Instant::now();
    while goplug_test::describe(pid).is_none_or(|process| process.state != 'T') {
        assert!(started.elapsed() < prompt(), "{pid} never stopped");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Files (sockets included) anywhere under `dir`.
fn files_under(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for path in goplug_test::leftovers(dir) {
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// T12: a plugin that crashes mid-call (abort, SIGSEGV, a panic, exit 0)
/// fails that call at once and is seen to exit; a panic reaches the host's
/// log at ERROR with its stack lines; the host carries on.
#[test]
fn t12_a_crash_mid_call_fails_the_call_and_is_noticed() {
    let logs = PluginLogs::default();
    Harness::exclusive().run_logged(logs.clone(), async |h| {
        for fault in ["abort", "segv", "panic", "exit"] {
            let mut command = h.plugin(&FAULT, "serve");
            command.env("RUST_BACKTRACE", "1");
            let client = start(h, host(h, command)).await;
            let started = Instant::now();
            let status = get(&client, fault, prompt())
                .await
                .expect_err("the plugin died under the call");
            assert!(
                matches!(
                    status.code(),
                    tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Internal
                ),
                "{fault}: {status:?}"
            );
            assert!(
                started.elapsed() < prompt(),
                "{fault}: {:?}",
                started.elapsed()
            );
            assert!(client.wait_exit(2 * prompt()).await, "{fault}: not exited");
            assert!(client.exited());
            let status = client.exit_status().expect("an exit status");
            match fault {
                "abort" => assert_eq!(status.signal(), Some(Signal::SIGABRT as i32)),
                "segv" => assert_eq!(status.signal(), Some(Signal::SIGSEGV as i32)),
                "panic" => assert_eq!(status.code(), Some(101)),
                _ => assert_eq!(status.code(), Some(0)),
            }
            let report = client.shutdown().await;
            assert!(report.elapsed < prompt(), "{fault}: {report:?}");
        }
        let errors: Vec<String> = logs
            .events()
            .into_iter()
            .filter(|(level, _, _)| *level == tracing::Level::ERROR)
            .map(|(_, message, _)| message)
            .collect();
        for wanted in [
            "panicked at",
            "the panic that was asked for",
            "stack backtrace:",
        ] {
            assert!(
                errors.iter().any(|message| message.contains(wanted)),
                "no ERROR line with {wanted:?}: {:#?}",
                logs.events()
            );
        }
    });
}

/// T13: a plugin SIGKILLed under 100 concurrent calls fails all of them at
/// once, its shutdown is prompt, and the host removes its socket.
#[test]
fn t13_sigkill_under_100_calls_fails_them_all_promptly() {
    Harness::exclusive().run(async |h| {
        let client = start(h, host(h, h.plugin(&FAULT, "serve"))).await;
        let calls: Vec<_> = (0..100)
            .map(|_| {
                let mut kv = kv(&client);
                tokio::spawn(async move {
                    kv.get(pb::GetRequest {
                        key: "block".to_owned(),
                    })
                    .await
                })
            })
            .collect();
        let waiting = Instant::now();
        while get(&client, "blocked", prompt()).await.expect("count") != "100" {
            assert!(
                waiting.elapsed() < Duration::from_secs(10),
                "the calls never all arrived"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        signal(client.pid().expect("a pid"), Signal::SIGKILL);
        let killed = Instant::now();
        let mut failed = 0;
        for call in calls {
            let result = tokio::time::timeout(Duration::from_secs(5), call)
                .await
                .expect("the call ends")
                .expect("the task");
            // The connection is gone: grpc-go says Unavailable ("transport
            // is closing"), and so does goplug's channel.
            if let Err(status) = result {
                assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
                failed += 1;
            }
        }
        assert_eq!(failed, 100);
        assert!(killed.elapsed() < 2 * prompt(), "{:?}", killed.elapsed());
        let after = get(&client, "k", prompt())
            .await
            .expect_err("the plugin is dead");
        assert_eq!(after.code(), tonic::Code::Unavailable, "{after:?}");
        let report = client.shutdown().await;
        assert!(report.elapsed < prompt(), "{report:?}");
        assert_eq!(report.status.and_then(|s| s.signal()), Some(9));
        assert_eq!(goplug_test::leftovers(h.temp_dir()), Vec::<PathBuf>::new());
    });
}

/// T14: a stopped plugin: a call with a 300 ms deadline ends at the
/// deadline, and shutdown gives up after the grace and kills it (SIGKILL
/// works on a stopped process).
#[test]
fn t14_a_stopped_plugin_times_out_calls_and_is_killed_after_the_grace() {
    Harness::exclusive().run(async |h| {
        let client = start(h, host(h, h.plugin(&FAULT, "serve"))).await;
        let pid = client.pid().expect("a pid");
        signal(pid, Signal::SIGSTOP);
        wait_stopped(pid).await;
        let mut request = tonic::Request::new(pb::GetRequest {
            key: "k".to_owned(),
        });
        request.set_timeout(Duration::from_millis(300));
        let started = Instant::now();
        let status = tokio::time::timeout(Duration::from_secs(5), kv(&client).get(request))
            .await
            .expect("the deadline is kept")
            .expect_err("nobody answers");
        // DeadlineExceeded, as grpc-go's client says (tonic's own channel
        // would say Cancelled, "Timeout expired").
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
        assert!(status.message().contains("deadline"), "{status:?}");
        assert!(
            started.elapsed() < Duration::from_millis(300) + prompt(),
            "{:?}",
            started.elapsed()
        );
        let report = client.shutdown().await;
        assert!(!report.graceful, "{report:?}");
        assert!(
            report.elapsed >= GRACE && report.elapsed < GRACE + prompt(),
            "{report:?}"
        );
        assert_eq!(report.status.and_then(|s| s.signal()), Some(9));
    });
}

/// T15: a plugin that ignores the shutdown request is killed after the
/// grace, and the report says it was forced.
#[test]
fn t15_a_plugin_ignoring_shutdown_is_forced_after_the_grace() {
    Harness::exclusive().run(async |h| {
        let client = start(h, host(h, h.plugin(&FAKE, "no-controller"))).await;
        client.ping().await.expect("it serves");
        let report = client.shutdown().await;
        assert!(!report.graceful, "not forced: {report:?}");
        assert!(
            report.elapsed >= GRACE && report.elapsed < GRACE + prompt(),
            "{report:?}"
        );
        // A configured grace is the one kept.
        let grace = Duration::from_millis(300);
        let builder = host(h, h.plugin(&FAKE, "no-controller")).shutdown_grace(grace);
        let client = start(h, builder).await;
        client.ping().await.expect("it serves");
        let report = client.shutdown().await;
        assert!(!report.graceful, "not forced: {report:?}");
        assert!(
            report.elapsed >= grace && report.elapsed < grace + prompt(),
            "{report:?}"
        );
    });
}

/// T16: a descendant that holds the plugin's stdout and stderr does not
/// hold up shutdown, and dies with the plugin's process group.
#[test]
fn t16_a_descendant_holding_the_pipes_does_not_hold_up_shutdown() {
    Harness::exclusive().run(async |h| {
        let client = start(h, host(h, h.plugin(&FAULT, "hold-pipes"))).await;
        assert!(
            h.own_processes()
                .iter()
                .any(|process| process.name == "sleep" && process.pid != client.pid().unwrap_or(0)),
            "the descendant is missing: {:?}",
            h.own_processes()
        );
        let report = client.shutdown().await;
        assert!(report.elapsed < GRACE, "{report:?}");
        // No `sleep` is left (the harness waits for it to be gone).
    });
}

/// T17: shutdown after the plugin exited on its own, or racing that exit,
/// returns promptly with its status and signals nothing.
#[test]
fn t17_shutdown_after_or_racing_the_plugins_own_exit_is_prompt() {
    Harness::exclusive().run(async |h| {
        let client = start(h, host(h, h.plugin(&FAULT, "serve"))).await;
        let _ = get(&client, "exit", prompt()).await;
        assert!(client.wait_exit(2 * prompt()).await);
        let report = client.shutdown().await;
        assert!(report.elapsed < prompt(), "{report:?}");
        assert_eq!(report.status.and_then(|s| s.code()), Some(0), "{report:?}");

        let client = start(h, host(h, h.plugin(&FAULT, "serve"))).await;
        let mut kv = kv(&client);
        let exiting = tokio::spawn(async move {
            kv.get(pb::GetRequest {
                key: "exit".to_owned(),
            })
            .await
        });
        let report = client.shutdown().await;
        assert!(report.elapsed < GRACE + prompt(), "{report:?}");
        let status = report.status.expect("an exit status");
        // Either the exit or the shutdown came first; never a kill.
        assert_eq!(status.code(), Some(0), "{report:?}");
        let _ = tokio::time::timeout(prompt(), exiting).await;
    });
}

/// T18: a client dropped without shutdown kills and reaps the plugin.
#[test]
fn t18_a_dropped_client_kills_and_reaps_the_plugin() {
    Harness::exclusive().run(async |h| {
        let client = start(h, host(h, h.plugin(&FAULT, "serve"))).await;
        let pid = client.pid().expect("a pid");
        let dropped = Instant::now();
        drop(client);
        // Blocking would mean waiting for the plugin: the 2 s grace.
        assert!(
            dropped.elapsed() < scaled(Duration::from_secs(1)),
            "drop blocked for {:?}",
            dropped.elapsed()
        );
        // Gone means reaped too: a zombie still has its /proc entry.
        goplug_test::process_gone(pid, 2 * prompt()).await;
    });
}

/// Runs `lifecycle-host ARGS` (tagged, `TMPDIR` the socket dir) and
/// returns it with the first line it printed.
fn lifecycle_host(h: &Harness, args: &[&str]) -> (std::process::Child, String) {
    let mut host = h
        .command(&LIFECYCLE_HOST)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("the lifecycle host");
    let stdout = host.stdout.take().expect("its stdout");
    let line = goplug_test::first_line(stdout, Duration::from_secs(20)).unwrap_or_default();
    (host, line)
}

/// T19: the plugin of a host that is SIGKILLed exits promptly, a Rust
/// plugin removing its socket on the way; a Go plugin dies too.
#[test]
fn t19_a_plugin_dies_with_its_killed_host_and_removes_its_socket() {
    let go_plugin = goplug_test::go_bin("kv-plugin-go-grpc");
    Harness::exclusive().run(async |h| {
        for (name, command) in [
            ("rust", format!("exec {FAULT} serve")),
            ("go", format!("exec {}", go_plugin.display())),
        ] {
            let (mut host, line) = lifecycle_host(h, &["launch", &command]);
            let report: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("{name}: the host printed {line:?}: {e}"));
            let pid = u32::try_from(report["pid"].as_u64().expect("a pid")).expect("a pid");
            host.kill().expect("SIGKILL the host");
            host.wait().expect("reap the host");
            let killed = Instant::now();
            wait_dead(pid, 2 * prompt()).await;
            assert!(
                killed.elapsed() < 2 * prompt(),
                "{name}: {:?}",
                killed.elapsed()
            );
            if name == "rust" {
                // The killed host's own (private, empty) directory is all
                // that is left.
                assert_eq!(files_under(h.temp_dir()), Vec::<PathBuf>::new());
            }
            // What the killed host and plugin could not remove.
            for path in goplug_test::leftovers(h.temp_dir()) {
                if path.is_dir() {
                    std::fs::remove_dir_all(&path).expect("a leftover directory");
                } else {
                    std::fs::remove_file(&path).expect("a leftover file");
                }
            }
        }
    });
}

/// T20: a plugin launched to keep running outlives its host, and a new
/// host reattaches to it: calls reach the same process, none is spawned.
#[test]
fn t20_a_new_host_reattaches_to_the_live_plugin() {
    Harness::exclusive().run(async |h| {
        let command = format!("exec {FAULT} serve");
        let (mut first, line) = lifecycle_host(h, &["detach", &command, "upgrade", "kept"]);
        assert!(first.wait().expect("the first host exits").success());
        let config = ReattachConfig::from_json(&line)
            .unwrap_or_else(|e| panic!("the host printed {line:?}: {e}"));
        assert!(!config.test, "{config:?}");
        let pids = || h.own_processes().iter().map(|p| p.pid).collect::<Vec<_>>();
        assert_eq!(pids(), vec![config.pid], "the plugin outlives its host");
        let pid = config.pid;
        let client = tokio::time::timeout(
            Duration::from_secs(20),
            host(h, Command::new("/nonexistent"))
                .reattach(config)
                .start(),
        )
        .await
        .expect("bounded")
        .expect("reattached");
        assert_eq!(
            get(&client, "upgrade", prompt()).await.expect("get"),
            "kept"
        );
        assert_eq!(pids(), vec![pid], "a process was spawned");
        let report = client.shutdown().await;
        assert!(report.graceful, "{report:?}");
        wait_dead(pid, prompt()).await;
    });
}

/// T20, over AutoMTLS: go-plugin cannot reattach to a plugin launched
/// with AutoMTLS; from the launch's ticket a new client can, the bare
/// reattach config alone cannot, and the taken-over socket directory goes
/// with the plugin.
#[test]
fn t20_an_auto_mtls_plugin_is_taken_over_from_its_ticket() {
    Harness::exclusive().run(async |h| {
        let launched = start(
            h,
            host(h, h.plugin(&FAKE, "kv"))
                .auto_mtls(true)
                .keep_running(true),
        )
        .await;
        kv(&launched)
            .put(pb::PutRequest {
                key: "ticket".to_owned(),
                value: b"kept".to_vec(),
            })
            .await
            .expect("put");
        let ticket = launched.reattach_ticket().expect("a launched plugin");
        assert!(ticket.has_auto_mtls(), "{ticket:?}");
        let json = ticket.to_json();
        let socket_dir = PathBuf::from(
            serde_json::from_str::<serde_json::Value>(&json).expect("JSON")["socket_dir"]
                .as_str()
                .expect("the socket directory"),
        );
        let config = launched.detach().expect("detached");
        assert_eq!(&config, ticket.config());

        let error = tokio::time::timeout(
            Duration::from_secs(20),
            host(h, Command::new("/nonexistent"))
                .start_timeout(Duration::from_secs(3))
                .reattach(config.clone())
                .start(),
        )
        .await
        .expect("bounded")
        .expect_err("the plugin talks only AutoMTLS");
        assert!(
            matches!(
                error,
                Error::Connect { .. } | Error::ReattachProcessNotFound { .. } | Error::Tls { .. }
            ),
            "{error:?}"
        );

        let ticket = goplug::host::ReattachTicket::from_json(&json).expect("the ticket reads");
        let client = tokio::time::timeout(
            Duration::from_secs(20),
            host(h, Command::new("/nonexistent"))
                .auto_mtls(true)
                .reattach_ticket(ticket)
                .start(),
        )
        .await
        .expect("bounded")
        .expect("taken over with the ticket");
        let value = get(&client, "ticket", prompt()).await.expect("get");
        assert!(value.starts_with("kept"), "{value:?}");
        assert!(client.tls_version().is_some(), "over TLS");
        let report = client.shutdown().await;
        assert!(report.graceful, "{report:?}");
        wait_dead(config.pid, prompt()).await;
        assert!(!socket_dir.exists(), "{} left behind", socket_dir.display());
    });
}

/// T21: reattaching to a live, unrelated process (as when the plugin's pid
/// was reused) with nothing at the address fails promptly and signals
/// nothing; so does a pid that is gone.
#[test]
fn t21_reattach_to_a_decoy_pid_fails_and_leaves_it_alone() {
    Harness::exclusive().run(async |h| {
        let mut decoy = h.command("sleep").arg("30").spawn().expect("a decoy");
        let mut gone = h.command("true").spawn().expect("a short process");
        let gone_pid = gone.id();
        gone.wait().expect("reaped");
        let nowhere = PluginAddress::Unix(h.temp_dir().join("nobody.sock"));
        for pid in [decoy.id(), gone_pid] {
            let config = ReattachConfig::new(Protocol::Grpc, 1, nowhere.clone(), pid);
            let started = Instant::now();
            let error = tokio::time::timeout(
                Duration::from_secs(10),
                host(h, Command::new("/nonexistent"))
                    .reattach(config)
                    .start(),
            )
            .await
            .expect("bounded")
            .expect_err("nothing to reattach to");
            assert!(started.elapsed() < prompt(), "{:?}", started.elapsed());
            assert!(
                matches!(error, Error::ReattachProcessNotFound { pid: p, .. } if p == pid),
                "{error:?}"
            );
        }
        assert!(
            decoy.try_wait().expect("try_wait").is_none(),
            "the decoy was signalled"
        );
        decoy.kill().expect("kill the decoy");
        decoy.wait().expect("reap the decoy");
    });
}

/// T22: reattaching to an address where something else answers (garbage
/// over TCP, a TLS plugin with another CA's certificate) fails within the
/// connect timeout, with a typed error.
#[test]
fn t22_reattach_to_something_else_fails_within_the_timeout() {
    Harness::exclusive().run(async |h| {
        let mut decoy = h.command("sleep").arg("30").spawn().expect("a decoy");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a listener");
        let address = listener.local_addr().expect("its address");
        let garbage = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt as _;
            let mut held = Vec::new();
            while let Ok((mut stream, _)) = listener.accept().await {
                let _ = stream.write_all(b"\x00\xffnot a plugin\r\n\r\n").await;
                held.push(stream);
            }
        });
        let config =
            ReattachConfig::new(Protocol::Grpc, 1, PluginAddress::Tcp(address), decoy.id());
        let started = Instant::now();
        let error = tokio::time::timeout(
            Duration::from_secs(10),
            host(h, Command::new("/nonexistent"))
                .start_timeout(Duration::from_secs(3))
                .reattach(config)
                .start(),
        )
        .await
        .expect("bounded")
        .expect_err("garbage is no plugin");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(
            matches!(
                error,
                Error::Connect { .. } | Error::ReattachProcessNotFound { .. }
            ),
            "{error:?}"
        );
        garbage.abort();
        decoy.kill().expect("kill the decoy");
        decoy.wait().expect("reap the decoy");

        // A TLS plugin, detached, and a host trusting another CA.
        let dir = h.scratch("t22");
        for name in ["ours", "theirs"] {
            std::fs::create_dir(dir.join(name)).expect("a pki dir");
        }
        let ours = goplug_test::pki::TestPki::generate(&dir.join("ours"));
        let theirs = goplug_test::pki::TestPki::generate(&dir.join("theirs"));
        let tls = |pki: &goplug_test::pki::TestPki| {
            goplug_test::pki::client_config(&pki.ca.display().to_string(), None)
        };
        let localhost = rustls::pki_types::ServerName::try_from("localhost").expect("a name");
        let mut command = h.plugin(&FAKE, "kv");
        command
            .env("FAKE_TLS_CERT", &ours.server_cert)
            .env("FAKE_TLS_KEY", &ours.server_key);
        let launched = start(
            h,
            host(h, command)
                .tls(tls(&ours), localhost.clone())
                .keep_running(true),
        )
        .await;
        let config = launched.detach().expect("detached");
        let started = Instant::now();
        let error = tokio::time::timeout(
            Duration::from_secs(10),
            host(h, Command::new("/nonexistent"))
                .start_timeout(Duration::from_secs(3))
                .tls(tls(&theirs), localhost.clone())
                .reattach(config.clone())
                .start(),
        )
        .await
        .expect("bounded")
        .expect_err("the certificate is not from our CA");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(matches!(error, Error::Tls { .. }), "{error:?}");
        // The right CA reaches it, and stops it.
        let client = tokio::time::timeout(
            Duration::from_secs(10),
            host(h, Command::new("/nonexistent"))
                .tls(tls(&ours), localhost)
                .reattach(config.clone())
                .start(),
        )
        .await
        .expect("bounded")
        .expect("the right CA");
        assert!(client.shutdown().await.graceful);
        wait_dead(config.pid, prompt()).await;
        let _ = std::fs::remove_dir_all(&dir);
    });
}

//! Reliability suite, series B: runtime faults and lifecycle
//! (`research/reliability.md` §5, T12–T22): T12 a crash mid-call, T13
//! SIGKILL under 100 calls, T14 a stopped plugin, T15 a plugin ignoring
//! shutdown, T16 a descendant holding the pipes, T17 shutdown after the
//! plugin's own exit, T18 a dropped client, T19 the host dies, T20 a new
//! host reattaches, T21 reattach to a decoy pid, T22 reattach to something
//! else. Every test runs under a [`Ledger`]: no descendants, no zombies,
//! fds and temp dir at baseline.

use std::os::unix::process::ExitStatusExt as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use goplug::handshake::PluginAddress;
use goplug::host::{Channel, Client, ClientBuilder, PluginSet};
use goplug::reattach::ReattachConfig;
use goplug::{Error, Protocol};
use goplug_example_kv::{HANDSHAKE, pb};
use goplug_test::{Ledger, PluginLogs, with_ledger};
use nix::sys::signal::Signal;
use tracing_subscriber::layer::SubscriberExt as _;

type Kv = pb::kv_client::KvClient<Channel>;

const FAULT: &str = env!("CARGO_BIN_EXE_fault-plugin");
const FAKE: &str = env!("CARGO_BIN_EXE_fake-plugin");
const LIFECYCLE_HOST: &str = env!("CARGO_BIN_EXE_lifecycle-host");

/// Bound on anything that should be immediate (3–5× what it takes on a
/// loaded 2-core machine).
const PROMPT: Duration = Duration::from_millis(1500);

/// The default shutdown grace (go-plugin's 2 s).
const GRACE: Duration = Duration::from_secs(2);

fn host(ledger: &Ledger, command: Command) -> ClientBuilder {
    Client::builder(HANDSHAKE)
        .plugins(PluginSet::new().grpc::<Kv>("kv"))
        .command(command)
        .unix_socket_dir(ledger.temp_dir())
        .start_timeout(Duration::from_secs(10))
}

/// A plugin command with the ledger's temp dir as its `TMPDIR`.
fn plugin(ledger: &Ledger, program: &str, mode: &str) -> Command {
    let mut command = Command::new(program);
    command.arg(mode).env("TMPDIR", ledger.temp_dir());
    command
}

/// Starts the plugin (bounded) and tracks its pid.
async fn start(ledger: &mut Ledger, builder: ClientBuilder) -> Client {
    let client = tokio::time::timeout(Duration::from_secs(20), builder.start())
        .await
        .expect("start is bounded")
        .expect("the plugin starts");
    ledger.track(client.pid().expect("a launched plugin"));
    client
}

fn kv(client: &Client) -> Kv {
    client.dispense("kv").expect("the kv plugin")
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

fn signal(pid: u32, signal: Signal) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("a pid"));
    nix::sys::signal::kill(pid, signal).expect("signal the plugin");
}

/// Waits until `pid` (reparented to this subreaper) has exited, and reaps it.
async fn wait_dead(pid: u32, within: Duration) {
    let started = Instant::now();
    loop {
        let state = goplug_test::descendants()
            .into_iter()
            .find(|process| process.pid == pid);
        match state {
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
    while !goplug_test::descendants()
        .iter()
        .any(|process| process.pid == pid && process.state == 'T')
    {
        assert!(started.elapsed() < PROMPT, "{pid} never stopped");
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
    with_ledger(async |ledger| {
        let logs = PluginLogs::default();
        let _logs =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(logs.clone()));
        for fault in ["abort", "segv", "panic", "exit"] {
            let mut command = plugin(ledger, FAULT, "serve");
            command.env("RUST_BACKTRACE", "1");
            let client = start(ledger, host(ledger, command)).await;
            let started = Instant::now();
            let status = get(&client, fault, PROMPT)
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
                started.elapsed() < PROMPT,
                "{fault}: {:?}",
                started.elapsed()
            );
            assert!(client.wait_exit(2 * PROMPT).await, "{fault}: not exited");
            assert!(client.exited());
            let status = client.exit_status().expect("an exit status");
            match fault {
                "abort" => assert_eq!(status.signal(), Some(Signal::SIGABRT as i32)),
                "segv" => assert_eq!(status.signal(), Some(Signal::SIGSEGV as i32)),
                "panic" => assert_eq!(status.code(), Some(101)),
                _ => assert_eq!(status.code(), Some(0)),
            }
            let report = client.shutdown().await;
            assert!(report.elapsed < PROMPT, "{fault}: {report:?}");
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
    with_ledger(async |ledger| {
        let client = start(ledger, host(ledger, plugin(ledger, FAULT, "serve"))).await;
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
        while get(&client, "blocked", PROMPT).await.expect("count") != "100" {
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
        assert!(killed.elapsed() < 2 * PROMPT, "{:?}", killed.elapsed());
        let after = get(&client, "k", PROMPT)
            .await
            .expect_err("the plugin is dead");
        assert_eq!(after.code(), tonic::Code::Unavailable, "{after:?}");
        let report = client.shutdown().await;
        assert!(report.elapsed < PROMPT, "{report:?}");
        assert_eq!(report.status.and_then(|s| s.signal()), Some(9));
        assert_eq!(
            goplug_test::leftovers(ledger.temp_dir()),
            Vec::<PathBuf>::new()
        );
    });
}

/// T14: a stopped plugin: a call with a 300 ms deadline ends at the
/// deadline, and shutdown gives up after the grace and kills it (SIGKILL
/// works on a stopped process).
#[test]
fn t14_a_stopped_plugin_times_out_calls_and_is_killed_after_the_grace() {
    with_ledger(async |ledger| {
        let client = start(ledger, host(ledger, plugin(ledger, FAULT, "serve"))).await;
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
            started.elapsed() < Duration::from_millis(300) + PROMPT,
            "{:?}",
            started.elapsed()
        );
        let report = client.shutdown().await;
        assert!(!report.graceful, "{report:?}");
        assert!(
            report.elapsed >= GRACE && report.elapsed < GRACE + PROMPT,
            "{report:?}"
        );
        assert_eq!(report.status.and_then(|s| s.signal()), Some(9));
    });
}

/// T15: a plugin that ignores the shutdown request is killed after the
/// grace, and the report says it was forced.
#[test]
fn t15_a_plugin_ignoring_shutdown_is_forced_after_the_grace() {
    with_ledger(async |ledger| {
        let client = start(ledger, host(ledger, plugin(ledger, FAKE, "no-controller"))).await;
        client.ping().await.expect("it serves");
        let report = client.shutdown().await;
        assert!(!report.graceful, "not forced: {report:?}");
        assert!(
            report.elapsed >= GRACE && report.elapsed < GRACE + PROMPT,
            "{report:?}"
        );
    });
}

/// T16: a descendant that holds the plugin's stdout and stderr does not
/// hold up shutdown, and dies with the plugin's process group.
#[test]
fn t16_a_descendant_holding_the_pipes_does_not_hold_up_shutdown() {
    with_ledger(async |ledger| {
        let client = start(ledger, host(ledger, plugin(ledger, FAULT, "hold-pipes"))).await;
        assert!(
            goplug_test::descendants()
                .iter()
                .any(|process| process.name == "sleep"),
            "the descendant is missing"
        );
        let report = client.shutdown().await;
        assert!(report.elapsed < GRACE, "{report:?}");
        // No `sleep` is left (the ledger waits for it to be gone).
    });
}

/// T17: shutdown after the plugin exited on its own, or racing that exit,
/// returns promptly with its status and signals nothing.
#[test]
fn t17_shutdown_after_or_racing_the_plugins_own_exit_is_prompt() {
    with_ledger(async |ledger| {
        let client = start(ledger, host(ledger, plugin(ledger, FAULT, "serve"))).await;
        let _ = get(&client, "exit", PROMPT).await;
        assert!(client.wait_exit(2 * PROMPT).await);
        let report = client.shutdown().await;
        assert!(report.elapsed < PROMPT, "{report:?}");
        assert_eq!(report.status.and_then(|s| s.code()), Some(0), "{report:?}");

        let client = start(ledger, host(ledger, plugin(ledger, FAULT, "serve"))).await;
        let mut kv = kv(&client);
        let exiting = tokio::spawn(async move {
            kv.get(pb::GetRequest {
                key: "exit".to_owned(),
            })
            .await
        });
        let report = client.shutdown().await;
        assert!(report.elapsed < GRACE + PROMPT, "{report:?}");
        let status = report.status.expect("an exit status");
        // Either the exit or the shutdown came first; never a kill.
        assert_eq!(status.code(), Some(0), "{report:?}");
        let _ = tokio::time::timeout(PROMPT, exiting).await;
    });
}

/// T18: a client dropped without shutdown kills and reaps the plugin.
#[test]
fn t18_a_dropped_client_kills_and_reaps_the_plugin() {
    with_ledger(async |ledger| {
        let client = start(ledger, host(ledger, plugin(ledger, FAULT, "serve"))).await;
        let pid = client.pid().expect("a pid");
        let dropped = Instant::now();
        drop(client);
        assert!(
            dropped.elapsed() < Duration::from_millis(200),
            "drop blocked"
        );
        // Gone means reaped too: a zombie still has its /proc entry.
        goplug_test::process_gone(pid, 2 * PROMPT).await;
    });
}

/// Runs `lifecycle-host ARGS` with the ledger's temp dir as `TMPDIR` and
/// returns it with the first line it printed.
fn lifecycle_host(ledger: &Ledger, args: &[&str]) -> (std::process::Child, String) {
    let mut host = Command::new(LIFECYCLE_HOST)
        .args(args)
        .env("TMPDIR", ledger.temp_dir())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the lifecycle host");
    let stdout = host.stdout.take().expect("its stdout");
    let line = goplug_test::first_line(stdout, Duration::from_secs(20)).unwrap_or_default();
    (host, line)
}

/// T19: the plugin of a host that is SIGKILLed exits promptly, and removes
/// its socket on the way.
#[test]
fn t19_a_plugin_dies_with_its_killed_host_and_removes_its_socket() {
    with_ledger(async |ledger| {
        let command = format!("exec {FAULT} serve");
        let (mut host, line) = lifecycle_host(ledger, &["launch", &command]);
        let report: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the host printed {line:?}: {e}"));
        let pid = u32::try_from(report["pid"].as_u64().expect("a pid")).expect("a pid");
        host.kill().expect("SIGKILL the host");
        host.wait().expect("reap the host");
        let killed = Instant::now();
        wait_dead(pid, 2 * PROMPT).await;
        assert!(killed.elapsed() < 2 * PROMPT, "{:?}", killed.elapsed());
        // The killed host's own (private, empty) directory is all that is left.
        assert_eq!(files_under(ledger.temp_dir()), Vec::<PathBuf>::new());
        for dir in goplug_test::leftovers(ledger.temp_dir()) {
            std::fs::remove_dir(&dir).expect("an empty directory");
        }
    });
}

/// T20: a plugin launched to keep running outlives its host, and a new
/// host reattaches to it: calls reach the same process, none is spawned.
#[test]
fn t20_a_new_host_reattaches_to_the_live_plugin() {
    with_ledger(async |ledger| {
        let command = format!("exec {FAULT} serve");
        let (mut first, line) = lifecycle_host(ledger, &["detach", &command, "upgrade", "kept"]);
        assert!(first.wait().expect("the first host exits").success());
        let config = ReattachConfig::from_json(&line)
            .unwrap_or_else(|e| panic!("the host printed {line:?}: {e}"));
        let before = goplug_test::descendants();
        assert_eq!(
            before.iter().map(|p| p.pid).collect::<Vec<_>>(),
            vec![config.pid],
            "the plugin outlives its host"
        );
        let pid = config.pid;
        let client = tokio::time::timeout(
            Duration::from_secs(20),
            host(ledger, Command::new("/nonexistent"))
                .reattach(config)
                .start(),
        )
        .await
        .expect("bounded")
        .expect("reattached");
        assert_eq!(get(&client, "upgrade", PROMPT).await.expect("get"), "kept");
        assert_eq!(goplug_test::descendants(), before, "a process was spawned");
        let report = client.shutdown().await;
        assert!(report.graceful, "{report:?}");
        wait_dead(pid, PROMPT).await;
    });
}

/// T21: reattaching to a live, unrelated process (as when the plugin's pid
/// was reused) with nothing at the address fails promptly and signals
/// nothing; so does a pid that is gone.
#[test]
fn t21_reattach_to_a_decoy_pid_fails_and_leaves_it_alone() {
    with_ledger(async |ledger| {
        let mut decoy = Command::new("sleep").arg("30").spawn().expect("a decoy");
        let mut gone = Command::new("true").spawn().expect("a short process");
        let gone_pid = gone.id();
        gone.wait().expect("reaped");
        let nowhere = PluginAddress::Unix(ledger.temp_dir().join("nobody.sock"));
        for pid in [decoy.id(), gone_pid] {
            let config = ReattachConfig::new(Protocol::Grpc, 1, nowhere.clone(), pid);
            let started = Instant::now();
            let error = tokio::time::timeout(
                Duration::from_secs(10),
                host(ledger, Command::new("/nonexistent"))
                    .reattach(config)
                    .start(),
            )
            .await
            .expect("bounded")
            .expect_err("nothing to reattach to");
            assert!(started.elapsed() < PROMPT, "{:?}", started.elapsed());
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
    with_ledger(async |ledger| {
        let mut decoy = Command::new("sleep").arg("30").spawn().expect("a decoy");
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
            host(ledger, Command::new("/nonexistent"))
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
        let dir = ledger.scratch("t22");
        for name in ["ours", "theirs"] {
            std::fs::create_dir(dir.join(name)).expect("a pki dir");
        }
        let ours = goplug_test::pki::TestPki::generate(&dir.join("ours"));
        let theirs = goplug_test::pki::TestPki::generate(&dir.join("theirs"));
        let tls = |pki: &goplug_test::pki::TestPki| {
            goplug_test::pki::client_config(&pki.ca.display().to_string(), None)
        };
        let localhost = rustls::pki_types::ServerName::try_from("localhost").expect("a name");
        let mut command = plugin(ledger, FAKE, "kv");
        command
            .env("FAKE_TLS_CERT", &ours.server_cert)
            .env("FAKE_TLS_KEY", &ours.server_key);
        let launched = start(
            ledger,
            host(ledger, command)
                .tls(tls(&ours), localhost.clone())
                .keep_running(true),
        )
        .await;
        let config = launched.detach().expect("detached");
        let started = Instant::now();
        let error = tokio::time::timeout(
            Duration::from_secs(10),
            host(ledger, Command::new("/nonexistent"))
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
            host(ledger, Command::new("/nonexistent"))
                .tls(tls(&ours), localhost)
                .reattach(config.clone())
                .start(),
        )
        .await
        .expect("bounded")
        .expect("the right CA");
        assert!(client.shutdown().await.graceful);
        wait_dead(config.pid, PROMPT).await;
        let _ = std::fs::remove_dir_all(&dir);
    });
}

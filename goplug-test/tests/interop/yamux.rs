//! goplug's yamux against the real hashicorp/yamux v0.1.2 (the version
//! go-plugin v1.8.0 uses), in both roles: Rust client with a Go server, and
//! Go client with a Rust server. The Go side is `interop/go`'s `yamux-peer`;
//! see its doc comment for the scenarios.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use goplug::yamux::{Config, Incoming, Mode, Session, Stream};
use goplug_test::go_bin;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::process::{Child, Command};

/// The limit on every wait in these tests.
const LIMIT: Duration = Duration::from_secs(60);

async fn within<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(LIMIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: timed out after {LIMIT:?}"))
}

/// A running `yamux-peer`, killed if the test fails before it exits.
struct GoPeer {
    child: Child,
    _dir: tempfile::TempDir,
}

/// The Go peer's yamux role.
#[derive(Clone, Copy, Debug)]
enum GoRole {
    Client,
    Server,
}

const ROLES: [GoRole; 2] = [GoRole::Client, GoRole::Server];

/// Starts `yamux-peer` in `role` with `args`, connects to it, and starts
/// our side of the session in the other role. A Go server listens, a Go
/// client dials.
async fn start(role: GoRole, args: &[&str], config: Config) -> (Session, Incoming, GoPeer) {
    let bin = tokio::task::spawn_blocking(|| go_bin("yamux-peer"))
        .await
        .expect("building interop/go");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let socket = dir.path().join("yamux.sock");
    let mut command = Command::new(bin);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let (conn, child, mode) = match role {
        GoRole::Client => {
            let listener = UnixListener::bind(&socket).expect("binding the socket");
            let child = command
                .args(["-role", "client", "-dial"])
                .arg(&socket)
                .spawn()
                .expect("spawning yamux-peer");
            let (conn, _) = within("accepting the Go client", listener.accept())
                .await
                .expect("accepting the Go client");
            (conn, child, Mode::Server)
        }
        GoRole::Server => {
            let child = command
                .args(["-role", "server", "-listen"])
                .arg(&socket)
                .spawn()
                .expect("spawning yamux-peer");
            let conn = within("connecting to the Go server", connect(&socket)).await;
            (conn, child, Mode::Client)
        }
    };
    let (session, incoming) = Session::new(conn, mode, config);
    (session, incoming, GoPeer { child, _dir: dir })
}

async fn connect(socket: &Path) -> UnixStream {
    loop {
        match UnixStream::connect(socket).await {
            Ok(conn) => return conn,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

impl GoPeer {
    /// Waits for the Go peer to exit and returns its JSON report, checking
    /// it succeeded.
    async fn report(self, what: &str) -> Value {
        let output = within(what, self.child.wait_with_output())
            .await
            .expect("waiting for yamux-peer");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "{what}: no JSON from yamux-peer ({e}): {:?}\nstderr:\n{stderr}",
                String::from_utf8_lossy(&output.stdout)
            )
        });
        assert!(
            output.status.success() && report["ok"] == true,
            "{what}: {report}\nstderr:\n{stderr}"
        );
        report
    }
}

/// Echoes every stream the peer opens until the session ends; returns how
/// many there were.
async fn echo_all(mut incoming: Incoming) -> usize {
    let mut tasks = tokio::task::JoinSet::new();
    while let Some(stream) = incoming.accept().await {
        tasks.spawn(async move {
            let (mut rd, mut wr) = tokio::io::split(stream);
            let copied = tokio::io::copy(&mut rd, &mut wr).await;
            let shut = wr.shutdown().await;
            copied.and(shut)
        });
    }
    let mut count = 0;
    while let Some(result) = tasks.join_next().await {
        result.expect("echo task").expect("echo");
        count += 1;
    }
    count
}

/// Writes `data` (then FIN) while reading to EOF; returns what was read.
async fn round_trip(stream: Stream, data: &[u8]) -> Vec<u8> {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let write = async {
        wr.write_all(data).await.expect("write");
        wr.shutdown().await.expect("shutdown");
    };
    let mut received = Vec::new();
    let read = rd.read_to_end(&mut received);
    let ((), read) = tokio::join!(write, read);
    read.expect("read");
    received
}

/// How `echoed` differs from `sent`, if it does: lengths and the first
/// differing offset, so a failure says whether bytes were lost, added or
/// changed.
fn difference(sent: &[u8], echoed: &[u8]) -> Option<String> {
    if sent == echoed {
        return None;
    }
    let first = sent.iter().zip(echoed).position(|(a, b)| a != b);
    Some(format!(
        "sent {} bytes, echoed {}; first difference at {:?}",
        sent.len(),
        echoed.len(),
        first
    ))
}

fn pattern(seed: u32, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[tokio::test]
async fn go_echoes_streams_rust_opens() {
    for role in ROLES {
        let what = format!("echo, Go {role:?}");
        let (session, _incoming, go) = start(role, &["-scenario", "echo"], Config::default()).await;
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..20u32 {
            let session = session.clone();
            tasks.spawn(async move {
                let stream = session.open().await.expect("open");
                let id = stream.id();
                let data = pattern(i, 1000 + 997 * i as usize);
                let echoed = round_trip(stream, &data).await;
                difference(&data, &echoed).map(|d| format!("stream {id} (message {i}): {d}"))
            });
        }
        // And 4 MiB each way on one stream, through Go's flow control.
        let stream = within(&what, session.open()).await.expect("open");
        let big = pattern(99, 4 << 20);
        let echoed = within(&what, round_trip(stream, &big)).await;
        assert!(echoed == big, "{what}: 4 MiB echo differs");
        while let Some(result) = within(&what, tasks.join_next()).await {
            if let Some(difference) = result.unwrap() {
                panic!("{what}: an echo differs: {difference}");
            }
        }
        session.close();
        within(&what, session.closed()).await;
        let report = go.report(&what).await;
        assert_eq!(report["streams"], 21, "{what}: {report}");
    }
}

#[tokio::test]
async fn rust_echoes_many_streams_go_opens() {
    for role in ROLES {
        let what = format!("open-many, Go {role:?}");
        let (_session, incoming, go) = start(
            role,
            &["-scenario", "open-many", "-n", "64"],
            Config::default(),
        )
        .await;
        let echo = tokio::spawn(echo_all(incoming));
        let report = go.report(&what).await;
        assert_eq!(report["streams"], 64, "{what}: {report}");
        assert_eq!(within(&what, echo).await.unwrap(), 64);
    }
}

#[tokio::test]
async fn four_mib_each_way_on_a_stream_go_opens() {
    for role in ROLES {
        let what = format!("big, Go {role:?}");
        let (_session, incoming, go) = start(role, &["-scenario", "big"], Config::default()).await;
        let echo = tokio::spawn(echo_all(incoming));
        let report = go.report(&what).await;
        assert_eq!(report["bytes"], 4 << 20, "{what}: {report}");
        assert_eq!(within(&what, echo).await.unwrap(), 1);
    }
}

#[tokio::test]
async fn keepalives_are_answered_both_ways() {
    for role in ROLES {
        let what = format!("keepalive, Go {role:?}");
        // Pings every second on both sides; a missed reply would close
        // either session within two seconds.
        let config = Config::default()
            .keepalive_interval(Some(Duration::from_secs(1)))
            .write_timeout(Duration::from_secs(1));
        let args = [
            "-scenario",
            "keepalive",
            "-keepalive",
            "1s",
            "-write-timeout",
            "1s",
            "-seconds",
            "4",
        ];
        let (session, incoming, go) = start(role, &args, config).await;
        let echo = tokio::spawn(echo_all(incoming));
        tokio::time::sleep(Duration::from_millis(3500)).await;
        assert!(!session.is_closed(), "{what}: {:?}", session.close_reason());
        let report = go.report(&what).await;
        assert_eq!(report["alive"], true, "{what}: {report}");
        assert_eq!(within(&what, echo).await.unwrap(), 1);
    }
}

#[tokio::test]
async fn a_silent_accepted_stream_does_not_kill_the_go_session() {
    for role in ROLES {
        let what = format!("open-silent, Go {role:?}");
        let args = [
            "-scenario",
            "open-silent",
            "-open-timeout",
            "2s",
            "-seconds",
            "4",
        ];
        let (_session, mut incoming, go) = start(role, &args, Config::default()).await;
        // Accept and hold the streams, never writing on them.
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Some(stream) = incoming.accept().await {
                held.push(stream);
            }
            held.len()
        });
        let report = go.report(&what).await;
        assert_eq!(report["alive"], true, "{what}: {report}");
        assert_eq!(within(&what, hold).await.unwrap(), 1);
    }
}

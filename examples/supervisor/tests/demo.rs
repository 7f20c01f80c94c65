//! `supervisor-demo` as a user runs it: go-plugin's Go KV plugin, and the
//! Rust one, SIGKILLed three times from outside; each time the supervisor
//! restarts it and calls resume, and nothing is left running at the end.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use goplug_test::go_bin;
use serde_json::Value;

const DEMO: &str = env!("CARGO_BIN_EXE_supervisor-demo");
const RUST_PLUGIN: &str = env!("CARGO_BIN_EXE_kv-rust-grpc-for-supervisor");
const RUST_NETRPC_PLUGIN: &str = env!("CARGO_BIN_EXE_kv-rust-netrpc-for-supervisor");

/// How long one event may take to arrive: generous, the machine is shared.
const EVENT_WAIT: Duration = Duration::from_secs(60);

struct Demo {
    child: std::process::Child,
    lines: mpsc::Receiver<Value>,
    seen: Vec<Value>,
}

impl Demo {
    fn start_with(plugin: &str, dir: &std::path::Path, extra: &[&str]) -> Self {
        Self::start_proto("grpc", plugin, dir, extra)
    }

    fn start_proto(proto: &str, plugin: &str, dir: &std::path::Path, extra: &[&str]) -> Self {
        let mut child = Command::new(DEMO)
            .args(["--duration", "300s", "--backoff", "100ms"])
            .args(extra)
            .env("KV_PROTO", proto)
            .env("KV_PLUGIN", format!("exec '{plugin}'"))
            .current_dir(dir)
            .stdout(Stdio::piped())
            .spawn()
            .expect("supervisor-demo runs");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line:?}"));
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The next event named `name`, skipping others.
    fn next(&mut self, name: &str) -> Value {
        loop {
            let event = self.lines.recv_timeout(EVENT_WAIT).unwrap_or_else(|e| {
                panic!(
                    "no {name:?} event within {EVENT_WAIT:?} ({e}); so far: {:#?}",
                    self.seen
                )
            });
            self.seen.push(event.clone());
            if event["event"] == name {
                return event;
            }
        }
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), signal)
            .expect("the demo is running");
    }
}

fn alive(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

fn survives_three_kills(plugin: &str) {
    survives_three_kills_over("grpc", plugin);
}

fn survives_three_kills_over(proto: &str, plugin: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut demo = Demo::start_proto(proto, plugin, dir.path(), &[]);
    let mut pids = Vec::new();
    for round in 0..4 {
        let started = demo.next("started");
        let pid = started["pid"].as_i64().expect("a pid") as i32;
        assert_eq!(started["restarts"], round, "{started}");
        let resumed = demo.next("resumed");
        assert_eq!(resumed["pid"], pid, "calls resumed on the new process");
        pids.push(pid);
        if round < 3 {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            )
            .unwrap();
            let exited = demo.next("exited");
            assert!(
                exited["status"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("SIGKILL"),
                "{exited}"
            );
            let restarting = demo.next("restarting");
            assert_eq!(restarting["attempt"], round + 1, "{restarting}");
        }
    }
    // SIGTERM ends the demo early, with its summary.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(demo.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let summary = demo.next("summary");
    assert_eq!(summary["restarts"], 3, "{summary}");
    assert_eq!(summary["stopped_in_time"], true, "{summary}");
    assert!(summary["calls_ok"].as_u64().unwrap() >= 4, "{summary}");
    let status = demo.child.wait().unwrap();
    assert!(status.success(), "{status}");
    let distinct: std::collections::HashSet<_> = pids.iter().collect();
    assert_eq!(distinct.len(), 4, "a new process each time: {pids:?}");
    // The demo reaped every plugin before it exited.
    for pid in pids {
        assert!(!alive(pid), "plugin {pid} left running");
    }
}

#[test]
fn the_go_kv_plugin_survives_three_kills() {
    survives_three_kills(&go_bin("kv-plugin-go-grpc").display().to_string());
}

#[test]
fn the_rust_kv_plugin_survives_three_kills() {
    survives_three_kills(RUST_PLUGIN);
}

#[test]
fn the_go_net_rpc_kv_plugin_survives_three_kills() {
    survives_three_kills_over(
        "netrpc",
        &go_bin("kv-plugin-go-netrpc").display().to_string(),
    );
}

#[test]
fn the_rust_net_rpc_kv_plugin_survives_three_kills() {
    survives_three_kills_over("netrpc", RUST_NETRPC_PLUGIN);
}

/// The demo (the host) SIGKILLed while its plugin runs; a new demo with
/// the same state directory adopts the same process over AutoMTLS, calls
/// resume, and its graceful end stops the plugin and removes the ticket
/// and the plugin's socket directory.
fn is_adopted_after_the_host_is_killed(plugin: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let state_arg = state.display().to_string();
    let flags = ["--state-dir", state_arg.as_str(), "--auto-mtls"];
    let mut first = Demo::start_with(plugin, dir.path(), &flags);
    let pid = first.next("started")["pid"].as_i64().expect("a pid") as i32;
    assert_eq!(first.next("resumed")["pid"], pid);
    let ticket = state.join("kv.ticket");
    let mode = std::fs::metadata(&ticket)
        .expect("a ticket is written while the plugin serves")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the ticket holds a private key");
    let socket_dir = serde_json::from_str::<Value>(&std::fs::read_to_string(&ticket).unwrap())
        .unwrap()["socket_dir"]
        .as_str()
        .expect("the ticket names the socket directory")
        .to_owned();
    first.signal(nix::sys::signal::Signal::SIGKILL);
    first.child.wait().unwrap();
    assert!(alive(pid), "the plugin outlives its killed host");

    let mut second = Demo::start_with(plugin, dir.path(), &flags);
    let adopted = second.next("adopted");
    assert_eq!(adopted["pid"], pid, "{adopted}");
    assert_eq!(second.next("resumed")["pid"], pid);
    second.signal(nix::sys::signal::Signal::SIGTERM);
    let summary = second.next("summary");
    assert_eq!(summary["restarts"], 0, "{summary}");
    assert_eq!(summary["calls_failed"], 0, "{summary}");
    assert_eq!(summary["stopped_in_time"], true, "{summary}");
    assert!(second.child.wait().unwrap().success());
    // Not the demo's child any more: it exits, and whoever inherited it
    // reaps it (a zombie has run to its end).
    let running = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
        })
    };
    let deadline = std::time::Instant::now() + EVENT_WAIT;
    while running() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!running(), "plugin {pid} left running");
    assert!(
        !ticket.exists(),
        "the ticket of a stopped plugin is removed"
    );
    assert!(
        !std::path::Path::new(&socket_dir).exists(),
        "socket directory {socket_dir} left behind"
    );
}

#[test]
fn the_go_kv_plugin_is_adopted_after_the_host_is_killed() {
    is_adopted_after_the_host_is_killed(&go_bin("kv-plugin-go-grpc").display().to_string());
}

#[test]
fn the_rust_kv_plugin_is_adopted_after_the_host_is_killed() {
    is_adopted_after_the_host_is_killed(RUST_PLUGIN);
}

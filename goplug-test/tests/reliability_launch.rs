//! Reliability suite, series A: launch and handshake
//! (`research/reliability.md` §5, T01–T11). Every test runs under a
//! [`Ledger`]: no descendants, no zombies, fds and temp dir at baseline.

use std::process::Command;
use std::time::{Duration, Instant};

use goplug::Error;
use goplug::host::{Channel, Client, ClientBuilder, PluginSet};
use goplug_example_kv::{HANDSHAKE, pb::kv_client::KvClient};
use goplug_test::Ledger;

/// Bounds leave 3–5× slack for a loaded 2-core machine.
const PROMPT: Duration = Duration::from_millis(1500);

fn host(ledger: &Ledger, command: Command) -> ClientBuilder {
    Client::builder(HANDSHAKE)
        .plugins(PluginSet::new().grpc::<KvClient<Channel>>("kv"))
        .command(command)
        .unix_socket_dir(ledger.temp_dir())
        .start_timeout(Duration::from_millis(500))
}

fn script(body: &str) -> Command {
    let mut command = Command::new("/bin/sh");
    command.arg("-c").arg(body);
    command
}

/// T01: a plugin that never prints its handshake is killed at the start
/// timeout and reaped.
#[tokio::test]
async fn t01_a_plugin_that_never_handshakes_times_out_and_is_reaped() {
    let ledger = Ledger::open();
    let started = Instant::now();
    let error = host(&ledger, script("exec sleep 60"))
        .start()
        .await
        .expect_err("no handshake");
    assert!(started.elapsed() < PROMPT, "{:?}", started.elapsed());
    assert!(matches!(error, Error::StartTimeout { .. }), "{error:?}");
    ledger.close();
}

/// The ledger itself: a plugin left unreaped and a leaked fd fail a test.
#[test]
#[should_panic(expected = "left behind")]
fn the_ledger_fails_a_test_that_leaves_a_zombie_and_an_fd() {
    let mut ledger = Ledger::open();
    let child = Command::new("true").spawn().expect("spawn true");
    ledger.track(child.id());
    std::mem::forget(child);
    std::mem::forget(std::fs::File::open("/dev/null").expect("open /dev/null"));
    ledger.close();
}

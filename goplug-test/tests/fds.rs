//! File descriptors: starting and stopping plugins leaves the host's fd
//! count where it was. In its own test binary, so no other test's fds count.

use std::process::Command;
use std::time::Duration;

use goplug::host::{Channel, Client, PluginSet};
use goplug_example_kv::{HANDSHAKE, pb::kv_client::KvClient};
use goplug_test::FAKE;

fn builder(command: Command, sockets: &std::path::Path) -> goplug::host::ClientBuilder {
    Client::builder(HANDSHAKE)
        .plugins(PluginSet::new().grpc::<KvClient<Channel>>("kv"))
        .command(command)
        .unix_socket_dir(sockets)
        .start_timeout(Duration::from_secs(20))
}

fn kv(work: &std::path::Path) -> Command {
    let mut command = Command::new(&FAKE);
    command.arg("kv").current_dir(work);
    command
}

#[tokio::test]
async fn starting_and_stopping_plugins_leaks_no_fds() {
    let work = tempfile::tempdir().unwrap();
    let sockets = tempfile::tempdir().unwrap();
    // Warm up the runtime's own fds (signal pipe, blocking pool) first.
    builder(kv(work.path()), sockets.path())
        .start()
        .await
        .unwrap()
        .shutdown()
        .await;
    let before = goplug_test::open_fds();
    for _ in 0..5 {
        let client = builder(kv(work.path()), sockets.path())
            .start()
            .await
            .unwrap();
        client.ping().await.unwrap();
        client.shutdown().await;
        let mut failing = Command::new("/bin/sh");
        failing.arg("-c").arg("echo nope >&2; exit 1");
        builder(failing, sockets.path()).start().await.unwrap_err();
        let dropped = builder(kv(work.path()), sockets.path())
            .start()
            .await
            .unwrap();
        let pid = dropped.pid().expect("a local plugin has a pid");
        drop(dropped);
        goplug_test::process_gone(pid, Duration::from_secs(5)).await;
    }
    // Background tasks of dropped clients close their pipes asynchronously.
    let mut after = goplug_test::open_fds();
    for _ in 0..50 {
        if after <= before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        after = goplug_test::open_fds();
    }
    assert!(after <= before, "fds grew from {before} to {after}");
    assert!(goplug_test::leftovers(sockets.path()).is_empty());
}

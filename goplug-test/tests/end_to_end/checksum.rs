//! Checksum verification (go-plugin's `SecureConfig`): a binary that fails
//! the check never runs, and the bytes that passed it are the bytes that run.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use goplug::Error;
use goplug::host::Checksum;
use goplug_test::{FAKE, Harness, step};

/// A private copy of the fake plugin in the scratch area.
fn plugin_copy(s: &Harness) -> PathBuf {
    let path = s.path("plugin");
    std::fs::copy(&FAKE, &path).unwrap();
    path
}

/// `program` run as the fake plugin's KV mode, writing its pid first.
fn command(s: &Harness, program: &Path) -> Command {
    let mut command = Command::new(program);
    command
        .arg("pid-file")
        .arg(s.pid_file())
        .arg("kv")
        .current_dir(&s.work);
    command
}

#[tokio::test]
async fn a_matching_checksum_starts_the_plugin() {
    let s = Harness::shared();
    let plugin = plugin_copy(&s);
    let sum = Checksum::of_file(&plugin).unwrap();
    let client = s
        .kv_host(command(&s, &plugin))
        .checksum(sum)
        // A graceful exit is asserted, not its speed: a loaded machine
        // may take longer than go-plugin's 2 s.
        .shutdown_grace(step())
        .start()
        .await
        .unwrap();
    client.ping().await.unwrap();
    assert!(client.shutdown().await.graceful);
}

#[tokio::test]
async fn unreadable_binaries_are_errors_before_launch() {
    let s = Harness::shared();
    let sum = Checksum::of_bytes(b"");
    for program in [s.path("missing"), s.work.clone()] {
        let err = s
            .kv_host(command(&s, &program))
            .checksum(sum)
            .start()
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::ChecksumFile { ref path, .. } if path == &program),
            "{err:?}"
        );
        assert!(
            err.to_string().starts_with("error verifying checksum of"),
            "{err}"
        );
    }
    assert!(!s.pid_file().exists());
}

#[tokio::test]
async fn a_verified_script_plugin_runs() {
    // `#!` scripts need their descriptor open after exec: the interpreter
    // opens /proc/self/fd/N itself.
    let s = Harness::shared();
    let script = s.path("plugin.sh");
    std::fs::write(&script, format!("#!/bin/sh\nexec '{FAKE}' \"$@\"\n")).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let sum = Checksum::of_file(&script).unwrap();
    let client = s
        .kv_host(command(&s, &script))
        .checksum(sum)
        .start()
        .await
        .unwrap();
    client.ping().await.unwrap();
    assert!(client.shutdown().await.graceful);
}

//! Checksum verification (go-plugin's `SecureConfig`): a binary that fails
//! the check never runs, and the bytes that passed it are the bytes that run.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use goplug::Error;
use goplug::host::{Channel, Checksum, Client, ClientBuilder, PluginSet};
use goplug_example_kv::{HANDSHAKE, pb::kv_client::KvClient};

const FAKE: &str = env!("CARGO_BIN_EXE_fake-plugin");

struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A private copy of the fake plugin.
    fn plugin_copy(&self) -> PathBuf {
        let path = self.path("plugin");
        std::fs::copy(FAKE, &path).unwrap();
        path
    }

    fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        command
            .arg("pid-file")
            .arg(self.path("pid"))
            .arg("kv")
            .current_dir(self.dir.path());
        command
    }

    fn builder(&self, command: Command) -> ClientBuilder {
        let sockets = self.path("sockets");
        std::fs::create_dir_all(&sockets).unwrap();
        Client::builder(HANDSHAKE)
            .plugins(PluginSet::new().grpc::<KvClient<Channel>>("kv"))
            .command(command)
            .unix_socket_dir(sockets)
            .start_timeout(Duration::from_secs(20))
    }

    fn plugin_ran(&self) -> bool {
        self.path("pid").exists()
    }
}

#[tokio::test]
async fn a_matching_checksum_starts_the_plugin() {
    let s = Scratch::new();
    let plugin = s.plugin_copy();
    let sum = Checksum::of_file(&plugin).unwrap();
    let client = s
        .builder(s.command(&plugin))
        .checksum(sum)
        .start()
        .await
        .unwrap();
    client.ping().await.unwrap();
    assert!(client.shutdown().await.graceful);
}

#[tokio::test]
async fn a_wrong_checksum_never_runs_the_plugin() {
    let s = Scratch::new();
    let plugin = s.plugin_copy();
    let wrong = Checksum::of_bytes(b"something else");
    let err = s
        .builder(s.command(&plugin))
        .checksum(wrong)
        .start()
        .await
        .unwrap_err();
    match &err {
        Error::ChecksumMismatch {
            path,
            expected,
            actual,
        } => {
            assert_eq!(path, &plugin);
            assert_eq!(*expected, wrong);
            assert_eq!(*actual, Checksum::of_file(&plugin).unwrap());
        }
        other => panic!("expected a checksum mismatch, got {other:?}"),
    }
    assert!(
        err.to_string().starts_with("checksums did not match"),
        "{err}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !s.plugin_ran(),
        "a plugin that failed its checksum was started"
    );
}

#[tokio::test]
async fn unreadable_binaries_are_errors_before_launch() {
    let s = Scratch::new();
    let sum = Checksum::of_bytes(b"");
    for program in [s.path("missing"), s.dir.path().to_path_buf()] {
        let err = s
            .builder(s.command(&program))
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
    assert!(!s.plugin_ran());
}

#[tokio::test]
async fn the_verified_bytes_are_what_runs_even_if_the_file_is_swapped() {
    let s = Scratch::new();
    let plugin = s.plugin_copy();
    let sum = Checksum::of_file(&plugin).unwrap();
    let marker = s.path("swapped-binary-ran");
    let impostor = s.path("impostor");
    std::fs::write(
        &impostor,
        format!("#!/bin/sh\ntouch '{}'\nsleep 30\n", marker.display()),
    )
    .unwrap();
    std::fs::set_permissions(&impostor, std::fs::Permissions::from_mode(0o755)).unwrap();

    let client = s
        .builder(s.command(&plugin))
        .checksum(sum)
        .on_checksum_verified(move |path| std::fs::rename(&impostor, path).unwrap())
        .start()
        .await
        .unwrap();
    // The file at the path is now the impostor, but the verified plugin runs.
    assert_ne!(Checksum::of_file(&plugin).unwrap(), sum);
    client.ping().await.unwrap();
    assert!(client.shutdown().await.graceful);
    assert!(!marker.exists(), "the swapped-in binary ran");
}

#[tokio::test]
async fn a_verified_script_plugin_runs() {
    // `#!` scripts need their descriptor open after exec: the interpreter
    // opens /proc/self/fd/N itself.
    let s = Scratch::new();
    let script = s.path("plugin.sh");
    std::fs::write(&script, format!("#!/bin/sh\nexec '{FAKE}' \"$@\"\n")).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let sum = Checksum::of_file(&script).unwrap();
    let client = s
        .builder(s.command(&script))
        .checksum(sum)
        .start()
        .await
        .unwrap();
    client.ping().await.unwrap();
    assert!(client.shutdown().await.graceful);
}

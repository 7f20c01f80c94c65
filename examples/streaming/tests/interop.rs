//! go-plugin's streaming example in every pairing: the host runs
//! `./plugin/streamer`, streams a text to it in 10-byte chunks under a
//! 1000-byte message limit, and reads it back.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use goplug_test::{go_bin, run_with_timeout};

const RUST_HOST: &str = env!("CARGO_BIN_EXE_streaming");
const RUST_PLUGIN: &str = env!("CARGO_BIN_EXE_streamer-rust-grpc");

fn workdir(plugin: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("plugin")).unwrap();
    std::fs::copy(plugin, dir.path().join("plugin/streamer")).unwrap();
    dir
}

#[test]
fn streams_in_every_pairing() {
    let hosts = [
        ("go", go_bin("streaming-host")),
        ("rust", PathBuf::from(RUST_HOST)),
    ];
    let plugins = [
        ("go", go_bin("streaming-plugin-go")),
        ("rust", PathBuf::from(RUST_PLUGIN)),
    ];
    for (host_name, host) in &hosts {
        for (plugin_name, plugin) in &plugins {
            let case = format!("{host_name} host, {plugin_name} plugin");
            let dir = workdir(plugin);
            let output = run_with_timeout(
                Command::new(host).arg("myfile").current_dir(dir.path()),
                Duration::from_secs(60),
            );
            assert!(output.status.success(), "{case}: {output:?}");
            assert_eq!(
                String::from_utf8_lossy(&output.stdout),
                "Lorem ipsum dolor sit amet\n",
                "{case}"
            );
            let stored = std::fs::read_to_string(dir.path().join("myfile")).unwrap();
            assert_eq!(stored, "Lorem ipsum dolor sit amet", "{case}");
            // Both hosts log in hclog JSON; the last entry reports the read.
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(stderr.contains("received 26 bytes"), "{case}: {stderr}");
        }
    }
}

#[test]
fn the_host_needs_exactly_one_argument() {
    for host in [go_bin("streaming-host"), PathBuf::from(RUST_HOST)] {
        let dir = workdir(Path::new(RUST_PLUGIN));
        let output = run_with_timeout(
            Command::new(&host).current_dir(dir.path()),
            Duration::from_secs(60),
        );
        assert_eq!(output.status.code(), Some(1), "{host:?}: {output:?}");
        assert!(
            String::from_utf8_lossy(&output.stderr)
                .contains("expected path to file as an argument")
        );
    }
}

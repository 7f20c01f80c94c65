//! go-plugin's basic example (net/rpc) in all four pairings: each host runs
//! `./plugin/greeter`, as go-plugin's example host does.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use goplug_test::{go_bin, run_with_timeout};

const RUST_HOST: &str = env!("CARGO_BIN_EXE_basic");
const RUST_PLUGIN: &str = env!("CARGO_BIN_EXE_greeter-rust");

/// Runs `host` in a fresh directory whose `./plugin/greeter` is `plugin`.
fn run(host: &Path, plugin: &Path) -> (std::process::Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("plugin")).unwrap();
    std::os::unix::fs::symlink(plugin, dir.path().join("plugin/greeter")).unwrap();
    let output = run_with_timeout(
        Command::new(host).current_dir(dir.path()),
        Duration::from_secs(60),
    );
    (output, dir)
}

#[test]
fn the_greeter_greets_in_every_pairing() {
    let hosts = [
        ("go", go_bin("basic-host")),
        ("rust", PathBuf::from(RUST_HOST)),
    ];
    let plugins = [
        ("go", go_bin("basic-plugin-go")),
        ("rust", PathBuf::from(RUST_PLUGIN)),
    ];
    for (host_name, host) in &hosts {
        for (plugin_name, plugin) in &plugins {
            let case = format!("{host_name} host, {plugin_name} plugin");
            let (output, _dir) = run(host, plugin);
            assert!(output.status.success(), "{case}: {output:?}");
            let stdout = String::from_utf8_lossy(&output.stdout);
            // The Go host logs on stdout too, before and after the greeting.
            assert!(
                stdout.lines().any(|line| line == "Hello!"),
                "{case}: {stdout}"
            );
            // The plugin's debug log reached the host's log (on stdout, as
            // go-plugin's example configures it).
            assert!(
                stdout.contains("message from GreeterHello.Greet"),
                "{case}: {stdout}"
            );
        }
    }
}

#[test]
fn a_missing_plugin_is_an_error_in_both_hosts() {
    for host in [go_bin("basic-host"), PathBuf::from(RUST_HOST)] {
        let dir = tempfile::tempdir().unwrap();
        let output = run_with_timeout(
            Command::new(&host).current_dir(dir.path()),
            Duration::from_secs(60),
        );
        assert!(!output.status.success(), "{}: {output:?}", host.display());
        assert!(!String::from_utf8_lossy(&output.stdout).contains("Hello!"));
    }
}

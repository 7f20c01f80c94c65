//! go-plugin's `examples/negotiated` in every pairing. The host runs
//! `./kv-plugin` from its working directory and offers only the version
//! `KV_PROTO` picks; the plugin must negotiate.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use goplug_test::{go_bin, run_with_timeout};

const RUST_HOST: &str = env!("CARGO_BIN_EXE_negotiated");
const RUST_PLUGIN: &str = env!("CARGO_BIN_EXE_negotiated-kv-plugin");

fn hosts() -> [(&'static str, PathBuf); 2] {
    [
        ("go", go_bin("negotiated-host")),
        ("rust", PathBuf::from(RUST_HOST)),
    ]
}

fn plugins() -> [(&'static str, PathBuf); 2] {
    [
        ("go", go_bin("negotiated-plugin-go")),
        ("rust", PathBuf::from(RUST_PLUGIN)),
    ]
}

/// A working directory with `plugin` installed as `./kv-plugin`.
fn workdir(plugin: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(plugin, dir.path().join("kv-plugin")).unwrap();
    dir
}

fn run(host: &Path, dir: &Path, proto: &str, args: &[&str]) -> Output {
    run_with_timeout(
        Command::new(host)
            .args(args)
            .current_dir(dir)
            .env("KV_PROTO", proto),
        Duration::from_secs(60),
    )
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn version_3_over_grpc_in_every_pairing() {
    for (host_name, host) in hosts() {
        for (plugin_name, plugin) in plugins() {
            let dir = workdir(&plugin);
            let put = run(&host, dir.path(), "grpc", &["put", "hello", "world"]);
            assert!(put.status.success(), "{host_name}/{plugin_name}: {put:?}");
            let get = run(&host, dir.path(), "grpc", &["get", "hello"]);
            assert!(get.status.success(), "{host_name}/{plugin_name}: {get:?}");
            assert_eq!(
                text(&get.stdout),
                "world\n\nWritten from plugin version 3\nRead by plugin version 3\n\n",
                "{host_name}/{plugin_name}"
            );
        }
    }
}

#[test]
fn version_2_over_net_rpc_in_every_pairing() {
    for (host_name, host) in hosts() {
        for (plugin_name, plugin) in plugins() {
            let dir = workdir(&plugin);
            let put = run(&host, dir.path(), "netrpc", &["put", "a", "b"]);
            assert!(put.status.success(), "{host_name}/{plugin_name}: {put:?}");
            let get = run(&host, dir.path(), "netrpc", &["get", "a"]);
            assert!(get.status.success(), "{host_name}/{plugin_name}: {get:?}");
            assert_eq!(
                text(&get.stdout),
                "b\n\nWritten from plugin version 2\nRead by plugin version 2\n\n",
                "{host_name}/{plugin_name}"
            );
        }
    }
}

#[test]
fn one_store_across_versions_and_protocols() {
    // What version 2 (net/rpc) wrote, version 3 (gRPC) reads, as in
    // go-plugin's README for the example.
    for (host_name, host) in hosts() {
        for (plugin_name, plugin) in plugins() {
            let dir = workdir(&plugin);
            let put = run(&host, dir.path(), "grpc", &["put", "hello", "world"]);
            assert!(put.status.success(), "{host_name}/{plugin_name}: {put:?}");
            let get = run(&host, dir.path(), "netrpc", &["get", "hello"]);
            assert_eq!(
                text(&get.stdout),
                "world\n\nWritten from plugin version 3\nRead by plugin version 2\n\n",
                "{host_name}/{plugin_name}"
            );
        }
    }
}

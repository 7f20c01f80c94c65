//! The KV example in every pairing: go-plugin v1.8's Go host and Go plugin
//! (`interop/go`, the reference), our Rust host and Rust plugin, and our
//! Python plugin. Each pairing runs the example's own command lines
//! (`KV_PROTO`, `KV_PLUGIN`, `put`/`get`) and must print what Go/Go prints.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use goplug_test::{go_bin, python_kv_plugin_command, run_with_input};

const RUST_HOST: &str = env!("CARGO_BIN_EXE_kv");
const RUST_PLUGIN: &str = env!("CARGO_BIN_EXE_kv-rust-grpc");
const LIMIT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Host {
    Go,
    Rust,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Plugin {
    Go,
    Rust,
    Python,
}

impl Host {
    fn path(self) -> PathBuf {
        match self {
            Self::Go => go_bin("kv-host"),
            Self::Rust => PathBuf::from(RUST_HOST),
        }
    }
}

impl Plugin {
    /// The `KV_PLUGIN` value, run by the host through `sh -c`.
    fn command(self) -> String {
        match self {
            Self::Go => go_bin("kv-plugin-go-grpc").display().to_string(),
            Self::Rust => RUST_PLUGIN.to_owned(),
            Self::Python => python_kv_plugin_command(),
        }
    }

    /// What the plugin appends to stored values.
    fn trailer(self) -> &'static str {
        match self {
            Self::Go => "\n\nWritten from plugin-go-grpc",
            Self::Rust => "\n\nWritten from plugin-rust-grpc",
            Self::Python => "\n\nWritten from plugin-python",
        }
    }
}

const PAIRINGS: [(Host, Plugin); 6] = [
    (Host::Go, Plugin::Go),
    (Host::Go, Plugin::Rust),
    (Host::Rust, Plugin::Go),
    (Host::Rust, Plugin::Rust),
    (Host::Rust, Plugin::Python),
    (Host::Go, Plugin::Python),
];

fn kv(host: Host, plugin_command: &str, dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    run_with_input(
        Command::new(host.path())
            .args(args)
            .current_dir(dir)
            .env("KV_PROTO", "grpc")
            .env("KV_PLUGIN", plugin_command),
        stdin,
        LIMIT,
    )
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn put_then_get_in_every_pairing() {
    for (host, plugin) in PAIRINGS {
        let dir = tempfile::tempdir().unwrap();
        let put = kv(
            host,
            &plugin.command(),
            dir.path(),
            &["put", "hello", "world"],
            None,
        );
        assert!(put.status.success(), "{host:?}/{plugin:?} put: {put:?}");
        assert_eq!(
            text(&put.stdout),
            "",
            "{host:?}/{plugin:?} put prints nothing"
        );

        let get = kv(host, &plugin.command(), dir.path(), &["get", "hello"], None);
        assert!(get.status.success(), "{host:?}/{plugin:?} get: {get:?}");
        assert_eq!(
            text(&get.stdout),
            format!("world{}\n", plugin.trailer()),
            "{host:?}/{plugin:?} get"
        );
        let stored = std::fs::read_to_string(dir.path().join("kv_hello")).unwrap();
        assert_eq!(
            stored,
            format!("world{}", plugin.trailer()),
            "{host:?}/{plugin:?} file"
        );
    }
}

#[test]
fn stored_values_are_shared_between_implementations() {
    // Whatever one plugin writes, every other plugin reads back verbatim.
    let dir = tempfile::tempdir().unwrap();
    let put = kv(
        Host::Go,
        &Plugin::Go.command(),
        dir.path(),
        &["put", "k", "from-go"],
        None,
    );
    assert!(put.status.success(), "{put:?}");
    let get = kv(
        Host::Rust,
        &Plugin::Rust.command(),
        dir.path(),
        &["get", "k"],
        None,
    );
    assert_eq!(
        text(&get.stdout),
        format!("from-go{}\n", Plugin::Go.trailer())
    );

    let put = kv(
        Host::Rust,
        &Plugin::Rust.command(),
        dir.path(),
        &["put", "k", "from-rust"],
        None,
    );
    assert!(put.status.success(), "{put:?}");
    let get = kv(
        Host::Go,
        &Plugin::Go.command(),
        dir.path(),
        &["get", "k"],
        None,
    );
    assert_eq!(
        text(&get.stdout),
        format!("from-rust{}\n", Plugin::Rust.trailer())
    );
}

#[test]
fn a_missing_key_fails_the_same_way_everywhere() {
    for (host, plugin) in PAIRINGS {
        let dir = tempfile::tempdir().unwrap();
        let get = kv(
            host,
            &plugin.command(),
            dir.path(),
            &["get", "missing"],
            None,
        );
        assert_eq!(get.status.code(), Some(1), "{host:?}/{plugin:?}: {get:?}");
        let stdout = text(&get.stdout);
        assert!(
            stdout.starts_with("error: "),
            "{host:?}/{plugin:?}: {stdout}"
        );
        assert!(
            stdout.contains("kv_missing"),
            "{host:?}/{plugin:?}: {stdout}"
        );
    }
}

#[test]
fn the_plugin_inherits_the_hosts_stdin() {
    for host in [Host::Go, Host::Rust] {
        let dir = tempfile::tempdir().unwrap();
        let plugin = format!(
            "read line; echo \"$line\" > stdin_seen; exec {}",
            Plugin::Rust.command()
        );
        let put = kv(
            host,
            &plugin,
            dir.path(),
            &["put", "a", "b"],
            Some("typed by the user\n"),
        );
        assert!(put.status.success(), "{host:?}: {put:?}");
        let seen = std::fs::read_to_string(dir.path().join("stdin_seen")).unwrap();
        assert_eq!(seen, "typed by the user\n", "{host:?}");
    }
}

#[test]
fn hosts_refuse_a_missing_kv_proto_alike() {
    for host in [Host::Go, Host::Rust] {
        let dir = tempfile::tempdir().unwrap();
        let output = run_with_input(
            Command::new(host.path())
                .args(["get", "x"])
                .current_dir(dir.path())
                .env("KV_PLUGIN", Plugin::Rust.command())
                .env_remove("KV_PROTO"),
            None,
            LIMIT,
        );
        assert_eq!(output.status.code(), Some(1), "{host:?}");
        assert_eq!(
            text(&output.stdout),
            "must set KV_PROTO to netrpc or grpc\n",
            "{host:?}"
        );
    }
}

#[test]
fn plugins_run_by_hand_refuse_alike() {
    // go-plugin's friendly refusal, byte for byte, from every plugin.
    for plugin in [Plugin::Go, Plugin::Rust, Plugin::Python] {
        let output = run_with_input(
            Command::new("sh")
                .arg("-c")
                .arg(plugin.command())
                .env_remove("BASIC_PLUGIN"),
            None,
            LIMIT,
        );
        assert_eq!(output.status.code(), Some(1), "{plugin:?}: {output:?}");
        assert_eq!(text(&output.stdout), "", "{plugin:?}");
        assert_eq!(
            text(&output.stderr),
            goplug::env::NOT_LAUNCHED_BY_HOST,
            "{plugin:?}"
        );
    }
}

const RUST_NETRPC_PLUGIN: &str = env!("CARGO_BIN_EXE_kv-rust-netrpc");

/// Runs a KV host with `KV_PROTO=netrpc`.
fn kv_netrpc(host: Host, plugin_command: &str, dir: &Path, args: &[&str]) -> Output {
    run_with_input(
        Command::new(host.path())
            .args(args)
            .current_dir(dir)
            .env("KV_PROTO", "netrpc")
            .env("KV_PLUGIN", plugin_command),
        None,
        LIMIT,
    )
}

#[test]
fn netrpc_put_then_get_in_every_pairing() {
    let go_plugin = go_bin("kv-plugin-go-netrpc").display().to_string();
    let plugins = [
        (
            "go",
            go_plugin.as_str(),
            "\n\nWritten from plugin-go-netrpc",
        ),
        (
            "rust",
            RUST_NETRPC_PLUGIN,
            "\n\nWritten from plugin-rust-netrpc",
        ),
    ];
    for host in [Host::Go, Host::Rust] {
        for (name, plugin, trailer) in plugins {
            let case = format!("{host:?} host, {name} net/rpc plugin");
            let dir = tempfile::tempdir().unwrap();
            let put = kv_netrpc(host, plugin, dir.path(), &["put", "hello", "world"]);
            assert!(put.status.success(), "{case}: {put:?}");
            assert_eq!(text(&put.stdout), "", "{case}");
            let get = kv_netrpc(host, plugin, dir.path(), &["get", "hello"]);
            assert!(get.status.success(), "{case}: {get:?}");
            assert_eq!(text(&get.stdout), format!("world{trailer}\n"), "{case}");
            // A missing key: the plugin's error text, no gRPC status around it.
            let missing = kv_netrpc(host, plugin, dir.path(), &["get", "missing"]);
            assert_eq!(missing.status.code(), Some(1), "{case}: {missing:?}");
            let stdout = text(&missing.stdout);
            assert!(
                stdout.starts_with("error: open ") && stdout.contains("kv_missing"),
                "{case}: {stdout}"
            );
            // The other protocol's plugin name is unknown to a net/rpc plugin.
            let wrong = run_with_input(
                Command::new(host.path())
                    .args(["get", "hello"])
                    .current_dir(dir.path())
                    .env("KV_PROTO", "grpc")
                    .env("KV_PLUGIN", plugin),
                None,
                LIMIT,
            );
            assert_eq!(
                text(&wrong.stdout),
                "error: unknown plugin type: kv_grpc\n",
                "{case}: {wrong:?}"
            );
        }
    }
}

/// The example plugin declares its crate version, and go-plugin's host
/// reads it through Vault's `logical.PluginVersion` service.
#[test]
fn the_rust_plugin_reports_its_crate_version_to_the_go_host() {
    let dir = tempfile::tempdir().unwrap();
    let report = goplug_test::probe_host(
        &format!("exec '{RUST_PLUGIN}'"),
        &["-plugin-version"],
        dir.path(),
    );
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(
        report["plugin_version"],
        env!("CARGO_PKG_VERSION"),
        "{report}"
    );
}

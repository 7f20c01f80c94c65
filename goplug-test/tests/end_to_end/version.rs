//! Plugin versions (issue 20): a plugin declares its semantic version and
//! serves it as Vault's `logical.PluginVersion`; the Rust host requires a
//! constraint and refuses a plugin that does not meet it. Against the Rust
//! test plugin (`FAKE_PLUGIN_VERSION`) and go-plugin's probe-plugin, which
//! serves the service as a Go plugin can (`PROBE_PLUGIN_VERSION`), and
//! serves none without it, as every Go plugin.

use std::process::Command;

use goplug::host::{Client, MissingVersion, PluginSet, shell_command};
use goplug::{Error, Protocol};
use goplug_example_kv::{HANDSHAKE, KvRpc};
use goplug_test::{FAKE, Harness, go_bin};

/// The Rust KV plugin, declaring `version` when given.
fn rust(s: &Harness, mode: &str, version: Option<&str>) -> Command {
    let env: Vec<(&str, &str)> = version
        .map(|v| ("FAKE_PLUGIN_VERSION", v))
        .into_iter()
        .collect();
    s.fake_with_env(mode, &env)
}

/// go-plugin's probe-plugin, serving `logical.PluginVersion` with
/// `version` when given.
fn go(s: &Harness, version: Option<&str>) -> Command {
    let mut command = s.command(go_bin("probe-plugin"));
    if let Some(version) = version {
        command.env("PROBE_PLUGIN_VERSION", version);
    }
    command
}

fn semver(text: &str) -> goplug::semver::Version {
    text.parse().unwrap()
}

#[tokio::test]
async fn a_plugin_that_meets_the_constraint_is_kept_and_reports_its_version() {
    for constraint in [">=1.2, <2", "~> 1.4"] {
        let s = Harness::shared();
        let plugins = [
            ("rust", rust(&s, "kv", Some("1.4.2"))),
            ("go", go(&s, Some("v1.4.2"))),
        ];
        for (name, command) in plugins {
            let client = s
                .kv_host(command)
                .require_version(constraint)
                .start()
                .await
                .unwrap_or_else(|e| panic!("{name} {constraint}: {e}"));
            assert_eq!(
                client.plugin_version().await.unwrap(),
                Some(&semver("1.4.2")),
                "{name}"
            );
            client.ping().await.unwrap();
            let value = goplug_test::put_get(&client, "k", "v").await;
            assert!(value.starts_with("v\n\nWritten from plugin"), "{value:?}");
            assert!(client.shutdown().await.graceful, "{name}");
        }
        s.assert_clean().await;
    }
}

#[tokio::test]
async fn a_plugin_below_the_constraint_is_refused_and_shut_down() {
    let s = Harness::shared();
    let plugins = [
        ("rust", rust(&s, "kv-exit-file", Some("1.4.2"))),
        ("go", go(&s, Some("1.4.2"))),
    ];
    for (name, command) in plugins {
        let err = s
            .kv_host(command)
            .require_version(">=99.0.0")
            .start()
            .await
            .unwrap_err();
        let Error::PluginVersionUnmet {
            constraint,
            version,
        } = &err
        else {
            panic!("{name}: {err:?}");
        };
        assert_eq!(constraint.as_str(), ">=99.0.0");
        assert_eq!(version, &semver("1.4.2"));
        let message = err.to_string();
        assert!(
            message.contains(">=99.0.0") && message.contains("1.4.2"),
            "{message}"
        );
    }
    // Asked to stop, not killed: it served to the end.
    assert!(s.path("served-to-the-end").exists());
    s.assert_clean().await;
}

#[tokio::test]
async fn an_unversioned_plugin_is_refused_unless_the_host_allows_it() {
    let s = Harness::shared();
    for (name, command) in [("rust", rust(&s, "kv", None)), ("go", go(&s, None))] {
        let err = s
            .kv_host(command)
            .require_version(">=1.0.0")
            .start()
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::PluginVersionMissing { reason, .. }
                if reason.contains("serves no logical.PluginVersion service")),
            "{name}: {err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains(">=1.0.0") && message.contains("MissingVersion::Allow"),
            "{message}"
        );
    }
    for (name, command) in [("rust", rust(&s, "kv", None)), ("go", go(&s, None))] {
        let client = s
            .kv_host(command)
            .require_version(">=1.0.0")
            .missing_version(MissingVersion::Allow)
            .start()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(client.plugin_version().await.unwrap(), None, "{name}");
        client.ping().await.unwrap();
        assert!(client.shutdown().await.graceful, "{name}");
    }
    s.assert_clean().await;
}

#[tokio::test]
async fn a_net_rpc_plugin_reports_no_version() {
    let s = Harness::shared();
    let plugins = [
        (
            "rust",
            format!("FAKE_PROTOCOL=netrpc FAKE_PLUGIN_VERSION=1.4.2 exec {FAKE} kv"),
        ),
        (
            "go",
            format!(
                "PROBE_PROTOCOL=netrpc PROBE_PLUGIN_VERSION=1.4.2 exec {}",
                go_bin("probe-plugin").display()
            ),
        ),
    ];
    for (name, plugin) in plugins {
        for missing in [MissingVersion::Refuse, MissingVersion::Allow] {
            let mut command = shell_command(&plugin);
            s.tag(&mut command);
            let started = Client::builder(HANDSHAKE)
                .plugins(PluginSet::new().netrpc_with("kv", |rpc, _| KvRpc::new(rpc)))
                .command(command)
                .allowed_protocols([Protocol::NetRpc])
                .unix_socket_dir(&s.sockets)
                .start_timeout(goplug_test::step())
                .require_version(">=1.0.0")
                .missing_version(missing)
                .start()
                .await;
            match (missing, started) {
                (MissingVersion::Allow, Ok(client)) => {
                    assert_eq!(client.protocol(), Protocol::NetRpc);
                    assert_eq!(client.plugin_version().await.unwrap(), None, "{name}");
                    let report = client.shutdown().await;
                    assert!(report.graceful, "{name}: {report:?}");
                }
                (MissingVersion::Refuse, Err(Error::PluginVersionMissing { reason, .. })) => {
                    assert!(reason.contains("net/rpc"), "{name}: {reason}");
                }
                (missing, other) => panic!("{name} {missing:?}: {other:?}"),
            }
        }
    }
    s.assert_clean().await;
}

#[tokio::test]
async fn a_reported_version_that_is_not_semantic_is_refused() {
    let s = Harness::shared();
    let err = s
        .kv_host(go(&s, Some("latest")))
        .require_version(">=1.0.0")
        .start()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidPluginVersion { version, .. } if version == "latest"),
        "{err:?}"
    );
    // Without a requirement the plugin starts; asking says what is wrong.
    let client = s.kv_host(go(&s, Some("latest"))).start().await.unwrap();
    let err = client.plugin_version().await.unwrap_err();
    assert!(
        matches!(&err, Error::InvalidPluginVersion { .. }),
        "{err:?}"
    );
    // An empty version is no version.
    let client_empty = s
        .kv_host(go(&s, Some("")))
        .require_version(">=1.0.0")
        .start()
        .await
        .unwrap_err();
    assert!(
        matches!(&client_empty, Error::PluginVersionMissing { reason, .. } if reason.contains("empty")),
        "{client_empty:?}"
    );
    assert!(client.shutdown().await.graceful);
    s.assert_clean().await;
}

#[tokio::test]
async fn an_invalid_constraint_fails_before_anything_runs() {
    let s = Harness::shared();
    let err = s
        .kv_host(rust(&s, "kv", Some("1.4.2")))
        .require_version("1.2")
        .start()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::VersionConstraint { constraint, .. } if constraint == "1.2"),
        "{err:?}"
    );
    assert!(err.to_string().contains("^1.2"), "{err}");
    assert!(!s.pid_file().exists(), "the plugin was launched");
    s.assert_clean().await;
}

#[tokio::test]
async fn a_plugin_that_declares_an_invalid_version_does_not_start() {
    let s = Harness::shared();
    let err = s
        .kv_host(rust(&s, "kv", Some("1.4")))
        .start()
        .await
        .unwrap_err();
    let Error::ExitedBeforeHandshake { stderr, .. } = &err else {
        panic!("{err:?}");
    };
    let stderr = stderr.to_string();
    assert!(
        stderr.contains("plugin version \"1.4\" is not a semantic version"),
        "{stderr}"
    );
    s.assert_clean().await;
}

#[tokio::test]
async fn a_cargo_requirement_is_accepted_as_is() {
    let s = Harness::shared();
    let requirement = goplug::semver::VersionReq::parse("=1.4").unwrap();
    let client = s
        .kv_host(rust(&s, "kv", Some("1.4.2")))
        .require_version_constraint(requirement)
        .start()
        .await
        .unwrap();
    assert_eq!(
        client.plugin_version().await.unwrap(),
        Some(&semver("1.4.2"))
    );
    assert!(client.shutdown().await.graceful);
    s.assert_clean().await;
}

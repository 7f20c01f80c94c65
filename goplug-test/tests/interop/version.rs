//! Plugin versions across languages: go-plugin v1.8.0's host asks Vault's
//! `logical.PluginVersion/Version` on its own connection to the plugin
//! (probe-host `-plugin-version`), of the Rust test plugin and of
//! probe-plugin serving the service as a Go plugin can. The Rust host's
//! side (against both plugins) is in `end_to_end/version.rs`.

use goplug_test::{FAKE, go_bin, probe_host};
use serde_json::Value;

/// Both plugins as `sh -c` commands, serving `version` when given.
fn plugins(version: Option<&str>) -> [(&'static str, String); 2] {
    let rust = version.map_or_else(String::new, |v| format!("FAKE_PLUGIN_VERSION={v} "));
    let go = version.map_or_else(String::new, |v| format!("PROBE_PLUGIN_VERSION={v} "));
    [
        ("rust", format!("{rust}exec '{FAKE}' kv")),
        (
            "go",
            format!("{go}exec '{}'", go_bin("probe-plugin").display()),
        ),
    ]
}

#[test]
fn go_host_reads_the_version_a_plugin_declares() {
    for version in ["1.4.2", "v2.0.0-rc.1"] {
        for (name, command) in plugins(Some(version)) {
            let report = probe_host(
                &command,
                &["-plugin-version", "-ping", "-put", "k=v", "-get", "k"],
                tempfile::tempdir().unwrap().path(),
            );
            assert_eq!(report["ok"], true, "{name}: {report}");
            assert_eq!(report["plugin_version"], version, "{name}: {report}");
            assert_eq!(report["plugin_version_error"], "", "{name}");
            assert_eq!(report["graceful"], true, "{name}: {report}");
            assert_eq!(report["warnings"], Value::Array(vec![]), "{name}: {report}");
        }
    }
}

#[test]
fn go_host_gets_the_same_unimplemented_from_unversioned_plugins() {
    let reports: Vec<Value> = plugins(None)
        .iter()
        .map(|(_, command)| {
            probe_host(
                command,
                &["-plugin-version", "-ping"],
                tempfile::tempdir().unwrap().path(),
            )
        })
        .collect();
    for (report, (name, _)) in reports.iter().zip(plugins(None)) {
        assert_eq!(report["ok"], true, "{name}: {report}");
        assert_eq!(
            report["plugin_version_error"],
            "rpc error: code = Unimplemented desc = unknown service logical.PluginVersion",
            "{name}: {report}"
        );
        assert_eq!(report["plugin_version"], "", "{name}");
    }
}

//! The mistakes a newcomer makes at compile time, and the messages that
//! name the fix: each program in `goplug-test/compile-fail/src/bin` must
//! fail to compile, and its first error must say what to do.
//!
//! The fixture crate is checked in a copy (its goplug path filled in) with
//! a target directory of its own: the `cargo test` running this holds the
//! workspace's target directory. Dependencies come from the local registry
//! cache (`--offline`), pinned by a copy of the workspace's `Cargo.lock`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Each fixture and the texts its errors must contain.
const EXPECTED: &[(&str, &[&str])] = &[
    // One line naming the missing item, not 94 lines of trait errors.
    ("wrong_plugin_set", &["no `PluginSet` in `plugin`"]),
    (
        "implementation_not_server",
        &[
            "is not a gRPC service a plugin can serve",
            "wrap your implementation in the generated server: `XServer::new(my_impl)`",
        ],
    ),
    (
        "client_without_grpc_client",
        &[
            "is not a gRPC client goplug can build",
            "goplug::grpc_client!",
            "in the crate that runs `tonic::include_proto!`",
        ],
    ),
    (
        "dispense_by_name",
        &[
            "`&str` is not a plugin handle",
            "to dispense by name use `dispense_named`",
        ],
    ),
    (
        "wrong_client_type",
        &["expected `String`, found `HealthClient<Channel>`"],
    ),
    (
        "checksum_after_reattach",
        &["no method named `checksum` found for struct `ReattachBuilder`"],
    ),
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("goplug-test sits in the workspace")
        .to_path_buf()
}

/// A copy of the fixture crate whose goplug dependency points at this
/// workspace's goplug.
fn fixture_copy(into: &Path) {
    let root = workspace();
    let fixture = root.join("goplug-test/compile-fail");
    let manifest = std::fs::read_to_string(fixture.join("Cargo.toml")).expect("fixture manifest");
    let goplug = root.join("goplug");
    std::fs::write(
        into.join("Cargo.toml"),
        manifest.replace("GOPLUG_PATH", goplug.to_str().expect("a UTF-8 path")),
    )
    .expect("write manifest");
    std::fs::copy(root.join("Cargo.lock"), into.join("Cargo.lock")).expect("copy Cargo.lock");
    std::fs::create_dir_all(into.join("src/bin")).expect("mkdir");
    std::fs::copy(fixture.join("src/lib.rs"), into.join("src/lib.rs")).expect("copy lib.rs");
    for entry in std::fs::read_dir(fixture.join("src/bin")).expect("fixture bins") {
        let path = entry.expect("dir entry").path();
        let name = path.file_name().expect("a file name");
        std::fs::copy(&path, into.join("src/bin").join(name)).expect("copy fixture");
    }
}

/// `cargo check` of every fixture: the rendered errors of each, by name.
fn check_fixtures() -> BTreeMap<String, Vec<String>> {
    let copy = tempfile::tempdir().expect("temp dir");
    fixture_copy(copy.path());
    let target = workspace().join("target/compile-fail");
    let check = |offline: bool| {
        let mut command = Command::new(env!("CARGO"));
        command
            .args(["check", "--keep-going", "--bins", "--message-format=json"])
            .args(offline.then_some("--offline"))
            .current_dir(copy.path())
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS");
        goplug_test::run_with_timeout(&mut command, Duration::from_secs(900))
    };
    // Offline first (no index update); a crate the workspace build did not
    // download (a fresh registry cache) is fetched on a second try.
    let mut output = check(true);
    if String::from_utf8_lossy(&output.stderr).contains("offline") {
        output = check(false);
    }
    let mut errors: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] != "compiler-message" || message["message"]["level"] != "error" {
            continue;
        }
        let name = message["target"]["name"].as_str().unwrap_or_default();
        let rendered = message["message"]["rendered"].as_str().unwrap_or_default();
        errors
            .entry(name.to_owned())
            .or_default()
            .push(rendered.to_owned());
    }
    assert!(
        !output.status.success(),
        "every fixture must fail to compile; stderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    errors
}

#[test]
fn each_mistake_fails_to_compile_with_a_message_that_names_the_fix() {
    let errors = check_fixtures();
    let mut missing = Vec::new();
    for (fixture, texts) in EXPECTED {
        let Some(rendered) = errors.get(*fixture) else {
            missing.push(format!("{fixture}: compiled, or no error was reported"));
            continue;
        };
        let all = rendered.join("\n");
        for text in *texts {
            if !all.contains(text) {
                missing.push(format!("{fixture}: no {text:?} in:\n{all}"));
            }
        }
    }
    let unlisted: Vec<_> = errors
        .keys()
        .filter(|name| !EXPECTED.iter().any(|(fixture, _)| fixture == name))
        .collect();
    assert!(
        unlisted.is_empty(),
        "errors in unexpected targets: {unlisted:?}: {errors:#?}"
    );
    assert!(missing.is_empty(), "{}", missing.join("\n\n"));
}

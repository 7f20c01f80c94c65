//! The quickstart as a user runs it: the host binary launches the plugin
//! binary and prints both replies.

use std::process::Command;

#[test]
fn the_host_calls_both_rpcs_of_the_plugin() {
    let output = Command::new(env!("CARGO_BIN_EXE_quickstart-host"))
        .arg(env!("CARGO_BIN_EXE_quickstart-plugin"))
        .arg("rust speaks go plugin")
        .output()
        .expect("the host runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert_eq!(
        stdout,
        "shout: RUST SPEAKS GO PLUGIN\nword 0: rust\nword 1: speaks\nword 2: go\nword 3: plugin\n",
        "stderr: {stderr}"
    );
}

#[test]
fn the_plugin_run_by_hand_says_what_it_is() {
    let output = Command::new(env!("CARGO_BIN_EXE_quickstart-plugin"))
        .env_remove("QUICKSTART_PLUGIN")
        .output()
        .expect("the plugin runs");
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("This binary is a plugin. These are not meant to be executed directly."),
        "{stderr}"
    );
}

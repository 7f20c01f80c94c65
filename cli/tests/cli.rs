//! End-to-end tests of the `goplug` binary against go-plugin's Go KV
//! plugins (built from `interop/go`) and the Rust KV plugin this binary
//! serves itself (`goplug demo --serve-plugin`). Every run is bounded and
//! killed on timeout; the plugin's pid is checked gone where it matters.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use goplug_test::{assert_process_gone, go_bin, read_pid, run_with_timeout};
use serde_json::Value;

const RUN_TIMEOUT: Duration = Duration::from_secs(60);
const KV_COOKIE: [&str; 4] = ["--cookie-key", "BASIC_PLUGIN", "--cookie-value", "hello"];

fn goplug() -> &'static str {
    env!("CARGO_BIN_EXE_goplug")
}

/// The Rust KV plugin: this binary in its plugin role.
fn rust_plugin() -> Vec<String> {
    vec![
        goplug().to_owned(),
        "demo".to_owned(),
        "--serve-plugin".to_owned(),
    ]
}

fn go_plugin() -> Vec<String> {
    vec![go_bin("kv-plugin-go-grpc").display().to_string()]
}

/// Runs goplug with `args` in `dir`, bounded.
fn run(dir: &Path, args: &[&str]) -> Output {
    run_with_timeout(
        Command::new(goplug()).args(args).current_dir(dir),
        RUN_TIMEOUT,
    )
}

fn stdout_json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The one error line: exactly one, and the last thing on stderr.
fn error_line(output: &Output) -> String {
    let text = stderr(output);
    let errors: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("goplug: error: "))
        .collect();
    assert_eq!(errors.len(), 1, "one error line expected: {text}");
    assert_eq!(
        text.lines().last(),
        Some(errors[0]),
        "the error is last: {text}"
    );
    errors[0].to_owned()
}

fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "exit status; stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        stderr(output)
    );
}

/// `sh -c 'echo $$ > PIDFILE; exec PLUGIN...'`: the plugin keeps the
/// shell's pid, which lands in the file.
fn with_pidfile(pidfile: &Path, plugin: &[String]) -> Vec<String> {
    let quoted: Vec<String> = plugin.iter().map(|a| format!("'{a}'")).collect();
    vec![
        "sh".to_owned(),
        "-c".to_owned(),
        format!(
            "echo $$ > '{}'; exec {}",
            pidfile.display(),
            quoted.join(" ")
        ),
    ]
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn service<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["services"]
        .as_array()
        .expect("services")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no service {name} in {}", report["services"]))
}

fn method<'a>(service: &'a Value, name: &str) -> &'a Value {
    service["methods"]
        .as_array()
        .expect("methods")
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no method {name} in {service}"))
}

fn check_kv_report(report: &Value) {
    assert_eq!(report["protocol"], "grpc", "{report}");
    assert_eq!(report["version"], 1);
    assert_eq!(report["transport"]["network"], "unix");
    assert!(
        report["transport"]["address"]
            .as_str()
            .is_some_and(|a| a.starts_with('/'))
    );
    assert_eq!(report["tls"]["enabled"], true, "{report}");
    assert!(matches!(
        report["tls"]["version"].as_str(),
        Some("1.2" | "1.3")
    ));
    assert_eq!(report["health"]["serving"], true, "{report}");
    assert!(report["startup_ms"].as_f64().is_some_and(|ms| ms > 0.0));
    assert_eq!(report["reflection"]["available"], true, "{report}");
    assert_eq!(report["reflection"]["api"], "grpc.reflection.v1alpha");

    let kv = service(report, "proto.KV");
    let get = method(kv, "Get");
    assert_eq!(get["input_type"], "proto.GetRequest");
    assert_eq!(get["output_type"], "proto.GetResponse");
    assert_eq!(get["full_name"], "proto.KV/Get");
    assert_eq!(get["server_streaming"], false);
    let put = method(kv, "Put");
    assert_eq!(put["input_type"], "proto.PutRequest");
    assert_eq!(put["output_type"], "proto.Empty");
    assert_eq!(
        method(service(report, "plugin.GRPCBroker"), "StartStream")["client_streaming"],
        true
    );
    method(service(report, "plugin.GRPCController"), "Shutdown");
    method(service(report, "plugin.GRPCStdio"), "StreamStdio");
    method(service(report, "grpc.health.v1.Health"), "Check");
    assert_eq!(
        report["messages"]["proto.PutRequest"]["fields"][1]["type"], "bytes",
        "{}",
        report["messages"]
    );
    assert_eq!(report["shutdown"]["graceful"], true, "{report}");
    assert_eq!(report["shutdown"]["exit_status"], 0);
}

/// `plugin_version`: what the plugin reports (`null` for the Go plugin,
/// which serves no `logical.PluginVersion`).
fn inspect_kv(plugin: &[String], plugin_version: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let mut args = vec!["inspect", "--json", "--auto-mtls"];
    args.extend(KV_COOKIE);
    let command = with_pidfile(&pidfile, plugin);
    args.extend(strs(&command));
    let output = run(dir.path(), &args);
    assert_exit(&output, 0);
    let report = stdout_json(&output);
    check_kv_report(&report);
    assert_eq!(
        report["plugin_version"].as_str(),
        plugin_version,
        "{report}"
    );
    assert_eq!(report["plugin_version_error"], Value::Null, "{report}");
    let pid = read_pid(&pidfile);
    assert_eq!(report["plugin"]["pid"], pid);
    assert_process_gone(pid, Duration::from_secs(5));
}

#[test]
fn inspect_reports_the_go_kv_plugin_over_auto_mtls() {
    inspect_kv(&go_plugin(), None);
}

#[test]
fn inspect_reports_the_rust_kv_plugin_over_auto_mtls() {
    // The KV example declares its crate version, the workspace's.
    inspect_kv(&rust_plugin(), Some(env!("CARGO_PKG_VERSION")));
}

#[test]
fn require_version_exits_3_naming_the_constraint_and_the_version() {
    let dir = tempfile::tempdir().unwrap();
    let version = env!("CARGO_PKG_VERSION");
    let cases = [
        (
            rust_plugin(),
            ">=99.0.0",
            3,
            Some(format!("is version {version}")),
        ),
        (rust_plugin(), "~> 0.1", 0, None),
        (
            go_plugin(),
            ">=1.0.0",
            3,
            Some("reports no version (it serves no logical.PluginVersion service)".to_owned()),
        ),
    ];
    for (plugin, constraint, code, words) in cases {
        for json in [false, true] {
            let pidfile = dir.path().join("pid");
            let mut args = vec!["inspect", "--require-version", constraint];
            if json {
                args.push("--json");
            }
            args.extend(KV_COOKIE);
            let command = with_pidfile(&pidfile, &plugin);
            args.extend(strs(&command));
            let output = run(dir.path(), &args);
            assert_exit(&output, code);
            if let Some(words) = &words {
                let line = error_line(&output);
                assert!(
                    line.contains(words) && line.contains(&format!("'{constraint}'")),
                    "{line}"
                );
                if json {
                    let error = &stdout_json(&output)["error"];
                    assert_eq!(error["exit_code"], 3, "{error}");
                    assert_eq!(error["kind"], "plugin", "{error}");
                }
            }
            assert_process_gone(read_pid(&pidfile), Duration::from_secs(5));
        }
    }
    // A constraint that go-version and Cargo read differently is a usage
    // error, before any plugin runs.
    let mut args = vec!["inspect", "--require-version", "1.2"];
    args.extend(KV_COOKIE);
    args.push("./no-such-plugin");
    let output = run(dir.path(), &args);
    assert_exit(&output, 2);
    assert!(stderr(&output).contains("\"^1.2\""), "{}", stderr(&output));
}

#[test]
fn inspect_text_is_aligned_and_labels_plugin_logs() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["inspect"];
    args.extend(KV_COOKIE);
    let plugin = go_plugin();
    args.extend(strs(&plugin));
    let output = run(dir.path(), &args);
    assert_exit(&output, 0);
    let text = String::from_utf8_lossy(&output.stdout);
    for row in [
        "Plugin      ",
        "Protocol    grpc, app protocol version 1",
        "Transport   unix /",
        "TLS         off",
        "Health      SERVING",
        "Reflection  grpc.reflection.v1alpha",
        "Shutdown    graceful",
        "    Get (proto.GetRequest) returns (proto.GetResponse)",
        "  proto.PutRequest { string key = 1; bytes value = 2; }",
    ] {
        assert!(text.contains(row), "{row:?} missing from:\n{text}");
    }
    assert!(!text.contains('\x1b'), "no colour on a pipe");
    // go-plugin's "plugin address" debug line, labelled with the plugin.
    assert!(
        stderr(&output).contains("[kv-plugin-go-grpc] DEBUG plugin address"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn flags_override_a_preset() {
    // Terraform's preset (AutoMTLS, gRPC) with the KV cookie and version.
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![
        "inspect",
        "--json",
        "--preset",
        "terraform",
        "--versions",
        "1",
    ];
    args.extend(KV_COOKIE);
    let plugin = go_plugin();
    args.extend(strs(&plugin));
    let output = run(dir.path(), &args);
    assert_exit(&output, 0);
    let report = stdout_json(&output);
    assert_eq!(report["handshake"]["cookie_key"], "BASIC_PLUGIN");
    assert_eq!(
        report["handshake"]["versions_offered"],
        serde_json::json!([1])
    );
    assert_eq!(
        report["handshake"]["protocols_allowed"],
        serde_json::json!(["grpc"])
    );
    assert_eq!(report["tls"]["enabled"], true);
}

#[test]
fn inspect_reports_a_net_rpc_plugin_without_reflection() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["inspect", "--json"];
    args.extend(KV_COOKIE);
    let plugin = go_bin("kv-plugin-go-netrpc").display().to_string();
    args.push(&plugin);
    let output = run(dir.path(), &args);
    assert_exit(&output, 0);
    let report = stdout_json(&output);
    assert_eq!(report["protocol"], "netrpc");
    assert_eq!(report["health"]["serving"], true);
    // net/rpc has no version service.
    assert_eq!(report["plugin_version"], Value::Null, "{report}");
    assert_eq!(report["reflection"]["available"], false);
    assert!(
        report["reflection"]["error"]
            .as_str()
            .unwrap()
            .contains("net/rpc")
    );

    // call is gRPC-only, and says so.
    let mut args = vec!["call"];
    args.extend(KV_COOKIE);
    args.extend([plugin.as_str(), "proto.KV/Get", r#"{"key":"k"}"#]);
    let output = run(dir.path(), &args);
    assert_exit(&output, 3);
    assert!(error_line(&output).contains("gRPC plugins only"));
}

fn put_then_get(plugin: &[String], auto_mtls: bool, writer: &str) {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let call = |method: &str, request: &str| {
        let mut args = vec!["call", "--json"];
        if auto_mtls {
            args.push("--auto-mtls");
        }
        args.extend(KV_COOKIE);
        args.extend([plugin[0].as_str(), method, request, "--"]);
        args.extend(strs(&plugin[1..]));
        run(dir.path(), &args)
    };
    let put = call(
        "proto.KV/Put",
        r#"{"key":"hello","value":"d29ybGQ="}"#, // "world"
    );
    assert_exit(&put, 0);
    assert_eq!(
        stdout_json(&put),
        serde_json::json!({"method": "proto.KV/Put", "response": {}})
    );
    let get = call("proto.KV/Get", r#"{"key":"hello"}"#);
    assert_exit(&get, 0);
    let document = stdout_json(&get);
    assert_eq!(document["method"], "proto.KV/Get");
    let value = base64::engine::general_purpose::STANDARD
        .decode(document["response"]["value"].as_str().expect("value"))
        .unwrap();
    assert_eq!(
        String::from_utf8(value).unwrap(),
        format!("world\n\nWritten from {writer}")
    );
}

#[test]
fn call_puts_and_gets_through_the_go_plugin() {
    put_then_get(&go_plugin(), true, "plugin-go-grpc");
}

#[test]
fn call_puts_and_gets_through_the_rust_plugin() {
    put_then_get(&rust_plugin(), false, "plugin-rust-grpc");
}

#[test]
fn call_prints_text_json_and_streams() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = rust_plugin();
    // Human output: the response as protobuf JSON.
    let mut args = vec!["call"];
    args.extend(KV_COOKIE);
    args.extend([
        plugin[0].as_str(),
        "grpc.health.v1.Health/Check",
        r#"{"service":"plugin"}"#,
        "--",
    ]);
    args.extend(strs(&plugin[1..]));
    let output = run(dir.path(), &args);
    assert_exit(&output, 0);
    let value: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(value, serde_json::json!({"status": "SERVING"}));

    // Server streaming: Watch sends the status, then waits; the deadline
    // ends it, which is a call error (4) after one response.
    let mut args = vec!["call", "--json", "--timeout", "1s"];
    args.extend(KV_COOKIE);
    args.extend([
        plugin[0].as_str(),
        "grpc.health.v1.Health/Watch",
        r#"{"service":"plugin"}"#,
        "--",
    ]);
    args.extend(strs(&plugin[1..]));
    let output = run(dir.path(), &args);
    assert_exit(&output, 4);
    let document = stdout_json(&output);
    assert_eq!(
        document["responses"],
        serde_json::json!([{"status": "SERVING"}])
    );
    assert_eq!(document["error"]["code"], "DeadlineExceeded", "{document}");
    assert!(error_line(&output).contains("DeadlineExceeded"));
}

#[test]
fn a_failed_rpc_prints_its_status_and_exits_4() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["call", "--json"];
    args.extend(KV_COOKIE);
    let plugin = go_plugin();
    args.extend([plugin[0].as_str(), "proto.KV/Get", r#"{"key":"missing"}"#]);
    let output = run(dir.path(), &args);
    assert_exit(&output, 4);
    let document = stdout_json(&output);
    assert_eq!(document["error"]["code"], "Unknown");
    assert_eq!(document["error"]["code_number"], 2);
    assert!(
        document["error"]["message"]
            .as_str()
            .unwrap()
            .contains("kv_missing")
    );
    assert_eq!(document["error"]["details"], serde_json::json!([]));
    let line = error_line(&output);
    assert!(
        line.starts_with("goplug: error: proto.KV/Get failed: Unknown (2): open kv_missing"),
        "{line}"
    );
}

#[test]
fn checksum_matches_sha256sum() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plugin.bin");
    std::fs::write(&file, b"not really a plugin\n").unwrap();
    let expected = run_with_timeout(Command::new("sha256sum").arg(&file), RUN_TIMEOUT);
    let expected = String::from_utf8(expected.stdout).unwrap();
    let expected = expected.split_whitespace().next().unwrap().to_owned();

    let output = run(dir.path(), &["checksum", file.to_str().unwrap()]);
    assert_exit(&output, 0);
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        format!("{expected}\n")
    );
    // goplug's own parser takes it.
    let parsed: goplug::host::Checksum = expected.parse().unwrap();
    assert_eq!(parsed, goplug::host::Checksum::of_file(&file).unwrap());

    let output = run(dir.path(), &["checksum", "--json", file.to_str().unwrap()]);
    assert_exit(&output, 0);
    assert_eq!(stdout_json(&output)["sha256"], expected);

    let output = run(dir.path(), &["checksum", "no-such-file"]);
    assert_exit(&output, 2);
    assert!(error_line(&output).contains("give the path of a plugin binary"));
}

#[test]
fn demo_prints_what_demo_sh_prints() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(dir.path(), &["demo"]);
    assert_exit(&output, 0);
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        text,
        "$ ./kv put hello world\n$ ./kv get hello\nworld\n\nWritten from plugin-rust-grpc\n"
    );
    // The command lines are demo.sh's own.
    let script =
        std::fs::read_to_string(goplug_test::repo_root().join("examples/kv/demo.sh")).unwrap();
    for line in ["$ ./kv put hello world", "$ ./kv get hello"] {
        assert!(
            script.contains(&format!("echo \"\\{line}\"")),
            "{line} in demo.sh"
        );
    }
    // Its scratch directory, not ours, gets the plugin's file.
    assert!(goplug_test::leftovers(dir.path()).is_empty());

    let output = run(dir.path(), &["demo", "--json", "k", "v"]);
    assert_exit(&output, 0);
    let document = stdout_json(&output);
    assert_eq!(
        document["get"]["value"],
        "v\n\nWritten from plugin-rust-grpc"
    );
}

#[test]
fn every_subcommand_has_help_with_examples() {
    let dir = tempfile::tempdir().unwrap();
    for command in [
        &["--help"][..],
        &["inspect", "--help"],
        &["call", "--help"],
        &["checksum", "--help"],
        &["demo", "--help"],
    ] {
        let output = run(dir.path(), command);
        assert_exit(&output, 0);
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.contains("Examples:"), "{command:?}: {text}");
    }
    assert!(String::from_utf8_lossy(&run(dir.path(), &["--help"]).stdout).contains("Exit codes"));
}

// ---- bad inputs: exit code, one line that says what to do, no process left

#[test]
fn a_missing_path_is_a_plugin_failure() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["inspect"];
    args.extend(KV_COOKIE);
    args.push("./no-such-plugin");
    let output = run(dir.path(), &args);
    assert_exit(&output, 3);
    assert!(error_line(&output).contains("check the path"));
    assert!(output.stdout.is_empty());
}

#[test]
fn a_program_that_is_not_a_plugin_is_a_plugin_failure() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let not_plugin = vec!["echo".to_owned(), "hello there".to_owned()];
    let command = with_pidfile(&pidfile, &not_plugin);
    let mut args = vec!["inspect", "--json"];
    args.extend(KV_COOKIE);
    args.extend(strs(&command));
    let output = run(dir.path(), &args);
    assert_exit(&output, 3);
    let line = error_line(&output);
    assert!(line.contains("not a go-plugin plugin"), "{line}");
    assert_eq!(stdout_json(&output)["error"]["exit_code"], 3);
    assert_process_gone(read_pid(&pidfile), Duration::from_secs(5));
}

#[test]
fn a_plugin_that_logs_to_stdout_is_told_to_log_to_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let logger = vec!["echo".to_owned(), "[INFO]  plugin: starting".to_owned()];
    let command = with_pidfile(&pidfile, &logger);
    let mut args = vec!["inspect"];
    args.extend(KV_COOKIE);
    args.extend(strs(&command));
    let output = run(dir.path(), &args);
    assert_exit(&output, 3);
    let line = error_line(&output);
    assert!(
        line.contains(
            "logged \"[INFO]  plugin: starting\" on stdout, where its handshake line goes"
        ),
        "{line}"
    );
    assert!(line.contains("`goplug::log::init()`"), "{line}");
    assert_process_gone(read_pid(&pidfile), Duration::from_secs(5));
}

#[test]
fn a_plugin_that_never_handshakes_is_killed_at_the_start_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let silent = vec!["sleep".to_owned(), "60".to_owned()];
    let command = with_pidfile(&pidfile, &silent);
    let mut args = vec!["inspect", "--start-timeout", "1s"];
    args.extend(KV_COOKIE);
    args.extend(strs(&command));
    let started = std::time::Instant::now();
    let output = run(dir.path(), &args);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_exit(&output, 3);
    let line = error_line(&output);
    assert!(line.contains("no handshake within 1s"), "{line}");
    assert!(line.contains("--start-timeout"), "{line}");
    assert_process_gone(read_pid(&pidfile), Duration::from_secs(5));
}

#[test]
fn a_wrong_cookie_says_which_flags_to_pass() {
    // A Go plugin prints go-plugin's text; a goplug plugin says the
    // variable is set, but not to its value.
    let plugins = [
        (go_plugin(), "] This binary is a plugin"),
        (
            rust_plugin(),
            "] This plugin's magic cookie variable BASIC_PLUGIN is set, but not to this plugin's value",
        ),
    ];
    for (plugin, own_words) in plugins {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let command = with_pidfile(&pidfile, &plugin);
        let mut args = vec![
            "inspect",
            "--cookie-key",
            "BASIC_PLUGIN",
            "--cookie-value",
            "wrong",
        ];
        args.extend(strs(&command));
        let output = run(dir.path(), &args);
        assert_exit(&output, 3);
        let line = error_line(&output);
        assert!(
            line.contains("refused the magic cookie BASIC_PLUGIN"),
            "{line}"
        );
        assert!(line.contains("--cookie-value"), "{line}");
        // The plugin's own words are shown too, labelled.
        let stderr = stderr(&output);
        assert!(stderr.contains(own_words), "{stderr}");
        assert_process_gone(read_pid(&pidfile), Duration::from_secs(5));
    }
}

/// Calls `method` with `request` on the Go plugin (via a pid file).
fn call_go(method: &str, request: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let command = with_pidfile(&pidfile, &go_plugin());
    let mut args = vec!["call"];
    args.extend(KV_COOKIE);
    args.extend([command[0].as_str(), method, request, "--"]);
    args.extend(strs(&command[1..]));
    let output = run(dir.path(), &args);
    assert_process_gone(read_pid(&pidfile), Duration::from_secs(5));
    output
}

#[test]
fn a_method_that_does_not_exist_lists_the_ones_that_do() {
    let output = call_go("proto.KV/Delete", r#"{"key":"k"}"#);
    assert_exit(&output, 2);
    let line = error_line(&output);
    assert!(line.contains("no method \"Delete\""), "{line}");
    assert!(line.contains("Get, Put"), "{line}");

    let output = call_go("proto.Nothing/Get", "{}");
    assert_exit(&output, 2);
    let line = error_line(&output);
    assert!(line.contains("no service \"proto.Nothing\""), "{line}");
    assert!(line.contains("proto.KV"), "{line}");
}

#[test]
fn json_that_does_not_fit_the_message_names_its_fields() {
    let output = call_go("proto.KV/Put", r#"{"key":"k","value":"not base64!"}"#);
    assert_exit(&output, 2);
    let line = error_line(&output);
    assert!(line.contains("does not fit proto.PutRequest"), "{line}");
    assert!(line.contains("value (bytes)"), "{line}");

    let output = call_go("proto.KV/Get", r#"{"name":"k"}"#);
    assert_exit(&output, 2);
    assert!(error_line(&output).contains("key (string)"));
}

#[test]
fn usage_errors_exit_2_before_any_plugin_runs() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = go_plugin();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["inspect", plugin[0].as_str()], "--cookie-key"),
        (
            vec!["inspect", "--preset", "packer", plugin[0].as_str()],
            "packer-plugin-sdk",
        ),
        (
            vec!["inspect", "--preset", "nomad", plugin[0].as_str()],
            "terraform, vault",
        ),
        (
            vec![
                "call",
                "--cookie-key",
                "K",
                "--cookie-value",
                "V",
                "./p",
                "a.B/C",
                "{not json",
            ],
            "not JSON",
        ),
        (
            vec![
                "inspect",
                "--cookie-key",
                "K",
                "--cookie-value",
                "V",
                "--env",
                "NOEQUALS",
                "./p",
            ],
            "KEY=VALUE",
        ),
    ];
    for (args, needle) in cases {
        let output = run(dir.path(), &args);
        assert_exit(&output, 2);
        assert!(
            error_line(&output).contains(needle),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    // clap's own usage errors exit 2 as well.
    let output = run(dir.path(), &["inspect", "--start-timeout", "soon", "./p"]);
    assert_exit(&output, 2);
}

#[test]
fn ctrl_c_stops_the_plugin_and_exits_130() {
    use std::io::BufRead as _;
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let command = with_pidfile(&pidfile, &rust_plugin());
    let mut args = vec!["call", "--timeout", "0"];
    args.extend(KV_COOKIE);
    args.extend([
        command[0].as_str(),
        "grpc.health.v1.Health/Watch",
        r#"{"service":"plugin"}"#,
        "--",
    ]);
    args.extend(strs(&command[1..]));
    let mut child = Command::new(goplug())
        .args(&args)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let goplug_pid = child.id().to_string();
    let kill = |signal: &str| {
        let _ = Command::new("kill")
            .args([signal, goplug_pid.as_str()])
            .status();
    };
    // The stream's first response shows the call is under way.
    let stdout = child.stdout.take().unwrap();
    let (first_tx, first_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = std::io::BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = first_tx.send(line);
        // Keep reading: a closed pipe would end the stream instead.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    let Ok(first) = first_rx.recv_timeout(RUN_TIMEOUT) else {
        kill("-KILL");
        panic!("no response from the Watch stream");
    };
    assert_eq!(first.trim(), "{");
    let plugin_pid = read_pid(&pidfile);

    kill("-INT");
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(child.wait_with_output());
    });
    let Ok(output) = done_rx.recv_timeout(RUN_TIMEOUT) else {
        kill("-KILL");
        panic!("goplug did not stop on SIGINT");
    };
    let output = output.unwrap();
    assert_exit(&output, 130);
    assert!(error_line(&output).contains("interrupted"));
    assert_process_gone(plugin_pid, Duration::from_secs(5));
}

#[test]
fn a_python_plugin_without_reflection_is_called_with_its_proto_file() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let python = goplug_test::python();
    let script = goplug_test::repo_root()
        .join("interop/python/kv_plugin.py")
        .display()
        .to_string();
    let proto = goplug_test::repo_root()
        .join("examples/kv/proto/kv.proto")
        .display()
        .to_string();

    let mut args = vec!["inspect", "--json"];
    args.extend(KV_COOKIE);
    args.extend([python.as_str(), script.as_str()]);
    let output = run(dir.path(), &args);
    assert_exit(&output, 0);
    let report = stdout_json(&output);
    assert_eq!(report["protocol"], "grpc");
    assert_eq!(report["reflection"]["available"], false);

    // Without --proto, call says what to pass.
    let mut args = vec!["call"];
    args.extend(KV_COOKIE);
    args.extend([
        python.as_str(),
        "proto.KV/Get",
        r#"{"key":"k"}"#,
        "--",
        script.as_str(),
    ]);
    let output = run(dir.path(), &args);
    assert_exit(&output, 3);
    assert!(error_line(&output).contains("--proto FILE"));

    for (method, request) in [
        ("proto.KV/Put", r#"{"key":"k","value":"aGk="}"#),
        ("proto.KV/Get", r#"{"key":"k"}"#),
    ] {
        let mut args = vec!["call", "--json", "--proto", proto.as_str()];
        args.extend(KV_COOKIE);
        args.extend([python.as_str(), method, request, "--", script.as_str()]);
        let output = run(dir.path(), &args);
        assert_exit(&output, 0);
        if method.ends_with("Get") {
            let value = stdout_json(&output)["response"]["value"]
                .as_str()
                .map(|v| base64::engine::general_purpose::STANDARD.decode(v).unwrap());
            assert_eq!(
                value.as_deref(),
                Some(&b"hi\n\nWritten from plugin-python"[..])
            );
        }
    }
}

/// `call` on go-plugin's Go KV plugin with `extra` flags, in `work`.
fn call_kv_in(work: &Path, extra: &[&str], method: &str, request: &str) -> Output {
    let plugin = go_plugin();
    let mut args = vec!["call", "--json"];
    args.extend(extra);
    args.extend(KV_COOKIE);
    args.extend([plugin[0].as_str(), method, request]);
    run(work, &args)
}

/// The issue's "done means": with `--sandbox`, the Go KV plugin (its file
/// is `"kv_" + key` in its working directory) still puts and gets, but a
/// key with `/../` neither reads the file next door nor writes outside.
/// Without `--sandbox` the same keys do both, so the test can fail.
#[test]
fn call_sandbox_keeps_the_go_kv_plugin_in_its_working_directory() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    // `kv_/..` resolves only through a directory named `kv_`.
    std::fs::create_dir_all(work.join("kv_")).unwrap();
    std::fs::write(dir.path().join("secret"), "next door").unwrap();
    let planted = dir.path().join("planted");
    let value = base64::engine::general_purpose::STANDARD.encode("x");
    let put = |key: &str| format!(r#"{{"key":"{key}","value":"{value}"}}"#);
    let get = |key: &str| format!(r#"{{"key":"{key}"}}"#);

    let sandbox = ["--sandbox"];
    assert_exit(
        &call_kv_in(&work, &sandbox, "proto.KV/Put", &put("hello")),
        0,
    );
    let got = call_kv_in(&work, &sandbox, "proto.KV/Get", &get("hello"));
    assert_exit(&got, 0);
    assert!(
        stdout_json(&got)["response"]["value"].is_string(),
        "{got:?}"
    );

    let read = call_kv_in(&work, &sandbox, "proto.KV/Get", &get("/../../secret"));
    assert_exit(&read, 4);
    assert!(
        stderr(&read).contains("permission denied"),
        "{}",
        stderr(&read)
    );
    let write = call_kv_in(&work, &sandbox, "proto.KV/Put", &put("/../../planted"));
    assert_exit(&write, 4);
    assert!(
        stderr(&write).contains("permission denied"),
        "{}",
        stderr(&write)
    );
    assert!(!planted.exists(), "the sandboxed plugin wrote outside");

    // --allow-read opens that one file, and nothing to write.
    let secret = dir.path().join("secret");
    let allowed = ["--sandbox", "--allow-read", secret.to_str().unwrap()];
    let read = call_kv_in(&work, &allowed, "proto.KV/Get", &get("/../../secret"));
    assert_exit(&read, 0);
    let write = call_kv_in(&work, &allowed, "proto.KV/Put", &put("/../../planted"));
    assert_exit(&write, 4);

    // Unconfined, the same keys escape.
    let read = call_kv_in(&work, &[], "proto.KV/Get", &get("/../../secret"));
    assert_exit(&read, 0);
    let write = call_kv_in(&work, &[], "proto.KV/Put", &put("/../../planted"));
    assert_exit(&write, 0);
    assert!(planted.exists());
}

#[test]
fn inspect_sandbox_reports_the_plugin_confined() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = go_plugin();
    let mut args = vec!["inspect", "--json", "--sandbox"];
    args.extend(KV_COOKIE);
    args.push(plugin[0].as_str());
    let output = run(dir.path(), &args);
    assert_exit(&output, 0);
    let report = stdout_json(&output);
    assert_eq!(report["sandbox"]["complete"], true, "{report}");
    assert_eq!(report["shutdown"]["graceful"], true, "{report}");
    // Without the flag there is no sandbox to report.
    let output = run(
        dir.path(),
        &args
            .iter()
            .copied()
            .filter(|a| *a != "--sandbox")
            .collect::<Vec<_>>(),
    );
    assert_eq!(stdout_json(&output)["sandbox"], Value::Null);
}

#[test]
fn allow_flags_need_sandbox_and_allowed_paths_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let output = call_kv_in(dir.path(), &["--allow-read", "/etc"], "proto.KV/Get", "{}");
    assert_exit(&output, 2);
    assert!(stderr(&output).contains("--sandbox"), "{}", stderr(&output));
    let missing = dir.path().join("missing");
    let flags = ["--sandbox", "--allow-write", missing.to_str().unwrap()];
    let output = call_kv_in(dir.path(), &flags, "proto.KV/Get", "{}");
    assert_exit(&output, 2);
    assert!(
        error_line(&output).contains("missing"),
        "{}",
        stderr(&output)
    );
}

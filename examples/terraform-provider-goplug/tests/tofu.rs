//! OpenTofu v1.6.3 end to end against the Rust provider: installed from a
//! filesystem mirror and launched by tofu (cookie, version negotiation,
//! AutoMTLS, shutdown), and again started by hand with `-debug` and
//! reattached through `TF_REATTACH_PROVIDERS`.

mod support;

use support::{DebugProvider, SOURCE, Workspace, sha256};

fn config(root: &str, content: &str, with_import: bool) -> String {
    let mut tf = format!(
        r#"
terraform {{
  required_providers {{
    goplug = {{ source = "{SOURCE}", version = "0.1.0" }}
  }}
}}

provider "goplug" {{
  root = "{root}"
}}

resource "goplug_file" "a" {{
  path    = "a.txt"
  content = "{content}"
}}

# Its arguments depend on a's computed sha256: unknown while planning.
resource "goplug_file" "b" {{
  path    = "b-${{substr(goplug_file.a.sha256, 0, 8)}}.txt"
  content = "a is ${{goplug_file.a.sha256}}"
}}

data "goplug_file" "a" {{
  path = goplug_file.a.path
}}

output "a_id" {{ value = goplug_file.a.id }}
output "a_sha" {{ value = goplug_file.a.sha256 }}
output "b_path" {{ value = goplug_file.b.path }}
output "read_back" {{ value = data.goplug_file.a.content }}
output "read_sha" {{ value = data.goplug_file.a.sha256 }}
"#
    );
    if with_import {
        tf.push_str(
            r#"
resource "goplug_file" "c" {
  path    = "c.txt"
  content = "made outside"
}

output "c_sha" { value = goplug_file.c.sha256 }
"#,
        );
    }
    tf
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// b's file name for a's content.
fn b_name(a_content: &str) -> String {
    format!("b-{}.txt", &sha256(a_content)[..8])
}

/// Checks the files and outputs after applying with a's content `content`.
fn assert_applied(ws: &Workspace, content: &str, env: &[(&str, &str)]) {
    assert_eq!(read(&ws.file("a.txt")), content);
    assert_eq!(
        read(&ws.file(&b_name(content))),
        format!("a is {}", sha256(content))
    );
    let outputs = ws.outputs(env);
    assert_eq!(outputs["a_id"], "a.txt");
    assert_eq!(outputs["a_sha"], sha256(content).as_str());
    assert_eq!(outputs["b_path"], b_name(content).as_str());
    assert_eq!(outputs["read_back"], content);
    assert_eq!(outputs["read_sha"], sha256(content).as_str());
}

fn assert_clean_log(ws: &Workspace, version: u32) {
    let log = ws.log();
    assert!(
        log.contains(&format!("using plugin: version={version}")),
        "the log shows no protocol {version} provider"
    );
    assert!(
        !log.contains("plugin failed to exit gracefully"),
        "a provider was killed rather than shut down"
    );
}

#[test]
fn tofu_drives_the_provider_through_its_whole_life() {
    let ws = Workspace::with_mirror();
    ws.write_config(&config("files", "hello", false));
    let output = ws.expect(&["init", "-input=false"], 0);
    assert!(
        output.contains("localhost/goplug/goplug v0.1.0"),
        "{output}"
    );

    ws.expect(&["apply", "-auto-approve", "-input=false"], 0);
    assert_applied(&ws, "hello", &[]);
    ws.expect(&["plan", "-detailed-exitcode", "-input=false"], 0);

    // content updates a in place; b's path changes with a's hash: replaced.
    ws.write_config(&config("files", "hello, world", false));
    let output = ws.expect(&["apply", "-auto-approve", "-input=false"], 0);
    assert!(
        output.contains("Resources: 1 added, 1 changed, 1 destroyed."),
        "{output}"
    );
    assert_applied(&ws, "hello, world", &[]);
    assert!(
        !ws.file(&b_name("hello")).exists(),
        "the replaced b's file is left"
    );

    // Deleted outside: planned again, and restored.
    std::fs::remove_file(ws.file("a.txt")).unwrap();
    ws.expect(&["plan", "-detailed-exitcode", "-input=false"], 2);
    ws.expect(&["apply", "-auto-approve", "-input=false"], 0);
    assert_applied(&ws, "hello, world", &[]);

    // Changed outside: drift, and restored.
    std::fs::write(ws.file("a.txt"), "tampered").unwrap();
    let output = ws.expect(&["plan", "-detailed-exitcode", "-input=false"], 2);
    assert!(
        output.contains("tampered"),
        "the plan does not show the drift:\n{output}"
    );
    ws.expect(&["apply", "-auto-approve", "-input=false"], 0);
    assert_applied(&ws, "hello, world", &[]);
    ws.expect(&["plan", "-detailed-exitcode", "-input=false"], 0);

    // Import a file made outside, by path.
    std::fs::write(ws.file("c.txt"), "made outside").unwrap();
    ws.write_config(&config("files", "hello, world", true));
    ws.expect(&["import", "-input=false", "goplug_file.c", "c.txt"], 0);
    ws.expect(&["plan", "-detailed-exitcode", "-input=false"], 0);
    let output = ws.expect(&["state", "show", "goplug_file.c"], 0);
    assert!(output.contains(&sha256("made outside")), "{output}");

    ws.expect(&["destroy", "-auto-approve", "-input=false"], 0);
    let left: Vec<_> = std::fs::read_dir(ws.work().join("files"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "files left after destroy: {left:?}");
    assert_clean_log(&ws, 6);
}

#[test]
fn an_empty_path_is_rejected_at_the_attribute() {
    let ws = Workspace::with_mirror();
    ws.write_config(&format!(
        r#"
terraform {{
  required_providers {{
    goplug = {{ source = "{SOURCE}", version = "0.1.0" }}
  }}
}}

resource "goplug_file" "bad" {{
  path    = ""
  content = "x"
}}

data "goplug_file" "bad" {{
  path = ""
}}
"#
    ));
    ws.expect(&["init", "-input=false"], 0);
    let output = ws.expect(&["validate"], 1);
    for block in [
        r#"resource "goplug_file" "bad""#,
        r#"data "goplug_file" "bad""#,
    ] {
        assert!(
            output.contains(&format!("in {block}")),
            "no diagnostic on {block}:\n{output}"
        );
    }
    assert_eq!(output.matches("Error: Empty path").count(), 2, "{output}");
    // Attribute-scoped: tofu quotes the attribute's line, not the block's.
    assert_eq!(
        output.matches(r#"path    = """#).count() + output.matches(r#"path = """#).count(),
        2,
        "{output}"
    );
    assert_clean_log(&ws, 6);
}

#[test]
fn tofu_drives_the_provider_over_protocol_5() {
    let ws = Workspace::with_mirror();
    ws.write_config(&config("files", "five", false));
    let env = [("GOPLUG_PROVIDER_PROTOCOL", "5")];
    ws.expect_with(&["init", "-input=false"], &env, 0);
    ws.expect_with(&["apply", "-auto-approve", "-input=false"], &env, 0);
    assert_applied(&ws, "five", &env);
    ws.expect_with(&["plan", "-detailed-exitcode", "-input=false"], &env, 0);
    ws.expect_with(&["destroy", "-auto-approve", "-input=false"], &env, 0);
    assert!(!ws.file("a.txt").exists());
    assert_clean_log(&ws, 5);
}

#[test]
fn tofu_reattaches_to_the_provider_in_debug_mode() {
    let ws = Workspace::bare(tempfile::tempdir().unwrap());
    let provider = DebugProvider::start(&[]);

    let providers: serde_json::Value = serde_json::from_str(&provider.reattach)
        .unwrap_or_else(|e| panic!("{e}: {}", provider.reattach));
    let entry = &providers[SOURCE];
    assert_eq!(entry["Protocol"], "grpc");
    assert_eq!(entry["ProtocolVersion"], 6);
    assert_eq!(entry["Test"], true);
    assert_eq!(entry["Pid"], provider.child.id());
    assert_eq!(entry["Addr"]["Network"], "unix");

    // The provider runs in the test's directory: an absolute root.
    let root = ws.work().join("files").display().to_string();
    ws.write_config(&config(&root, "attached", false));
    let env = [("TF_REATTACH_PROVIDERS", provider.reattach.as_str())];
    ws.expect_with(&["init", "-input=false"], &env, 0);
    ws.expect_with(&["apply", "-auto-approve", "-input=false"], &env, 0);
    assert_applied(&ws, "attached", &env);
    ws.expect_with(&["plan", "-detailed-exitcode", "-input=false"], &env, 0);
    ws.expect_with(&["destroy", "-auto-approve", "-input=false"], &env, 0);
    assert!(!ws.file("a.txt").exists());

    let log = ws.log();
    // No mirror, no installed copy: every call went to the process above.
    assert!(
        log.contains("GRPCProvider.v6: ApplyResourceChange"),
        "no apply in the log"
    );
    assert!(
        !log.contains("starting plugin"),
        "tofu launched a provider itself"
    );
    assert!(!log.contains("plugin failed to exit gracefully"));
    // Test mode: tofu leaves the provider running; Ctrl-C stops it cleanly.
    let status = provider.interrupt();
    assert!(status.success(), "the provider exited with {status}");
}

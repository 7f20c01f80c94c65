//! One trace across the plugin boundary, in all four pairings: a host
//! (go-plugin with otelgrpc, or goplug with its `otel` feature) puts a
//! value into go-plugin's bidirectional counter plugin (Go with otelgrpc,
//! or goplug), the plugin calls the host's `AddHelper` back through the
//! broker, and the host reads the value. Each process writes the spans it
//! finished to a file of its own (`goplug_test::spanfile`); the two files
//! must make one trace with every span under the right parent, the
//! plugin's start-up joined through `TRACEPARENT`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use goplug_test::spanfile::{self, SpanRecord};
use goplug_test::{go_bin, run_with_timeout};

const RUST_HOST: &str = env!("CARGO_BIN_EXE_trace-host");
const RUST_PLUGIN: &str = env!("CARGO_BIN_EXE_trace-plugin");

/// The spans of one host run, by process.
struct Run {
    host: Vec<SpanRecord>,
    plugin: Vec<SpanRecord>,
}

fn run(host: &Path, plugin: &Path, multiplex: bool) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let (host_out, plugin_out) = (
        dir.path().join("host.jsonl"),
        dir.path().join("plugin.jsonl"),
    );
    let output = run_with_timeout(
        Command::new(host)
            .args(["a", "5"])
            .current_dir(dir.path())
            // go-plugin's host sets no socket directory, and a multiplexed
            // Go plugin never removes its socket: it goes with `dir`.
            .env("TMPDIR", dir.path())
            .env("TRACE_PLUGIN", format!("exec '{}'", plugin.display()))
            .env("TRACE_OUT_HOST", &host_out)
            .env("TRACE_OUT_PLUGIN", &plugin_out)
            .env("TRACE_MULTIPLEX", if multiplex { "1" } else { "0" })
            .env_remove("TRACEPARENT")
            .env_remove("TRACESTATE"),
        Duration::from_secs(60),
    );
    assert!(output.status.success(), "{output:?}");
    // The plugin called the host back: 0 + 5.
    assert_eq!(String::from_utf8_lossy(&output.stdout), "5\n", "{output:?}");
    Run {
        host: spanfile::read(&host_out),
        plugin: spanfile::read(&plugin_out),
    }
}

/// The one span named `name` of `kind` in `spans`.
fn one<'a>(spans: &'a [SpanRecord], name: &str, kind: &str) -> &'a SpanRecord {
    let found: Vec<&SpanRecord> = spans
        .iter()
        .filter(|s| s.name == name && s.kind == kind)
        .collect();
    assert_eq!(found.len(), 1, "one {kind} span {name} in {spans:#?}");
    found[0]
}

fn assert_child(child: &SpanRecord, parent: &SpanRecord) {
    assert_eq!(
        child.parent_span_id, parent.span_id,
        "the parent of {child:#?} is {parent:#?}"
    );
}

/// An RPC span carries otelgrpc's name and attributes.
fn assert_rpc(span: &SpanRecord) {
    assert_eq!(span.attributes["rpc.method"], span.name, "{span:#?}");
    assert_eq!(span.attributes["rpc.system.name"], "grpc", "{span:#?}");
}

fn check(case: &str, run: &Run, plugin_start: &str) {
    let all: Vec<&SpanRecord> = run.host.iter().chain(&run.plugin).collect();
    let root = one(&run.host, "host-run", "internal");
    assert_eq!(root.parent_span_id, "", "{case}: {root:#?}");
    for span in &all {
        assert_eq!(span.trace_id, root.trace_id, "{case}: one trace: {span:#?}");
        assert!(
            !span.name.starts_with("plugin.") && !span.name.starts_with("grpc.health"),
            "{case}: go-plugin's own services make no span: {span:#?}"
        );
    }

    // Start-up joins the host's span current at launch.
    assert_child(one(&run.plugin, plugin_start, "internal"), root);

    for method in ["proto.Counter/Put", "proto.Counter/Get"] {
        let client = one(&run.host, method, "client");
        let server = one(&run.plugin, method, "server");
        assert_child(client, root);
        assert_child(server, client);
        assert_rpc(client);
        assert_rpc(server);
    }
    // The broker callback: the plugin's call runs under its Put handler,
    // the host's AddHelper under that call.
    let put = one(&run.plugin, "proto.Counter/Put", "server");
    let callback = one(&run.plugin, "proto.AddHelper/Sum", "client");
    let helper = one(&run.host, "proto.AddHelper/Sum", "server");
    assert_child(callback, put);
    assert_child(helper, callback);
    assert_rpc(callback);
    assert_rpc(helper);
}

#[test]
fn one_trace_spans_host_plugin_and_the_broker_callback_in_every_pairing() {
    let hosts = [
        ("go", go_bin("trace-host")),
        ("rust", PathBuf::from(RUST_HOST)),
    ];
    let plugins = [
        ("go", go_bin("trace-plugin-go"), "plugin-start"),
        ("rust", PathBuf::from(RUST_PLUGIN), "goplug.plugin.start"),
    ];
    for multiplex in [false, true] {
        for (host_name, host) in &hosts {
            for (plugin_name, plugin, start) in &plugins {
                let case =
                    format!("{host_name} host, {plugin_name} plugin, multiplexed {multiplex}");
                check(&case, &run(host, plugin, multiplex), start);
            }
        }
    }
}

/// The Rust processes record only what the test asserts: no span of their
/// own for go-plugin's services, whatever the Go side does.
#[test]
fn rust_peers_make_spans_only_for_user_calls() {
    let run = run(Path::new(RUST_HOST), Path::new(RUST_PLUGIN), false);
    let mut names: Vec<(&str, &str, &str)> = run
        .host
        .iter()
        .chain(&run.plugin)
        .map(|s| (s.process.as_str(), s.name.as_str(), s.kind.as_str()))
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            ("rust-host", "host-run", "internal"),
            ("rust-host", "proto.AddHelper/Sum", "server"),
            ("rust-host", "proto.Counter/Get", "client"),
            ("rust-host", "proto.Counter/Put", "client"),
            ("rust-plugin", "goplug.plugin.start", "internal"),
            ("rust-plugin", "proto.AddHelper/Sum", "client"),
            ("rust-plugin", "proto.Counter/Get", "server"),
            ("rust-plugin", "proto.Counter/Put", "server"),
        ]
    );
}

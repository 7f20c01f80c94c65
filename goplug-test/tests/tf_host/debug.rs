//! Debug mode, as a provider developer uses it: the framework provider
//! started with `-debug` prints `TF_REATTACH_PROVIDERS`, the host attaches
//! to it from that line (no handshake, no TLS), leaves it running at
//! shutdown, and the provider stops on Ctrl-C.

use std::process::Stdio;
use std::time::Duration;

use goplug::reattach::ReattachConfig;
use goplug_terraform::client;
use goplug_terraform::cty::Value;
use goplug_terraform::tfplugin6 as tf;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::values::{self, Shape};

/// The provider's address, as its `main.go` serves it.
const ADDRESS: &str = "registry.terraform.io/goplug/fwdemo";

/// The value of `TF_REATTACH_PROVIDERS` in a line the Go SDKs print,
/// `\tTF_REATTACH_PROVIDERS='{...}'`, with the shell quoting undone.
fn reattach_value(line: &str) -> Option<String> {
    let (_, quoted) = line.split_once("TF_REATTACH_PROVIDERS='")?;
    let value = quoted.trim_end().strip_suffix('\'')?;
    Some(value.replace(r#"'"'"'"#, "'"))
}

#[test]
fn the_reattach_line_is_unquoted() {
    assert_eq!(
        reattach_value("\tTF_REATTACH_PROVIDERS='{\"a\":\"it'\"'\"'s\"}'\n").as_deref(),
        Some("{\"a\":\"it's\"}")
    );
    assert_eq!(reattach_value("Provider started."), None);
}

#[tokio::test]
async fn framework_provider_in_debug_mode_is_reattached_and_left_running() {
    let program = crate::providers::framework_provider();
    let mut provider_process = tokio::process::Command::new(&program)
        .arg("-debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("starting the provider in debug mode");
    let pid = provider_process.id().expect("the provider's pid");
    let mut lines = BufReader::new(provider_process.stdout.take().expect("stdout")).lines();
    let json = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines
            .next_line()
            .await
            .expect("reading the provider's stdout")
        {
            if let Some(json) = reattach_value(&line) {
                return json;
            }
        }
        panic!("the provider's stdout ended without TF_REATTACH_PROVIDERS");
    })
    .await
    .expect("TF_REATTACH_PROVIDERS within a minute");
    let mut providers = ReattachConfig::map_from_json(&json).expect("TF_REATTACH_PROVIDERS");
    let config = providers
        .remove(ADDRESS)
        .unwrap_or_else(|| panic!("{ADDRESS} in {json}"));
    assert!(config.test, "debug mode reattaches in test mode: {json}");
    assert_eq!(config.protocol_version, 6);
    assert_eq!(config.pid, pid);

    let client = client::reattach(config)
        .start()
        .await
        .expect("attaching to the provider");
    assert_eq!(client.negotiated_version(), 6);
    let mut provider = client
        .dispense(client::PROVIDER_V6)
        .expect("the provider plugin");
    let schema = provider
        .get_provider_schema(tf::get_provider_schema::Request {})
        .await
        .expect("GetProviderSchema")
        .into_inner();
    let provider_shape = Shape::of(&schema.provider);
    let echo = Shape::of(&schema.data_source_schemas["fwdemo_echo"]);
    let dynamic = |shape: &Shape, value: &Value| {
        Some(tf::DynamicValue {
            msgpack: shape.msgpack(value),
            json: Vec::new(),
        })
    };
    let configured = provider
        .configure_provider(tf::configure_provider::Request {
            terraform_version: crate::TERRAFORM_VERSION.into(),
            config: dynamic(&provider_shape, &Value::object([("prefix", "dbg-".into())])),
            client_capabilities: None,
        })
        .await
        .expect("ConfigureProvider")
        .into_inner();
    assert!(
        configured.diagnostics.is_empty(),
        "{:#?}",
        configured.diagnostics
    );
    let read = provider
        .read_data_source(tf::read_data_source::Request {
            type_name: "fwdemo_echo".into(),
            config: dynamic(&echo, &Value::object([("input", "abc".into())])),
            ..Default::default()
        })
        .await
        .expect("ReadDataSource")
        .into_inner();
    assert!(read.diagnostics.is_empty(), "{:#?}", read.diagnostics);
    let state = echo.decode(&read.state.expect("the data source's state").msgpack);
    assert_eq!(values::text(&state, "output"), Some("dbg-cba"));
    drop(provider);

    // As Terraform with a reattached provider: it only disconnects.
    let report = client.shutdown().await;
    assert!(report.left_running, "{report:?}");
    assert_eq!(
        provider_process.try_wait().expect("the provider's status"),
        None,
        "the provider must still run after the host let it go"
    );

    // The developer's Ctrl-C ends it cleanly.
    goplug_test::signal(pid, nix::sys::signal::Signal::SIGINT);
    let status = tokio::time::timeout(Duration::from_secs(30), provider_process.wait())
        .await
        .expect("the provider exits on SIGINT")
        .expect("the provider's exit status");
    assert!(status.success(), "{status}");
}

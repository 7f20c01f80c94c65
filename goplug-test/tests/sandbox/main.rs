//! The plugin sandbox (`goplug::host::Sandbox`, Linux): Rust hosts
//! confining the Rust probe (`sandbox-probe`) and go-plugin's Go probe
//! (`interop/go`'s `probe-plugin`), which answer `probe:` keys with what
//! the kernel let them do. Go hosts have no sandbox: their tests elsewhere
//! run unconfined, as before.

mod confinement;
mod everyday;
mod limits;

use std::process::Command;

use goplug::host::{Client, Sandbox};
use goplug_test::{Harness, SANDBOX_PROBE, go_bin};

/// The two probes: (name, command) for a harness.
fn probes(s: &Harness) -> [(&'static str, Command); 2] {
    [
        ("rust", s.command(&SANDBOX_PROBE)),
        ("go", s.command(go_bin("probe-plugin"))),
    ]
}

/// Starts `command` under `sandbox` (or none).
async fn start(s: &Harness, command: Command, sandbox: Option<Sandbox>) -> Client {
    let mut builder = s.kv_host(command);
    if let Some(sandbox) = sandbox {
        builder = builder.sandbox(sandbox);
    }
    builder.start().await.expect("the plugin starts")
}

/// What the plugin answers to `probe:<probe>`.
async fn probe(client: &Client, probe: &str) -> String {
    let mut kv = goplug_test::kv(client);
    let value = goplug_test::within(
        goplug_test::step(),
        probe,
        goplug_test::get(&mut kv, &format!("probe:{probe}")),
    )
    .await
    .unwrap_or_else(|status| panic!("probe {probe}: {status}"));
    String::from_utf8(value).expect("text")
}

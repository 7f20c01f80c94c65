//! goplug's host drives real Go Terraform providers, as Terraform and
//! OpenTofu do: Terraform's handshake (cookie, versions 5 and 6, gRPC
//! only, AutoMTLS), every provider RPC a plan, apply, refresh, state
//! upgrade and destroy send, each value encoded and decoded with
//! goplug-terraform's cty codecs, then go-plugin's graceful shutdown.
//!
//! - `time`: HashiCorp's terraform-provider-time v0.14.2 (protocol 5),
//!   built from the Go module proxy into a cache outside the repository
//!   (`providers.rs`) the first time;
//! - `framework`: `interop/tfprovider-framework`, a provider of ours on
//!   terraform-plugin-framework v1.19.0 (protocol 6).
//! - `debug`: the framework provider in debug mode, attached to from its
//!   `TF_REATTACH_PROVIDERS` line as Terraform does.
//! - `rust_provider`: the same host against the Rust example provider
//!   (`examples/terraform-provider-goplug`) as a process, over protocols 6
//!   and 5.
//!
//! Needs Go 1.26.8 or newer (terraform-provider-time v0.14.2's `go.mod`)
//! and the Go module proxy on a machine that has not built the providers
//! yet. Run one: `cargo test -p goplug-test --test
//! tf_host framework`.

mod debug;
mod framework;
mod providers;
mod rust_provider;
mod time_provider;
mod values;

use std::path::Path;
use std::time::Duration;

use goplug::host::Client;

/// What `terraform_version` the test says it is in `Configure`.
const TERRAFORM_VERSION: &str = "1.5.7";

/// How long a provider may take to exit after `GRPCController.Shutdown`.
/// Terraform waits 2 s; the test allows more, so a loaded machine does not
/// turn a slow exit into a kill: the assertion is that the provider exits
/// by itself.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// Launches `program` as Terraform does: protocol versions 5 and 6
/// offered, gRPC only, AutoMTLS on, the host's environment inherited.
async fn launch(program: &Path, sockets: &Path) -> Client {
    goplug_terraform::client::builder(std::process::Command::new(program))
        .unix_socket_dir(sockets)
        .shutdown_grace(SHUTDOWN_GRACE)
        .start()
        .await
        .unwrap_or_else(|e| panic!("launching {}: {e}", program.display()))
}

/// Stops the provider as Terraform does after each command (go-plugin's
/// `Kill`: `GRPCController.Shutdown`, then a grace period) and checks
/// that it exited by itself, cleanly, and left nothing in its socket
/// directory.
async fn stop_gracefully(client: Client, sockets: &Path) {
    let pid = client.pid().expect("a local provider process");
    let report = client.shutdown().await;
    assert!(
        report.graceful,
        "the provider was killed, not stopped: {report:?}"
    );
    let status = report.status.expect("the provider's exit status");
    assert!(status.success(), "the provider exited with {status}");
    goplug_test::process_gone(pid, Duration::from_secs(10)).await;
    assert!(
        goplug_test::leftovers(sockets).is_empty(),
        "the provider left files in its socket directory"
    );
}

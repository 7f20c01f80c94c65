//! The host of go-plugin's basic example: launches `./plugin/greeter`,
//! dispenses `greeter` over net/rpc and prints its greeting. Like the Go
//! host, it logs (at debug, the plugin's lines included) to stdout.
#![allow(clippy::print_stdout)] // a CLI's output, as the Go host's

use std::process::ExitCode;

use goplug::Protocol;
use goplug::host::{Client, PluginSet};
use goplug_example_greeter::{GreeterRpc, HANDSHAKE, PLUGIN_NAME};

#[tokio::main(flavor = "current_thread")]
#[expect(
    clippy::disallowed_methods,
    reason = "a host, not a plugin: go-plugin's example host logs to stdout"
)]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stdout)
        .with_max_level(tracing::Level::DEBUG)
        .with_target(false)
        .init();
    match run().await {
        Ok(greeting) => {
            println!("{greeting}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            // Go's log.Fatal.
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> goplug::Result<String> {
    let client = Client::builder(HANDSHAKE)
        .plugins(PluginSet::new().netrpc_with(PLUGIN_NAME, |rpc, _| GreeterRpc::new(rpc)))
        .command(std::process::Command::new("./plugin/greeter"))
        // go-plugin's default: net/rpc only.
        .allowed_protocols([Protocol::NetRpc])
        .start()
        .await?;
    let greeting = match client.dispense_named_async::<GreeterRpc>(PLUGIN_NAME).await {
        Ok(greeter) => greeter.greet().await,
        Err(e) => Err(e),
    };
    client.shutdown().await;
    greeting
}

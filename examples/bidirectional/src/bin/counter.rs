//! The counter host: go-plugin's `examples/bidirectional/main.go`, in Rust.
//!
//! ```sh
//! export COUNTER_PLUGIN=./counter-rust-grpc    # or go-plugin's Go plugin
//! ./counter put a 3; ./counter put a 4; ./counter get a    # prints 7
//! ```
//!
//! `COUNTER_AUTOMTLS=1` turns on AutoMTLS and `COUNTER_MULTIPLEX=1` the
//! multiplexed broker (the Go example has neither; interop/go's host
//! mirrors both). `COUNTER_SANDBOX=1` confines the plugin with goplug's
//! default sandbox (Linux; the plugin binary may be executed by the shell).
#![allow(clippy::print_stdout, clippy::print_stderr)] // a CLI's output, as the Go host's

use std::process::ExitCode;

use goplug::Protocol;
use goplug::host::{Channel, Client, PluginSet, Sandbox, shell_command};
use goplug_example_bidirectional::{Adder, HANDSHAKE, pb, pb::counter_client::CounterClient};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(code) => code,
        Err(e) => {
            println!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let plugin = std::env::var_os("COUNTER_PLUGIN").unwrap_or_default();
    let mut builder = Client::builder(HANDSHAKE)
        .plugins(PluginSet::new().grpc::<CounterClient<Channel>>("counter"))
        .command(shell_command(&plugin))
        .allowed_protocols([Protocol::NetRpc, Protocol::Grpc])
        .auto_mtls(std::env::var("COUNTER_AUTOMTLS").as_deref() == Ok("1"))
        .grpc_broker_multiplex(std::env::var("COUNTER_MULTIPLEX").as_deref() == Ok("1"));
    if std::env::var("COUNTER_SANDBOX").as_deref() == Ok("1") {
        // `sh -c PLUGIN`: the sandbox lets the shell run, and the shell
        // must be let run the plugin.
        builder = builder.sandbox(Sandbox::new().allow_exec(&plugin));
    }
    let client = builder.start().await?;
    if let Some(report) = client.sandbox_report() {
        // Which confinements are in force, for whoever runs the example.
        eprintln!("sandbox: {:?}", report.missing);
    }
    let result = use_counter(&client).await;
    client.shutdown().await;
    result
}

async fn use_counter(client: &Client) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let mut counter: CounterClient<Channel> = client.dispense_named("counter")?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["get", key, ..] => {
            let value = counter
                .get(pb::GetRequest {
                    key: (*key).to_owned(),
                })
                .await?
                .into_inner()
                .value;
            println!("{value}");
        }
        ["put", key, value, ..] => {
            let value: i64 = value.parse()?;
            // The plugin calls this back while handling the put.
            let broker = client.broker();
            let id = broker.next_id();
            let helper = broker
                .accept_and_serve(id, pb::add_helper_server::AddHelperServer::new(Adder))
                .await?;
            counter
                .put(pb::PutRequest {
                    add_server: id,
                    key: (*key).to_owned(),
                    value,
                })
                .await?;
            helper.stop();
        }
        _ => {
            println!("Please only use 'get' or 'put'");
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

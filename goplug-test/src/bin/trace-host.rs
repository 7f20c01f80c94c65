//! A traced host for go-plugin's bidirectional counter, the Rust twin of
//! `interop/go/cmd/trace-host`: inside one span `host-run` it launches the
//! plugin in `TRACE_PLUGIN` (`sh -c`), puts VALUE under KEY (the plugin
//! calls the host's `AddHelper` back through the broker), gets it and
//! prints it. Every span goes to the file named by `TRACE_OUT_HOST`;
//! `TRACE_MULTIPLEX=1` multiplexes the broker.
//!
//! ```sh
//! TRACE_PLUGIN=./trace-plugin TRACE_OUT_HOST=host.jsonl trace-host KEY VALUE
//! ```
#![allow(clippy::print_stdout)] // a CLI's output, as the Go host's

use std::process::ExitCode;

use goplug::Protocol;
use goplug::host::{Channel, Client, PluginSet, shell_command};
use goplug_example_bidirectional::{Adder, HANDSHAKE, pb, pb::counter_client::CounterClient};
use tracing::Instrument as _;

#[tokio::main]
async fn main() -> ExitCode {
    let provider = goplug_test::spanfile::init("rust-host", "TRACE_OUT_HOST");
    let result = run().instrument(tracing::info_span!("host-run")).await;
    if let Some(provider) = provider {
        let _ = provider.shutdown();
    }
    match result {
        Ok(value) => {
            println!("{value}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<i64, Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [key, value] = args.as_slice() else {
        return Err("usage: trace-host KEY VALUE".into());
    };
    let value: i64 = value.parse()?;
    let client = Client::builder(HANDSHAKE)
        .plugins(PluginSet::new().grpc::<CounterClient<Channel>>("counter"))
        .command(shell_command(
            std::env::var_os("TRACE_PLUGIN").unwrap_or_default(),
        ))
        .allowed_protocols([Protocol::Grpc])
        .grpc_broker_multiplex(std::env::var("TRACE_MULTIPLEX").as_deref() == Ok("1"))
        .start()
        .await?;
    let result = put_and_get(&client, key, value).await;
    client.shutdown().await;
    result
}

async fn put_and_get(
    client: &Client,
    key: &str,
    value: i64,
) -> Result<i64, Box<dyn std::error::Error>> {
    let mut counter: CounterClient<Channel> = client.dispense_named("counter")?;
    let broker = client.broker();
    let id = broker.next_id();
    let helper = broker
        .accept_and_serve(id, pb::add_helper_server::AddHelperServer::new(Adder))
        .await?;
    counter
        .put(pb::PutRequest {
            add_server: id,
            key: key.to_owned(),
            value,
        })
        .await?;
    helper.stop();
    let got = counter
        .get(pb::GetRequest {
            key: key.to_owned(),
        })
        .await?;
    Ok(got.into_inner().value)
}

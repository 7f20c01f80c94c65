//! The host of go-plugin's `examples/negotiated`, in Rust: it launches
//! `./kv-plugin` and offers only the version that `KV_PROTO` picks
//! (`grpc`: version 3; `netrpc`: version 2), so the plugin must negotiate.
//!
//! ```sh
//! cp negotiated-kv-plugin kv-plugin     # or go-plugin's Go plugin
//! KV_PROTO=grpc ./negotiated put hello world
//! KV_PROTO=grpc ./negotiated get hello
//! ```
#![allow(clippy::print_stdout)] // a CLI's output, as the Go host's

use std::process::ExitCode;

use goplug::Protocol;
use goplug::host::{Client, GrpcClient, PluginSet};
use goplug_example_kv::{AnyKv, HANDSHAKE, KvCommand, KvRpc, pb::kv_client::KvClient};

#[tokio::main]
async fn main() -> ExitCode {
    let version = match std::env::var("KV_PROTO").as_deref() {
        Ok("netrpc") => 2,
        Ok("grpc") => 3,
        _ => {
            println!("must set KV_PROTO to netrpc or grpc");
            return ExitCode::FAILURE;
        }
    };
    match run(version).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(version: u32) -> Result<(), Box<dyn std::error::Error>> {
    // As the Go host: version 2 is the net/rpc KV, version 3 the gRPC one.
    let plugins = match version {
        2 => PluginSet::new().netrpc_with("kv", |rpc, _| AnyKv::NetRpc(KvRpc::new(rpc))),
        _ => {
            PluginSet::new().grpc_with("kv", |channel| AnyKv::Grpc(KvClient::from_channel(channel)))
        }
    };
    let client = Client::builder(HANDSHAKE)
        .version(version, plugins)
        .command(std::process::Command::new("./kv-plugin"))
        .allowed_protocols([Protocol::NetRpc, Protocol::Grpc])
        .start()
        .await?;
    let result = use_kv(&client).await;
    client.shutdown().await;
    result
}

async fn use_kv(client: &Client) -> Result<(), Box<dyn std::error::Error>> {
    let mut kv: AnyKv = client.dispense_named_async("kv").await?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = KvCommand::parse(&args).ok_or("Please only use 'get' or 'put'")?;
    if let Some(value) = command.execute_any(&mut kv).await? {
        println!("{}", String::from_utf8_lossy(&value));
    }
    Ok(())
}

//! The KV host: go-plugin's `examples/grpc/main.go`, in Rust.
//!
//! Same arguments and environment as the Go host, so either half can be
//! swapped for the Go one:
//!
//! ```sh
//! export KV_PROTO=grpc KV_PLUGIN=./kv-rust-grpc   # or go-plugin's ./kv-go-grpc
//! # or KV_PROTO=netrpc KV_PLUGIN=./kv-rust-netrpc  (go-plugin's ./kv-go-netrpc)
//! ./kv put hello world
//! ./kv get hello
//! ```
#![allow(clippy::print_stdout)] // a CLI's output, as the Go host's

use std::process::ExitCode;

use goplug::Protocol;
use goplug::host::{Client, GrpcClient, PluginSet, shell_command};
use goplug_example_kv::{
    AnyKv, HANDSHAKE, KvCommand, KvRpc, PLUGIN_GRPC, PLUGIN_NETRPC, pb::kv_client::KvClient,
};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(code) => code,
        Err(e) => {
            println!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<ExitCode, Box<dyn std::error::Error>> {
    // As the Go host: launch the plugin first, then look at KV_PROTO.
    let command = shell_command(std::env::var_os("KV_PLUGIN").unwrap_or_default());
    let client = Client::builder(HANDSHAKE)
        .plugins(
            PluginSet::new()
                .grpc_with(PLUGIN_GRPC, |channel| {
                    AnyKv::Grpc(KvClient::from_channel(channel))
                })
                .netrpc_with(PLUGIN_NETRPC, |rpc, _| AnyKv::NetRpc(KvRpc::new(rpc))),
        )
        .command(command)
        .allowed_protocols([Protocol::NetRpc, Protocol::Grpc])
        .start()
        .await?;
    let plugin_name = match std::env::var("KV_PROTO").as_deref() {
        Ok("netrpc") => PLUGIN_NETRPC,
        Ok("grpc") => PLUGIN_GRPC,
        _ => {
            println!("must set KV_PROTO to netrpc or grpc");
            // Unlike the Go host, which exits here without killing it.
            client.shutdown().await;
            return Ok(ExitCode::FAILURE);
        }
    };
    let result = use_kv(&client, plugin_name).await;
    client.shutdown().await;
    result.map(|()| ExitCode::SUCCESS)
}

async fn use_kv(client: &Client, plugin_name: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut kv: AnyKv = client.dispense_named_async(plugin_name).await?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = KvCommand::parse(&args) else {
        let given = args.first().map(String::as_str).unwrap_or_default();
        return Err(format!("please only use 'get' or 'put', given: {given:?}").into());
    };
    if let Some(value) = command.execute_any(&mut kv).await? {
        println!("{}", String::from_utf8_lossy(&value));
    }
    Ok(())
}

//! A goplug host for tests of what happens around a host's life.
//!
//! - `launch PLUGIN-CMD`: launches the plugin (`sh -c`) the default way,
//!   prints `{"pid":N}` once it is connected, and then waits forever: the
//!   test kills this host to show the plugin does not outlive it.
//! - `detach PLUGIN-CMD KEY VALUE`: launches the plugin to keep running,
//!   puts KEY=VALUE, detaches, prints the reattach config JSON and exits 0:
//!   a host upgrade's first half.
#![allow(clippy::print_stdout)] // the test reads the report on stdout

use std::process::ExitCode;

use goplug::host::{Client, PluginSet, shell_command};
use goplug_example_kv::{HANDSHAKE, pb};

type Kv = pb::kv_client::KvClient<goplug::host::Channel>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["launch", plugin] => launch(plugin).await,
        ["detach", plugin, key, value] => detach(plugin, key, value).await,
        _ => Err("usage: lifecycle-host launch CMD | detach CMD KEY VALUE".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lifecycle-host: {e}");
            ExitCode::FAILURE
        }
    }
}

fn builder(plugin: &str) -> goplug::host::ClientBuilder {
    Client::builder(HANDSHAKE)
        .plugins(PluginSet::new().grpc_with("kv", Kv::new))
        .command(shell_command(plugin))
}

async fn launch(plugin: &str) -> Result<(), Box<dyn std::error::Error>> {
    let client = builder(plugin).start().await?;
    println!("{{\"pid\":{}}}", client.pid().unwrap_or_default());
    std::future::pending::<()>().await;
    Ok(())
}

async fn detach(plugin: &str, key: &str, value: &str) -> Result<(), Box<dyn std::error::Error>> {
    let client = builder(plugin).keep_running(true).start().await?;
    let mut kv: Kv = client.dispense_named("kv")?;
    kv.put(pb::PutRequest {
        key: key.to_owned(),
        value: value.as_bytes().to_vec(),
    })
    .await?;
    let config = client.detach()?;
    println!("{}", config.to_json());
    Ok(())
}

//! The streaming host: go-plugin's `examples/streaming/main.go`, in Rust.
//! It runs `./plugin/streamer`, limits gRPC messages to 1000 bytes both
//! ways, writes "Lorem ipsum dolor sit amet" to the file named by its one
//! argument in 10-byte chunks, and reads it back.
//!
//! ```sh
//! mkdir plugin && cp streamer-rust-grpc plugin/streamer   # or the Go plugin
//! ./streaming myfile
//! ```
//!
//! Like the Go host it logs (hclog JSON) to stderr; it also prints what it
//! read on stdout.
#![allow(clippy::print_stdout)] // a CLI's output

use std::process::ExitCode;

use goplug::Protocol;
use goplug::host::{Channel, Client, PluginSet};
use goplug_example_streaming::{CHUNK_SIZE, HANDSHAKE, MESSAGE_LIMIT, pb};
use pb::streamer_service_client::StreamerServiceClient;

#[tokio::main]
async fn main() -> ExitCode {
    // go-plugin's example logs at trace; debug shows the same lines.
    goplug::log::init_with("debug");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path] = args.as_slice() else {
        tracing::error!("expected path to file as an argument");
        return ExitCode::FAILURE;
    };
    match run(path).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(path: &str) -> Result<(), Box<dyn std::error::Error>> {
    // go-plugin's example passes 1000-byte limits as gRPC dial options.
    let plugins = PluginSet::new().grpc_with("streamer", |channel: Channel| {
        StreamerServiceClient::new(channel)
            .max_decoding_message_size(MESSAGE_LIMIT)
            .max_encoding_message_size(MESSAGE_LIMIT)
    });
    tracing::debug!("launching a client");
    let client = Client::builder(HANDSHAKE)
        .plugins(plugins)
        .command(std::process::Command::new("./plugin/streamer"))
        .allowed_protocols([Protocol::Grpc])
        .start()
        .await?;
    let result = stream(&client, path).await;
    client.shutdown().await;
    let read = result?;
    tracing::debug!(bytes = %String::from_utf8_lossy(&read), "received {} bytes", read.len());
    println!("{}", String::from_utf8_lossy(&read));
    Ok(())
}

async fn stream(client: &Client, path: &str) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let mut streamer: StreamerServiceClient<Channel> = client.dispense_named("streamer")?;
    streamer
        .configure(pb::configure::Request {
            path: path.to_owned(),
            chunk_size: CHUNK_SIZE,
        })
        .await?;
    let text = b"Lorem ipsum dolor sit amet";
    let chunk = usize::try_from(CHUNK_SIZE)?;
    let chunks: Vec<_> = text
        .chunks(chunk)
        .map(|c| pb::write::RequestChunk {
            bytes_to_write: c.to_vec(),
        })
        .collect();
    streamer.write(tokio_stream::iter(chunks)).await?;
    tracing::debug!("writing finished");
    let mut reader = streamer.read(pb::read::Request {}).await?.into_inner();
    let mut read = Vec::new();
    while let Some(chunk) = reader.message().await? {
        read.extend_from_slice(&chunk.read_bytes);
    }
    Ok(read)
}

//! The quickstart host: launches the plugin, calls both RPCs, and shuts the
//! plugin down gracefully.
//!
//! ```sh
//! cargo build -p goplug-example-quickstart
//! ./target/debug/quickstart-host ./target/debug/quickstart-plugin "hello plugin world"
//! ```
#![allow(clippy::print_stdout)] // a command-line program's output

use std::process::ExitCode;

use goplug::host::{Client, PluginSet};
use goplug_example_quickstart::pb::{ShoutRequest, WordsRequest};
use goplug_example_quickstart::{HANDSHAKE, TEXT};

#[tokio::main]
async fn main() -> ExitCode {
    // Shows the plugin's logs (target `goplug::plugin::<module>`) and goplug's
    // on stderr; without a subscriber they go nowhere. RUST_LOG filters them.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,h2=warn,hyper=warn,tonic=warn,tower=warn".into()),
        )
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        // Display, not Debug: goplug's error messages name the fix.
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let plugin = args.next().ok_or("usage: quickstart-host PLUGIN [TEXT]")?;
    let text = args
        .next()
        .unwrap_or_else(|| "hello from the host".to_owned());

    Client::builder(HANDSHAKE)
        .plugins(PluginSet::new().plugin(TEXT))
        .command(std::process::Command::new(plugin))
        // Starts the plugin, runs the body, then shuts the plugin down
        // gracefully, even when the body returns early with `?`.
        .run(async |client| -> Result<(), Box<dyn std::error::Error>> {
            let mut text_client = client.dispense(TEXT)?;
            let reply = text_client
                .shout(ShoutRequest { text: text.clone() })
                .await?;
            println!("shout: {}", reply.into_inner().text);
            let mut words = text_client.words(WordsRequest { text }).await?.into_inner();
            while let Some(word) = words.message().await? {
                println!("word {}: {}", word.index, word.word);
            }
            Ok(())
        })
        .await?
}

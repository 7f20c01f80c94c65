//! The quickstart plugin: serves `quickstart.v1.Text` to a go-plugin host.

use std::pin::Pin;
use std::process::ExitCode;

use goplug::plugin::{ServeConfig, Services};
use goplug_example_quickstart::HANDSHAKE;
use goplug_example_quickstart::pb::text_server::{Text, TextServer};
use goplug_example_quickstart::pb::{ShoutReply, ShoutRequest, Word, WordsRequest};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

struct MyText;

#[tonic::async_trait]
impl Text for MyText {
    async fn shout(&self, request: Request<ShoutRequest>) -> Result<Response<ShoutReply>, Status> {
        let text = request.into_inner().text.to_uppercase();
        tracing::info!(chars = text.len(), "shouting");
        Ok(Response::new(ShoutReply { text }))
    }

    type WordsStream = Pin<Box<dyn Stream<Item = Result<Word, Status>> + Send>>;

    async fn words(
        &self,
        request: Request<WordsRequest>,
    ) -> Result<Response<Self::WordsStream>, Status> {
        let words: Vec<Result<Word, Status>> = request
            .into_inner()
            .text
            .split_whitespace()
            .zip(0..)
            .map(|(word, index)| {
                Ok(Word {
                    index,
                    word: word.to_owned(),
                })
            })
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(words))))
    }
}

fn main() -> ExitCode {
    // Logs go to stderr as hclog JSON, which the host turns back into
    // `tracing` events. Never log to stdout: it carries the handshake.
    goplug::log::init();
    let services = Services::new().grpc("text", TextServer::new(MyText));
    goplug::plugin::run(ServeConfig::new(HANDSHAKE).plugins(services))
}

//! go-plugin's `examples/streaming`, for goplug: a plugin that stores what
//! it is sent in a file and streams it back, in chunks small enough for a
//! host that limits messages to 1000 bytes. Wire-compatible with the Go
//! example on either side.

use std::sync::Mutex;

use tokio_stream::StreamExt as _;
use tonic::{Request, Response, Status, Streaming};

/// Generated code of `proto/streamer.proto`.
#[allow(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    clippy::all
)]
pub mod pb {
    tonic::include_proto!("proto");
}

/// The handshake of go-plugin's examples.
pub const HANDSHAKE: goplug::HandshakeConfig =
    goplug::HandshakeConfig::new(1, "BASIC_PLUGIN", "hello");

/// The message limit the example host sets, both ways (bytes).
pub const MESSAGE_LIMIT: usize = 1000;
/// The chunk size the example host configures.
pub const CHUNK_SIZE: i64 = 10;

/// The plugin's streamer: a file path and a chunk size, set by `Configure`.
#[derive(Debug, Default)]
pub struct FileStreamer {
    config: Mutex<(String, usize)>,
}

impl FileStreamer {
    fn config(&self) -> Result<(String, usize), Status> {
        let (path, chunk) = self
            .config
            .lock()
            .map(|c| c.clone())
            .map_err(|_| Status::internal("configuration lock poisoned"))?;
        if path.is_empty() {
            return Err(Status::failed_precondition("Configure was not called"));
        }
        Ok((path, chunk.max(1)))
    }
}

#[tonic::async_trait]
impl pb::streamer_service_server::StreamerService for FileStreamer {
    async fn configure(
        &self,
        request: Request<pb::configure::Request>,
    ) -> Result<Response<pb::configure::Response>, Status> {
        let pb::configure::Request { path, chunk_size } = request.into_inner();
        let chunk = usize::try_from(chunk_size)
            .map_err(|_| Status::invalid_argument("negative chunk size"))?;
        if let Ok(mut config) = self.config.lock() {
            *config = (path, chunk);
        }
        Ok(Response::new(pb::configure::Response {}))
    }

    type ReadStream =
        tokio_stream::Iter<std::vec::IntoIter<Result<pb::read::ResponseChunk, Status>>>;

    async fn read(
        &self,
        _request: Request<pb::read::Request>,
    ) -> Result<Response<Self::ReadStream>, Status> {
        let (path, chunk) = self.config()?;
        tracing::debug!(path, "FileStreamer: Read");
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| Status::unknown(format!("open {path}: {e}")))?;
        let chunks: Vec<_> = bytes
            .chunks(chunk)
            .map(|c| {
                Ok(pb::read::ResponseChunk {
                    read_bytes: c.to_vec(),
                })
            })
            .collect();
        Ok(Response::new(tokio_stream::iter(chunks)))
    }

    async fn write(
        &self,
        request: Request<Streaming<pb::write::RequestChunk>>,
    ) -> Result<Response<pb::write::Response>, Status> {
        let (path, _) = self.config()?;
        tracing::debug!(path, "FileStreamer: Write");
        let mut chunks = request.into_inner();
        let mut bytes = Vec::new();
        while let Some(chunk) = chunks.next().await {
            bytes.extend_from_slice(&chunk?.bytes_to_write);
        }
        tokio::fs::write(&path, &bytes)
            .await
            .map_err(|e| Status::unknown(format!("open {path}: {e}")))?;
        tracing::debug!(
            path,
            bytes_written = bytes.len(),
            "FileStreamer: Write finished"
        );
        Ok(Response::new(pb::write::Response {}))
    }
}

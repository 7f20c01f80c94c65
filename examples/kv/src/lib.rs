//! go-plugin's `examples/grpc` KV store, for goplug: the shared part of the
//! host (`kv`) and the plugin (`kv-rust-grpc`).
//!
//! Wire-compatible with the Go original: same handshake (`BASIC_PLUGIN=hello`),
//! same proto package (`proto`) and service (`KV`). Either side can be swapped
//! for go-plugin's Go binary.

use std::path::PathBuf;

use tonic::{Request, Response, Status};

/// Generated code of `proto/kv.proto`.
#[allow(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    clippy::all
)]
pub mod pb {
    tonic::include_proto!("proto");

    /// Encoded descriptors of `kv.proto`, for the plugin's reflection service.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/kv_descriptor.bin"));
}

goplug::grpc_client!(pb::kv_client::KvClient);

/// The handshake of go-plugin's KV example.
pub const HANDSHAKE: goplug::HandshakeConfig =
    goplug::HandshakeConfig::new(1, "BASIC_PLUGIN", "hello");

/// Name of the gRPC KV plugin in the host's plugin set (`KV_PROTO=grpc`).
pub const PLUGIN_GRPC: &str = "kv_grpc";
/// Name of the net/rpc KV plugin (`KV_PROTO=netrpc`).
pub const PLUGIN_NETRPC: &str = "kv";

/// A KV store that keeps each key in a file `kv_<key>` in the working
/// directory, with a trailer naming who wrote it, as go-plugin's example
/// plugins do.
#[derive(Clone, Debug)]
pub struct FileKv {
    dir: PathBuf,
    put_trailer: String,
    get_trailer: String,
}

impl FileKv {
    /// Values get `\n\nWritten from <writer>` appended, as the Go plugin
    /// appends `Written from plugin-go-grpc`.
    pub fn new(writer: &str) -> Self {
        Self {
            dir: PathBuf::from("."),
            put_trailer: format!("\n\nWritten from {writer}"),
            get_trailer: String::new(),
        }
    }

    /// Trailers as go-plugin's `examples/negotiated` plugin writes them.
    pub fn versioned(version: u32) -> Self {
        Self {
            dir: PathBuf::from("."),
            put_trailer: format!("\n\nWritten from plugin version {version}\n"),
            get_trailer: format!("Read by plugin version {version}\n"),
        }
    }

    fn path(&self, key: &str) -> Result<PathBuf, Status> {
        if key.is_empty() || key.contains('/') || key.contains('\0') {
            return Err(Status::invalid_argument(format!("invalid key {key:?}")));
        }
        Ok(self.dir.join(format!("kv_{key}")))
    }
}

#[tonic::async_trait]
impl pb::kv_server::Kv for FileKv {
    async fn get(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::GetResponse>, Status> {
        let path = self.path(&request.get_ref().key)?;
        let mut value = tokio::fs::read(&path)
            .await
            .map_err(|e| Status::unknown(format!("open {}: {e}", path.display())))?;
        value.extend_from_slice(self.get_trailer.as_bytes());
        Ok(Response::new(pb::GetResponse { value }))
    }

    async fn put(&self, request: Request<pb::PutRequest>) -> Result<Response<pb::Empty>, Status> {
        let request = request.into_inner();
        let path = self.path(&request.key)?;
        let mut value = request.value;
        value.extend_from_slice(self.put_trailer.as_bytes());
        tokio::fs::write(&path, value)
            .await
            .map_err(|e| Status::unknown(format!("write {}: {e}", path.display())))?;
        Ok(Response::new(pb::Empty {}))
    }
}

/// The plugin's serve config: the KV service under name `kv`, as
/// go-plugin's `plugin-go-grpc` registers it.
pub fn serve_config() -> goplug::plugin::ServeConfig {
    goplug::plugin::ServeConfig::new(HANDSHAKE)
        .plugins(goplug::plugin::PluginSet::new().grpc(
            "kv",
            pb::kv_server::KvServer::new(FileKv::new("plugin-rust-grpc")),
        ))
        .file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
}

/// What the example hosts are asked to do: `get KEY` or `put KEY VALUE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvCommand {
    /// Read a key.
    Get {
        /// The key.
        key: String,
    },
    /// Store a value.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: Vec<u8>,
    },
}

impl KvCommand {
    /// Parses the host's arguments (without the program name).
    pub fn parse(args: &[String]) -> Option<Self> {
        match args {
            [verb, key, ..] if verb == "get" => Some(Self::Get { key: key.clone() }),
            [verb, key, value, ..] if verb == "put" => Some(Self::Put {
                key: key.clone(),
                value: value.clone().into_bytes(),
            }),
            _ => None,
        }
    }

    /// Runs the command; a `get` returns the value for the host to print.
    pub async fn execute(
        self,
        kv: &mut pb::kv_client::KvClient<goplug::host::Channel>,
    ) -> Result<Option<Vec<u8>>, Status> {
        match self {
            Self::Get { key } => Ok(Some(
                kv.get(pb::GetRequest { key }).await?.into_inner().value,
            )),
            Self::Put { key, value } => {
                kv.put(pb::PutRequest { key, value }).await?;
                Ok(None)
            }
        }
    }
}

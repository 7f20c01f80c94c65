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

impl FileKv {
    /// Reads `key` (with the read trailer).
    ///
    /// # Errors
    ///
    /// An invalid key, or the file's read error, as go-plugin's plugins word it.
    pub async fn read(&self, key: &str) -> Result<Vec<u8>, Status> {
        let path = self.path(key)?;
        let mut value = tokio::fs::read(&path)
            .await
            .map_err(|e| Status::unknown(format!("open {}: {e}", path.display())))?;
        value.extend_from_slice(self.get_trailer.as_bytes());
        Ok(value)
    }

    /// Writes `key` (with the writer's trailer).
    ///
    /// # Errors
    ///
    /// An invalid key, or the file's write error.
    pub async fn write(&self, key: &str, value: &[u8]) -> Result<(), Status> {
        let path = self.path(key)?;
        let mut value = value.to_vec();
        value.extend_from_slice(self.put_trailer.as_bytes());
        tokio::fs::write(&path, value)
            .await
            .map_err(|e| Status::unknown(format!("write {}: {e}", path.display())))
    }
}

#[tonic::async_trait]
impl pb::kv_server::Kv for FileKv {
    async fn get(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::GetResponse>, Status> {
        let value = self.read(&request.get_ref().key).await?;
        Ok(Response::new(pb::GetResponse { value }))
    }

    async fn put(&self, request: Request<pb::PutRequest>) -> Result<Response<pb::Empty>, Status> {
        let request = request.into_inner();
        self.write(&request.key, &request.value).await?;
        Ok(Response::new(pb::Empty {}))
    }
}

/// The plugin's serve config: the KV service under name `kv`, as
/// go-plugin's `plugin-go-grpc` registers it.
pub fn serve_config() -> goplug::plugin::ServeConfig {
    goplug::plugin::ServeConfig::new(HANDSHAKE)
        .plugins(goplug::plugin::Services::new().grpc(
            "kv",
            pb::kv_server::KvServer::new(FileKv::new("plugin-rust-grpc")),
        ))
        .file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        // Served as Vault's logical.PluginVersion: `goplug inspect` shows it.
        .plugin_version(env!("CARGO_PKG_VERSION"))
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

/// The host's view of the net/rpc KV plugin: go-plugin's `shared.RPCClient`
/// (`Plugin.Put` with a `map[string]interface{}` of `key` and `value`,
/// `Plugin.Get` with the key and a `[]byte` reply).
#[derive(Clone, Debug)]
pub struct KvRpc {
    client: goplug::netrpc::rpc::RpcClient,
}

impl KvRpc {
    /// Wraps the net/rpc client of the dispensed plugin.
    pub fn new(client: goplug::netrpc::rpc::RpcClient) -> Self {
        Self { client }
    }

    /// `Plugin.Put`.
    ///
    /// # Errors
    ///
    /// The plugin's error text, or a broken connection.
    pub async fn put(&self, key: &str, value: &[u8]) -> goplug::Result<()> {
        use goplug::netrpc::gob::{GoInterface, InterfaceValue};
        let args: std::collections::BTreeMap<String, GoInterface> = [
            ("key".to_owned(), InterfaceValue::string(key).into()),
            (
                "value".to_owned(),
                InterfaceValue::bytes(value.to_vec()).into(),
            ),
        ]
        .into_iter()
        .collect();
        let _: GoInterface = self.client.call("Plugin.Put", &args).await?;
        Ok(())
    }

    /// `Plugin.Get`.
    ///
    /// # Errors
    ///
    /// The plugin's error text, or a broken connection.
    pub async fn get(&self, key: &str) -> goplug::Result<Vec<u8>> {
        self.client.call("Plugin.Get", &key.to_owned()).await
    }
}

/// The plugin's side of the net/rpc KV: go-plugin's `shared.RPCServer`
/// around a [`FileKv`].
pub fn kv_netrpc_server(kv: FileKv) -> goplug::netrpc::rpc::NetRpcServer {
    use goplug::netrpc::gob::GoInterface;
    let (put_kv, get_kv) = (kv.clone(), kv);
    goplug::netrpc::rpc::NetRpcServer::new()
        .method(
            "Put",
            move |args: std::collections::BTreeMap<String, GoInterface>| {
                let kv = put_kv.clone();
                async move {
                    let key = args
                        .get("key")
                        .and_then(|key| key.get::<String>().ok().flatten())
                        .ok_or("Put: args[\"key\"] is not a string")?;
                    let value = args
                        .get("value")
                        .and_then(|value| value.get::<Vec<u8>>().ok().flatten())
                        .ok_or("Put: args[\"value\"] is not a []byte")?;
                    kv.write(&key, &value)
                        .await
                        .map_err(|e| e.message().to_owned())?;
                    Ok::<_, String>(GoInterface::nil())
                }
            },
        )
        .method("Get", move |key: String| {
            let kv = get_kv.clone();
            async move { kv.read(&key).await.map_err(|e| e.message().to_owned()) }
        })
}

/// The KV plugin of whichever protocol the host negotiated.
#[derive(Debug)]
pub enum AnyKv {
    /// The gRPC plugin (`kv_grpc`).
    Grpc(pb::kv_client::KvClient<goplug::host::Channel>),
    /// The net/rpc plugin (`kv`).
    NetRpc(KvRpc),
}

impl KvCommand {
    /// Runs the command on either protocol's plugin.
    ///
    /// # Errors
    ///
    /// The plugin's error, as text.
    pub async fn execute_any(self, kv: &mut AnyKv) -> Result<Option<Vec<u8>>, String> {
        match kv {
            AnyKv::Grpc(client) => self
                .execute(client)
                .await
                .map_err(|s| s.message().to_owned()),
            AnyKv::NetRpc(client) => match self {
                Self::Get { key } => client.get(&key).await.map(Some).map_err(|e| e.to_string()),
                Self::Put { key, value } => client
                    .put(&key, &value)
                    .await
                    .map(|()| None)
                    .map_err(|e| e.to_string()),
            },
        }
    }
}

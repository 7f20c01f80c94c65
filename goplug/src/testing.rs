//! Test helpers: a host client and a plugin server in one process, so a
//! plugin's services can be unit-tested through the whole goplug stack
//! (health, controller, broker, stdio, dispense) without a subprocess:
//! go-plugin's `TestPluginGRPCConn`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> goplug::Result<()> {
//! use goplug::HandshakeConfig;
//! use goplug::grpc::pb::grpc_controller_client::GrpcControllerClient as KvClient;
//!
//! const HANDSHAKE: HandshakeConfig = HandshakeConfig::new(1, "BASIC_PLUGIN", "hello");
//!
//! // The plugin's side, as its `main` would configure it, with your
//! // tonic-generated server such as `KvServer::new(MyKv)`.
//! let serve = goplug::plugin::ServeConfig::new(HANDSHAKE);
//! # let serve = serve.plugins(goplug::plugin::PluginSet::new());
//! // The host's side, with the generated client.
//! let plugins = goplug::host::PluginSet::new().grpc_with("kv", KvClient::new);
//!
//! let client = goplug::testing::connect(serve, plugins).await?;
//! client.ping().await?;
//! let _kv: KvClient<goplug::host::Channel> = client.dispense("kv")?;
//! assert!(client.shutdown().await.graceful);
//! # Ok(()) }
//! ```

use crate::error::Result;
use crate::host::{Client, PluginSet};
use crate::plugin::ServeConfig;

/// Serves `config` in this process on a private Unix socket and connects a
/// host [`Client`] with `plugins` to it. The magic cookie is not checked
/// and nothing is printed. [`Client::shutdown`] stops the server as it
/// would stop a plugin process; dropping the client stops it too.
///
/// # Errors
///
/// Errors of serving (listening, building the services) and of connecting,
/// and [`Error::Timeout`](crate::Error::Timeout) when the server does not
/// come up within 10 s.
pub async fn connect(config: ServeConfig, plugins: PluginSet) -> Result<Client> {
    crate::host::connect_in_process(config, plugins).await
}

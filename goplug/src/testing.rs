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
//! # let serve = serve.plugins(goplug::plugin::Services::new());
//! // The host's side, with the generated client.
//! let plugins = goplug::host::PluginSet::new().grpc_with("kv", KvClient::new);
//!
//! let client = goplug::testing::connect(serve, plugins).await?;
//! client.ping().await?;
//! let _kv: KvClient<goplug::host::Channel> = client.dispense_named("kv")?;
//! assert!(client.shutdown().await.graceful);
//! # Ok(()) }
//! ```

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::host::runner::{BoxFuture, PluginExit, RunningPlugin};
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
/// and [`Error::Timeout`] when the server does not
/// come up within 10 s.
pub async fn connect(config: ServeConfig, plugins: PluginSet) -> Result<Client> {
    const READY_TIMEOUT: Duration = Duration::from_secs(10);
    let started = Instant::now();
    let stop = CancellationToken::new();
    let done = CancellationToken::new();
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let (failed_tx, failed) = tokio::sync::oneshot::channel();
    {
        let (stop, done) = (stop.clone(), done.clone());
        tokio::spawn(async move {
            let ready = move |address, version| {
                let _ = ready_tx.send((address, version));
            };
            if let Err(e) = crate::plugin::serve_in_process(config, ready, stop).await {
                let _ = failed_tx.send(e);
            }
            done.cancel();
        });
    }
    let (address, version) = match tokio::time::timeout(READY_TIMEOUT, ready).await {
        Ok(Ok(ready)) => ready,
        Ok(Err(_)) => {
            return Err(failed.await.unwrap_or_else(|_| {
                Error::Config("the in-process plugin stopped before serving".to_owned())
            }));
        }
        Err(_) => {
            stop.cancel();
            return Err(Error::Timeout {
                operation: "starting the in-process plugin",
                timeout: READY_TIMEOUT,
            });
        }
    };
    let plugin = Box::new(InProcessPlugin {
        stop: stop.clone(),
        done,
    });
    let client =
        crate::host::attach_in_process(address, version, plugins, plugin, started, READY_TIMEOUT)
            .await;
    if client.is_err() {
        stop.cancel();
    }
    client
}

/// A plugin server running in the host's own process.
#[derive(Debug)]
struct InProcessPlugin {
    stop: CancellationToken,
    done: CancellationToken,
}

impl RunningPlugin for InProcessPlugin {
    fn id(&self) -> String {
        "in-process".to_owned()
    }

    fn wait(&self) -> BoxFuture<'_, PluginExit> {
        Box::pin(async move {
            self.done.cancelled().await;
            PluginExit::Gone
        })
    }

    fn kill(&self) {
        self.stop.cancel();
    }
}

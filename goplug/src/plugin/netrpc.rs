//! The plugin side of go-plugin's net/rpc protocol (its `RPCServer`):
//! every connection from the host carries a yamux session whose first three
//! streams are control, stdout and stderr; `Control` and `Dispenser` are
//! served on control, each dispensed plugin on a brokered stream as
//! service `Plugin`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::grpc::pb;
use crate::netrpc::mux_broker::MuxBroker;
use crate::netrpc::rpc::{self, NetRpcServer, Service, ServiceMap};
use crate::yamux;

/// Makes a plugin's net/rpc service for each dispense (go-plugin's
/// `Plugin.Server(broker)`).
pub(crate) type NetRpcFactory = Arc<dyn Fn(&MuxBroker) -> NetRpcServer + Send + Sync>;

/// How long the host has to open the control, stdout and stderr streams.
const STREAMS_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves one host connection until it ends or `shutdown`.
pub(crate) async fn serve_connection<T>(
    connection: T,
    plugins: Arc<HashMap<String, NetRpcFactory>>,
    stdout: Arc<tokio::sync::Mutex<Option<mpsc::Receiver<pb::StdioData>>>>,
    shutdown: CancellationToken,
) where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (session, mut incoming) =
        yamux::Session::new(connection, yamux::Mode::Server, yamux::Config::default());
    // go-plugin's order: control, stdout, stderr, all before serving.
    let streams = async {
        let control = incoming.accept().await?;
        let stdout = incoming.accept().await?;
        let stderr = incoming.accept().await?;
        Some((control, stdout, stderr))
    };
    let (control, stdout_stream, stderr_stream) = match tokio::time::timeout(
        STREAMS_TIMEOUT,
        streams,
    )
    .await
    {
        Ok(Some(streams)) => streams,
        Ok(None) => {
            tracing::debug!("[ERR] plugin: the host's session ended before its three streams");
            return;
        }
        Err(_) => {
            tracing::warn!(
                "the host did not open the control, stdout and stderr streams within {STREAMS_TIMEOUT:?}"
            );
            session.close();
            return;
        }
    };
    let broker = MuxBroker::new(session.clone());
    tokio::spawn(broker.clone().run(incoming));
    tokio::spawn(copy_stdout(stdout, stdout_stream));
    // The plugin's stderr stays its log channel (read by the host from the
    // process), so the stderr stream carries nothing and just stays open.
    let _stderr_stream = stderr_stream;

    let control_service = NetRpcServer::new()
        .method("Ping", |_: bool| async { Ok::<(), String>(()) })
        .method("Quit", {
            let shutdown = shutdown.clone();
            move |_: bool| {
                tracing::debug!("the host asked the plugin to quit");
                shutdown.cancel();
                async { Ok::<(), String>(()) }
            }
        });
    let dispenser = NetRpcServer::new().method("Dispense", {
        let (broker, shutdown) = (broker.clone(), shutdown.clone());
        move |name: String| dispense(name, plugins.clone(), broker.clone(), shutdown.clone())
    });
    let services = ServiceMap::default()
        .with("Control", Arc::new(control_service))
        .with("Dispenser", Arc::new(dispenser));
    rpc::serve(control, services, shutdown).await;
    session.close();
}

/// `Dispenser.Dispense`: a new id on the broker, where the plugin's service
/// is served once the host dials it.
async fn dispense(
    name: String,
    plugins: Arc<HashMap<String, NetRpcFactory>>,
    broker: MuxBroker,
    shutdown: CancellationToken,
) -> Result<u32, String> {
    let Some(factory) = plugins.get(&name) else {
        return Err(format!("unknown plugin type: {name}"));
    };
    let service: Arc<dyn Service> = Arc::new(factory(&broker));
    let id = broker.next_id();
    tokio::spawn(async move {
        match broker.accept(id).await {
            Ok(stream) => {
                let services = ServiceMap::default().with("Plugin", service);
                rpc::serve(stream, services, shutdown).await;
            }
            Err(e) => tracing::error!("[ERR] go-plugin: plugin dispense error: {name}: {e}"),
        }
    });
    Ok(id)
}

/// Copies what the plugin prints on stdout to the host's stdout stream.
async fn copy_stdout(
    stdout: Arc<tokio::sync::Mutex<Option<mpsc::Receiver<pb::StdioData>>>>,
    mut stream: yamux::Stream,
) {
    // Only the first connection gets the plugin's stdout, as only one
    // host connection ever reads it in go-plugin.
    let Some(mut output) = stdout.lock().await.take() else {
        return;
    };
    // The capture ends at shutdown, once what was printed before is sent.
    while let Some(data) = output.recv().await {
        if stream.write_all(&data.data).await.is_err() || stream.flush().await.is_err() {
            return;
        }
    }
}

//! The two ways of serving besides one gRPC server on the listener:
//! go-plugin's net/rpc protocol, and gRPC multiplexed over one yamux session.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

use super::netrpc;
use crate::error::{Error, Result};
use crate::grpc::pb;
use crate::transport::dial::BoxedIo;
use crate::transport::listen::BoundListener;
use crate::transport::mux::Muxer;
use crate::transport::serve::{SHUTDOWN_DRAIN, accept_one, serve_on};

/// A plugin set's net/rpc plugins, and the captured stdout.
pub(super) type NetRpcServing = (
    Arc<HashMap<String, netrpc::NetRpcFactory>>,
    Arc<Mutex<Option<mpsc::Receiver<pb::StdioData>>>>,
);

/// What the negotiated plugin set is served with.
pub(super) enum Serving {
    Grpc(Routes),
    NetRpc(NetRpcServing),
}

/// Serves go-plugin's net/rpc protocol: every host connection (through TLS
/// when configured) gets its own yamux session. The socket is removed at
/// the end.
pub(super) async fn serve_netrpc(
    listener: BoundListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    (plugins, stdout): NetRpcServing,
    shutdown: &CancellationToken,
) -> Result<()> {
    let connections = tokio_util::task::TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            accepted = accept_one(&listener) => accepted,
            () = shutdown.cancelled() => break,
        };
        let connection = match accepted {
            Ok(connection) => connection,
            Err(e) => {
                tracing::error!("[ERR] plugin: plugin server: {e}");
                break;
            }
        };
        let (plugins, stdout, shutdown) = (plugins.clone(), stdout.clone(), shutdown.clone());
        let tls = tls.clone();
        connections.spawn(async move {
            let Some(config) = tls else {
                netrpc::serve_connection(connection, plugins, stdout, shutdown).await;
                return;
            };
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(connection)).await {
                Ok(Ok(stream)) => netrpc::serve_connection(stream, plugins, stdout, shutdown).await,
                Ok(Err(e)) => tracing::debug!("[ERR] plugin: TLS handshake with the host: {e}"),
                Err(_) => tracing::debug!("[ERR] plugin: TLS handshake with the host timed out"),
            }
        });
    }
    connections.close();
    // Replies in flight (Quit's, say) get a moment to go out.
    let _ = tokio::time::timeout(SHUTDOWN_DRAIN, connections.wait()).await;
    drop(listener);
    Ok(())
}

/// Serves go-plugin's multiplexed way: the host's first connection carries
/// a yamux session whose streams are the main server's connections, except
/// those a broker knock claimed. The socket is removed at the end.
pub(super) async fn serve_multiplexed(
    server: tonic::transport::server::Router,
    listener: BoundListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: &CancellationToken,
    muxer_slot: watch::Sender<Option<Arc<Muxer>>>,
) -> Result<()> {
    use tokio_stream::StreamExt;
    let accepted: std::io::Result<BoxedIo> = tokio::select! {
        accepted = accept_one(&listener) => accepted,
        () = shutdown.cancelled() => return Ok(()),
    };
    let connection =
        accepted.map_err(|e| Error::listen("accepting the host's connection", Some(e.into())))?;
    tracing::debug!("initial server connection accepted");
    let (mux, main) = Muxer::plugin(connection);
    muxer_slot.send_replace(Some(mux.clone()));
    let incoming = tokio_stream::wrappers::ReceiverStream::new(main).map(Ok::<_, std::io::Error>);
    let result = serve_on(server, incoming, tls, shutdown).await;
    mux.close();
    // The listener (and the socket with its directory) goes last.
    drop(listener);
    result
}

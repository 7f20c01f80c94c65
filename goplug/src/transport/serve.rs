//! Serving gRPC on what a listener accepts, plain or through TLS, with
//! hyper's HTTP/2 abuse guards turned back on: the plugin's main server
//! and every brokered server, on both sides.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::coalesce::CoalescedWrites;
#[cfg(feature = "plugin")]
use super::dial::BoxedIo;
use super::incoming;
use super::listen::BoundListener;
use crate::error::{Error, Result};

/// How long in-flight requests may finish after a shutdown request. The Go
/// host kills the plugin 2 s after asking, so stay well inside that.
pub(crate) const SHUTDOWN_DRAIN: Duration = Duration::from_millis(500);

/// Concurrent HTTP/2 streams per connection on goplug's servers. A host
/// with more calls in flight queues the rest until streams close, so the
/// limit is high enough that a busy Go host is not throttled by it
/// (grpc-go servers allow unbounded streams; BENCHMARKS.md has the
/// measurements), while a hostile host still runs at most this many
/// handlers per connection (hyper drops a handler when its stream is reset).
pub(crate) const MAX_CONCURRENT_STREAMS: u32 = 1024;

/// HTTP/2 receive windows of every goplug connection: its servers and its
/// host channel. hyper's server default of 1 MiB made a 1 MiB gRPC message
/// (plus its 5-byte prefix) wait a round trip for a window update. The
/// connection window also bounds what a host can make a plugin buffer.
pub(crate) const STREAM_WINDOW_BYTES: u32 = 2 * 1024 * 1024;
pub(crate) const CONNECTION_WINDOW_BYTES: u32 = 5 * 1024 * 1024;

/// The HTTP/2 server every goplug gRPC server (the plugin's, and each
/// brokered one, plain or multiplexed) starts from: tonic turns hyper's
/// HTTP/2 abuse guards off by default, and this restores them (stream,
/// reset and header-list limits against floods and rapid reset), and with
/// the `otel` feature runs each call in its server span.
pub(crate) fn server_builder() -> tonic::transport::Server {
    let builder = tonic::transport::Server::builder();
    // A span per call, the child of the trace context the call carries.
    #[cfg(feature = "otel")]
    let builder = builder.trace_fn(super::trace::server_call);
    builder
        .max_concurrent_streams(Some(MAX_CONCURRENT_STREAMS))
        .http2_max_local_error_reset_streams(Some(1024))
        .http2_max_pending_accept_reset_streams(Some(20))
        .http2_max_header_list_size(Some(16 * 1024))
        .initial_stream_window_size(Some(STREAM_WINDOW_BYTES))
        .initial_connection_window_size(Some(CONNECTION_WINDOW_BYTES))
        .concurrency_limit_per_connection(2 * MAX_CONCURRENT_STREAMS as usize)
}

/// The first connection to `listener`.
#[cfg(feature = "plugin")]
pub(crate) async fn accept_one(listener: &BoundListener) -> std::io::Result<BoxedIo> {
    Ok(match listener {
        BoundListener::Unix { listener, .. } => Box::new(listener.accept().await?.0),
        BoundListener::Tcp(listener) => {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            Box::new(stream)
        }
    })
}

/// Serves on a bound listener, through TLS when configured, until
/// `shutdown`; then removes a Unix socket and its directory.
pub(crate) async fn serve_listener(
    server: tonic::transport::server::Router,
    listener: BoundListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: &CancellationToken,
) -> Result<()> {
    match listener {
        BoundListener::Unix {
            listener,
            path,
            cleanup,
        } => {
            let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
            let result = serve_on(server, incoming, tls, shutdown).await;
            drop(path);
            if let Err(e) = cleanup.close() {
                tracing::debug!("removing the socket: {e}");
            }
            result
        }
        BoundListener::Tcp(listener) => {
            let incoming =
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            serve_on(server, incoming, tls, shutdown).await
        }
    }
}

/// Serves on `incoming` (sockets, or multiplexed streams), through TLS
/// when configured, until shutdown.
pub(crate) async fn serve_on<I, S, E>(
    server: tonic::transport::server::Router,
    incoming: I,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: &CancellationToken,
) -> Result<()>
where
    I: tokio_stream::Stream<Item = Result<S, E>> + Send + Unpin + 'static,
    S: tokio::io::AsyncRead
        + tokio::io::AsyncWrite
        + tonic::transport::server::Connected
        + Unpin
        + Send
        + 'static,
    S::ConnectInfo: Clone + Send + Sync + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + std::fmt::Display + Send,
{
    use tokio_stream::StreamExt;
    let stopped = shutdown.clone().cancelled_owned();
    match tls {
        Some(config) => {
            let incoming = incoming::tls_incoming(incoming, config, shutdown.clone())
                .map(|tls| tls.map(|s| CoalescedWrites::new(incoming::PrefaceDeadline::new(s))));
            run_until_drained(
                server.serve_with_incoming_shutdown(incoming, stopped),
                shutdown,
            )
            .await
        }
        None => {
            let incoming = incoming.map(|accepted| {
                accepted.map(|s| CoalescedWrites::new(incoming::PrefaceDeadline::new(s)))
            });
            run_until_drained(
                server.serve_with_incoming_shutdown(incoming, stopped),
                shutdown,
            )
            .await
        }
    }
}

async fn run_until_drained(
    server: impl Future<Output = std::result::Result<(), tonic::transport::Error>>,
    shutdown: &CancellationToken,
) -> Result<()> {
    tokio::select! {
        result = server => result.map_err(Error::Serve),
        () = async {
            shutdown.cancelled().await;
            tokio::time::sleep(SHUTDOWN_DRAIN).await;
        } => {
            tracing::debug!("in-flight requests did not finish within {SHUTDOWN_DRAIN:?}; stopping anyway");
            Ok(())
        }
    }
}

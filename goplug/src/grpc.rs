//! go-plugin's internal gRPC services (proto package `plugin`) and the
//! pieces of the gRPC transport shared by both sides.

/// Generated messages, clients and servers of proto package `plugin`:
/// `GRPCController`, `GRPCStdio` and `GRPCBroker`.
#[allow(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    clippy::all,
    clippy::pedantic
)]
pub mod pb {
    tonic::include_proto!("plugin");
}

/// The health-check service name go-plugin hosts ping (`GRPCServiceName`).
pub const HEALTH_SERVICE_NAME: &str = "plugin";

/// go-plugin hosts send and accept messages up to `math.MaxInt32` bytes.
pub const HOST_MAX_MESSAGE_SIZE: usize = i32::MAX as usize;

/// Concurrent HTTP/2 streams per connection on goplug's servers. The
/// stream limit is the one of the abuse guards a well-behaved host meets: a host
/// with more calls in flight queues the rest until streams close. grpc-go
/// servers allow unbounded streams; at 128 a Go host with 1,000 callers
/// made 31k calls/s against a Go plugin's 37k (the queued calls wait on
/// grpc-go's stream quota), at 1,024 it made 42-47k. Hostile hosts are
/// still bounded: at most this many handlers run per connection (hyper
/// drops a handler when its stream is reset).
pub(crate) const MAX_CONCURRENT_STREAMS: u32 = 1024;

/// HTTP/2 receive windows of every goplug connection: its servers and its
/// host channel (whose values are hyper's client's). hyper's server default of 1 MiB
/// made a 1 MiB gRPC message (plus its 5-byte prefix) wait a round trip
/// for a window update: a Go host echoing 1 MiB through a Rust plugin made
/// 225 MiB/s against 280 through a Go plugin, and 385 with these windows.
/// The connection window also bounds what a host can make a plugin buffer.
pub(crate) const STREAM_WINDOW_BYTES: u32 = 2 * 1024 * 1024;
pub(crate) const CONNECTION_WINDOW_BYTES: u32 = 5 * 1024 * 1024;

/// The HTTP/2 server every goplug gRPC server (the plugin's, and each
/// brokered one, plain or multiplexed) starts from: tonic turns hyper's
/// HTTP/2 abuse guards off by default, and this restores them (stream,
/// reset and header-list limits against floods and rapid reset).
pub(crate) fn server_builder() -> tonic::transport::Server {
    tonic::transport::Server::builder()
        .max_concurrent_streams(Some(MAX_CONCURRENT_STREAMS))
        .http2_max_local_error_reset_streams(Some(1024))
        .http2_max_pending_accept_reset_streams(Some(20))
        .http2_max_header_list_size(Some(16 * 1024))
        .initial_stream_window_size(Some(STREAM_WINDOW_BYTES))
        .initial_connection_window_size(Some(CONNECTION_WINDOW_BYTES))
        .concurrency_limit_per_connection(2 * MAX_CONCURRENT_STREAMS as usize)
}

/// The encoded file descriptor set of the `plugin` protos, for reflection.
pub(crate) const PLUGIN_FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/plugin_descriptor.bin"));

/// A tonic service a plugin (or a brokered server) can serve: what
/// tonic-generated servers such as `KvServer<T>` are.
pub trait GrpcService:
    tower::Service<
        http::Request<tonic::body::Body>,
        Response = http::Response<tonic::body::Body>,
        Error = std::convert::Infallible,
        Future: Send + 'static,
    > + tonic::server::NamedService
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> GrpcService for S where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
            Future: Send + 'static,
        > + tonic::server::NamedService
        + Clone
        + Send
        + Sync
        + 'static
{
}

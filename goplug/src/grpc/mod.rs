//! go-plugin's internal gRPC services (proto package `plugin`), Vault's
//! plugin version service (package `logical`) and the pieces of the gRPC
//! transport shared by both sides.

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

pub mod broker;
pub mod version;

pub use crate::protocol::{HEALTH_SERVICE_NAME, HOST_MAX_MESSAGE_SIZE};

/// The encoded file descriptor set of the `plugin` protos, for reflection.
#[cfg(feature = "plugin")]
pub(crate) const PLUGIN_FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/plugin_descriptor.bin"));

/// A tonic service a plugin (or a brokered server) can serve: what
/// tonic-generated servers such as `KvServer<T>` are.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a gRPC service a plugin can serve",
    label = "expected a tonic-generated server such as `KvServer<MyKv>`",
    note = "wrap your implementation in the generated server: `XServer::new(my_impl)`",
    note = "on a host, register clients in `goplug::host::PluginSet`; `goplug::plugin::Services` is the plugin's side"
)]
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

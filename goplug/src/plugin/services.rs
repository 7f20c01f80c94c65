//! [`Services`]: the services a plugin serves for one app protocol version.

use std::fmt;
use std::sync::Arc;

use tonic::service::RoutesBuilder;

use super::netrpc;
use crate::error::{Error, Result};
use crate::grpc::GrpcService;
use crate::grpc::broker::GrpcBroker;
use crate::protocol::handshake::Protocol;

/// Adds one gRPC plugin's service to the server's routes.
pub(super) type AddRoutes = Box<dyn FnOnce(&mut RoutesBuilder, &GrpcBroker) + Send>;

/// The services a plugin serves for one app protocol version: the
/// plugin's half of go-plugin's `PluginSet` (name to implementation). The
/// host's half is `goplug::host::PluginSet`.
///
/// The names only matter to net/rpc hosts; a gRPC host dispenses locally
/// and reaches every service of the negotiated set over one connection.
#[derive(Default)]
pub struct Services {
    /// Plugin name, gRPC service name, how to add it.
    pub(super) plugins: Vec<(String, &'static str, AddRoutes)>,
    /// net/rpc plugins: name, how to make its service per dispense.
    pub(super) netrpc: Vec<(String, netrpc::NetRpcFactory)>,
}

impl fmt::Debug for Services {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Services")
            .field("plugins", &self.names())
            .finish()
    }
}

impl Services {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a gRPC plugin: a tonic-generated server wrapping your
    /// implementation, such as `KvServer::new(MyKv)`.
    #[must_use]
    pub fn grpc<S>(self, name: impl Into<String>, service: S) -> Self
    where
        S: GrpcService,
    {
        self.grpc_with_broker(name, move |_| service)
    }

    /// Adds a gRPC plugin built with the plugin's [`GrpcBroker`], for
    /// services that call back into the host (go-plugin's
    /// `GRPCServer(broker, server)`): `|broker| CounterServer::new(MyCounter::new(broker.clone()))`.
    #[must_use]
    pub fn grpc_with_broker<S>(
        mut self,
        name: impl Into<String>,
        make: impl FnOnce(&GrpcBroker) -> S + Send + 'static,
    ) -> Self
    where
        S: GrpcService,
    {
        self.plugins.push((
            name.into(),
            <S as tonic::server::NamedService>::NAME,
            Box::new(move |routes: &mut RoutesBuilder, broker: &GrpcBroker| {
                routes.add_service(make(broker));
            }),
        ));
        self
    }

    /// The plugin names in this set.
    pub fn names(&self) -> Vec<&str> {
        self.plugins
            .iter()
            .map(|(name, ..)| name.as_str())
            .chain(self.netrpc.iter().map(|(name, _)| name.as_str()))
            .collect()
    }

    /// Adds a net/rpc plugin (go-plugin's `Plugin` interface): `make` builds
    /// its service for each dispense, with the connection's [`MuxBroker`]
    /// for extra streams. A set is served over net/rpc when it holds net/rpc
    /// plugins; one set cannot mix both protocols (go-plugin's rule).
    ///
    /// [`MuxBroker`]: crate::netrpc::mux_broker::MuxBroker
    #[must_use]
    pub fn netrpc(
        mut self,
        name: impl Into<String>,
        make: impl Fn(&crate::netrpc::mux_broker::MuxBroker) -> crate::netrpc::rpc::NetRpcServer
        + Send
        + Sync
        + 'static,
    ) -> Self {
        self.netrpc.push((name.into(), Arc::new(make)));
        self
    }

    /// Whether the set has no plugins at all.
    pub(super) fn is_empty(&self) -> bool {
        self.plugins.is_empty() && self.netrpc.is_empty()
    }

    /// The protocol this set is served with.
    pub(super) fn protocol(&self) -> Result<Protocol> {
        match (self.plugins.is_empty(), self.netrpc.is_empty()) {
            (_, true) => Ok(Protocol::Grpc),
            (true, false) => Ok(Protocol::NetRpc),
            (false, false) => Err(Error::Config(format!(
                "a plugin set mixes gRPC and net/rpc plugins ({:?}); all plugins of a set must use the same protocol",
                self.names()
            ))),
        }
    }
}

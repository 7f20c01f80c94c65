//! Typed plugin handles: a plugin declared once, as a name and the client
//! it is dispensed as, then registered and dispensed with the same value,
//! so a wrong client type is a compile error instead of a run-time one.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use super::client::Client;
use super::plugin_set::GrpcClient;
use crate::error::Result;
use crate::grpc::broker::GrpcBroker;
use crate::netrpc::mux_broker::MuxBroker;
use crate::netrpc::rpc::RpcClient;
use crate::transport::Channel;

/// A gRPC plugin a host dispenses: its name in the plugin set and the
/// client it is dispensed as. Declare it once, next to the generated code:
///
/// ```
/// # mod pb { #[derive(Debug, Clone)] pub struct KvClient<T>(T);
/// #   impl<T> KvClient<T> { pub fn new(t: T) -> Self { Self(t) }
/// #     pub fn max_decoding_message_size(self, _: usize) -> Self { self }
/// #     pub fn max_encoding_message_size(self, _: usize) -> Self { self } } }
/// use goplug::host::{Channel, GrpcPlugin, PluginSet};
///
/// goplug::grpc_client!(pb::KvClient);
/// pub const KV: GrpcPlugin<pb::KvClient<Channel>> = GrpcPlugin::new("kv");
///
/// let plugins = PluginSet::new().plugin(KV);
/// // later: let mut kv = client.dispense(KV)?;
/// ```
pub struct GrpcPlugin<C> {
    name: &'static str,
    make: MakeGrpc<C>,
}

enum MakeGrpc<C> {
    Channel(fn(Channel) -> C),
    Broker(fn(Channel, &GrpcBroker) -> C),
}

impl<C: GrpcClient> GrpcPlugin<C> {
    /// A plugin dispensed as the generated client `C` (see
    /// [`grpc_client!`](crate::grpc_client)), with go-plugin's host message
    /// limits.
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            make: MakeGrpc::Channel(C::from_channel),
        }
    }
}

impl<C> GrpcPlugin<C> {
    /// A plugin dispensed as what `make` builds on the plugin's channel,
    /// such as `KvClient::new` or a wrapper of your own.
    pub const fn with_channel(name: &'static str, make: fn(Channel) -> C) -> Self {
        Self {
            name,
            make: MakeGrpc::Channel(make),
        }
    }

    /// A plugin whose client also gets the host's [`GrpcBroker`], for
    /// interfaces that pass callbacks to the plugin (go-plugin's
    /// `GRPCClient(ctx, broker, conn)`).
    pub const fn with_broker(name: &'static str, make: fn(Channel, &GrpcBroker) -> C) -> Self {
        Self {
            name,
            make: MakeGrpc::Broker(make),
        }
    }

    /// The plugin's name in the plugin set.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The client on `channel` alone; `None` for a handle that needs a broker.
    pub(super) fn make_on_channel(&self, channel: Channel) -> Option<C> {
        match self.make {
            MakeGrpc::Channel(make) => Some(make(channel)),
            MakeGrpc::Broker(_) => None,
        }
    }

    pub(super) fn make(&self, channel: Channel, broker: &GrpcBroker) -> C {
        match self.make {
            MakeGrpc::Channel(make) => make(channel),
            MakeGrpc::Broker(make) => make(channel, broker),
        }
    }
}

/// A net/rpc plugin a host dispenses: its name and how its client is built
/// on the net/rpc client of the plugin's `Plugin` service (go-plugin's
/// `Plugin.Client(broker, rpcClient)`). Dispensing one is a call to the
/// plugin, so `client.dispense(HANDLE)` returns a future.
pub struct NetRpcPlugin<C> {
    name: &'static str,
    make: fn(RpcClient, &MuxBroker) -> C,
}

impl<C> NetRpcPlugin<C> {
    /// A plugin dispensed as what `make` builds.
    pub const fn new(name: &'static str, make: fn(RpcClient, &MuxBroker) -> C) -> Self {
        Self { name, make }
    }

    /// The plugin's name in the plugin set.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    pub(super) fn make(&self, client: RpcClient, broker: &MuxBroker) -> C {
        (self.make)(client, broker)
    }
}

// Copy and Clone by hand: derives would require `C: Copy`.
impl<C> Clone for GrpcPlugin<C> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<C> Copy for GrpcPlugin<C> {}
impl<C> Clone for MakeGrpc<C> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<C> Copy for MakeGrpc<C> {}
impl<C> Clone for NetRpcPlugin<C> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<C> Copy for NetRpcPlugin<C> {}

impl<C> fmt::Debug for GrpcPlugin<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcPlugin")
            .field("name", &self.name)
            .field("client", &std::any::type_name::<C>())
            .finish()
    }
}

impl<C> fmt::Debug for NetRpcPlugin<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetRpcPlugin")
            .field("name", &self.name)
            .field("client", &std::any::type_name::<C>())
            .finish()
    }
}

/// A typed plugin handle: [`GrpcPlugin`] or [`NetRpcPlugin`]. What
/// [`PluginSet::plugin`](super::PluginSet::plugin) registers and
/// [`Client::dispense`] dispenses.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a plugin handle",
    label = "expected a `GrpcPlugin<_>` or `NetRpcPlugin<_>` constant",
    note = "declare the plugin once, e.g. `const KV: GrpcPlugin<KvClient<Channel>> = GrpcPlugin::new(\"kv\");`, then register and dispense `KV`; to dispense by name use `dispense_named`"
)]
pub trait PluginHandle: Copy + sealed::Sealed + 'static {
    /// What dispensing the handle gives: the client for gRPC, a future
    /// of it for net/rpc.
    type Dispensed<'a>;

    #[doc(hidden)]
    fn register(self, set: super::PluginSet) -> super::PluginSet;

    #[doc(hidden)]
    fn dispense_from(self, client: &Client) -> Self::Dispensed<'_>;
}

mod sealed {
    pub trait Sealed {}
    impl<C> Sealed for super::GrpcPlugin<C> {}
    impl<C> Sealed for super::NetRpcPlugin<C> {}
}

impl<C: Send + 'static> PluginHandle for GrpcPlugin<C> {
    type Dispensed<'a> = Result<C>;

    fn register(self, set: super::PluginSet) -> super::PluginSet {
        set.grpc_with_broker(self.name, move |channel, broker| self.make(channel, broker))
    }

    fn dispense_from(self, client: &Client) -> Result<C> {
        client.dispense_grpc_handle(self)
    }
}

/// The future [`Client::dispense`] returns for a [`NetRpcPlugin`].
pub type DispenseFuture<'a, C> = Pin<Box<dyn Future<Output = Result<C>> + Send + 'a>>;

impl<C: Send + 'static> PluginHandle for NetRpcPlugin<C> {
    type Dispensed<'a> = DispenseFuture<'a, C>;

    fn register(self, set: super::PluginSet) -> super::PluginSet {
        set.netrpc_with(self.name, move |client, broker| self.make(client, broker))
    }

    fn dispense_from(self, client: &Client) -> DispenseFuture<'_, C> {
        Box::pin(client.dispense_netrpc_handle(self))
    }
}

//! What a host can dispense: plugin names and their client types
//! (go-plugin's `PluginSet`, host half), and the macro that makes a
//! tonic-generated client dispensable.

use std::any::{Any, TypeId, type_name};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::grpc::broker::GrpcBroker;
use crate::netrpc::mux_broker::MuxBroker;
use crate::netrpc::rpc::RpcClient;
use crate::transport::Channel;

/// A generated tonic client that goplug can build on the plugin's channel.
///
/// Implement it with [`grpc_client!`](crate::grpc_client), which also lifts
/// tonic's 4 MiB message limit to go-plugin's `MaxInt32`, as a Go host does.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a gRPC client goplug can build",
    label = "no `GrpcClient` impl for this type",
    note = "invoke `goplug::grpc_client!(pb::x_client::XClient);` in the crate that runs `tonic::include_proto!` (the orphan rule forbids it elsewhere)",
    note = "or build it yourself: `GrpcPlugin::with_channel(\"x\", XClient::new)`, or `XClient::new(client.channel())` without a plugin set",
    note = "the client's channel type must be `goplug::host::Channel`, not `tonic::transport::Channel`"
)]
pub trait GrpcClient: Send + 'static {
    /// Builds the client on the plugin's connection.
    fn from_channel(channel: Channel) -> Self;
}

/// Implements [`GrpcClient`] for tonic-generated
/// clients, with go-plugin's host message limits (`MaxInt32` both ways).
///
/// Invoke it in the crate that includes the generated code (the one that
/// calls `tonic::include_proto!`): Rust's orphan rule rejects the impl in
/// any other crate (`error[E0117]`). A host binary in the same package as
/// a `lib.rs` holding the protos counts as another crate.
///
/// ```
/// # mod pb { #[derive(Debug, Clone)] pub struct KvClient<T>(T);
/// #   impl<T> KvClient<T> { pub fn new(t: T) -> Self { Self(t) }
/// #     pub fn max_decoding_message_size(self, _: usize) -> Self { self }
/// #     pub fn max_encoding_message_size(self, _: usize) -> Self { self } } }
/// goplug::grpc_client!(pb::KvClient);
/// ```
#[macro_export]
macro_rules! grpc_client {
    ($($($segment:ident)::+),+ $(,)?) => {
        $(
            impl $crate::host::GrpcClient for $($segment)::+<$crate::host::Channel> {
                fn from_channel(channel: $crate::host::Channel) -> Self {
                    $($segment)::+::new(channel)
                        .max_decoding_message_size($crate::grpc::HOST_MAX_MESSAGE_SIZE)
                        .max_encoding_message_size($crate::grpc::HOST_MAX_MESSAGE_SIZE)
                }
            }
        )+
    };
}

type GrpcFactory = Arc<dyn Fn(Channel, &GrpcBroker) -> Box<dyn Any + Send> + Send + Sync>;
type NetRpcFactory = Arc<dyn Fn(RpcClient, &MuxBroker) -> Box<dyn Any + Send> + Send + Sync>;

/// Builds a registered plugin's client on the plugin's connection.
#[derive(Clone)]
pub(super) enum ClientFactory {
    Grpc(GrpcFactory),
    NetRpc(NetRpcFactory),
}

/// One plugin of a set: its client type, checked at dispense, and how to
/// build the client.
#[derive(Clone)]
pub(super) struct Registration {
    type_id: TypeId,
    type_name: &'static str,
    pub(super) factory: ClientFactory,
}

/// The plugins a host can dispense for one app protocol version: name to
/// client type. go-plugin's `PluginSet`, host half.
#[derive(Clone, Default)]
pub struct PluginSet {
    entries: BTreeMap<String, Registration>,
}

impl fmt::Debug for PluginSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (name, entry) in &self.entries {
            map.entry(name, &entry.type_name);
        }
        map.finish()
    }
}

impl PluginSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a plugin declared as a typed handle ([`GrpcPlugin`] or
    /// [`NetRpcPlugin`]); dispense it with the same handle:
    /// `client.dispense(KV)`.
    ///
    /// [`GrpcPlugin`]: super::GrpcPlugin
    /// [`NetRpcPlugin`]: super::NetRpcPlugin
    #[must_use]
    pub fn plugin<P: super::PluginHandle>(self, plugin: P) -> Self {
        plugin.register(self)
    }

    /// Adds a plugin dispensed by name as the gRPC client `C`
    /// ([`Client::dispense_named`](super::Client::dispense_named)).
    #[must_use]
    pub fn grpc<C: GrpcClient>(self, name: impl Into<String>) -> Self {
        self.grpc_with(name, C::from_channel)
    }

    /// Adds a plugin dispensed as whatever `make` builds on the channel,
    /// such as your own wrapper around a generated client.
    #[must_use]
    pub fn grpc_with<C: Send + 'static>(
        self,
        name: impl Into<String>,
        make: impl Fn(Channel) -> C + Send + Sync + 'static,
    ) -> Self {
        self.grpc_with_broker(name, move |channel, _| make(channel))
    }

    /// Adds a plugin whose client also gets the host's [`GrpcBroker`], for
    /// interfaces that pass callbacks to the plugin (go-plugin's
    /// `GRPCClient(ctx, broker, conn)`).
    #[must_use]
    pub fn grpc_with_broker<C: Send + 'static>(
        self,
        name: impl Into<String>,
        make: impl Fn(Channel, &GrpcBroker) -> C + Send + Sync + 'static,
    ) -> Self {
        let factory = ClientFactory::Grpc(Arc::new(move |channel, broker| {
            Box::new(make(channel, broker))
        }));
        self.register::<C>(name.into(), factory)
    }

    /// Adds a net/rpc plugin dispensed as whatever `make` builds on the
    /// net/rpc client of the plugin's `Plugin` service (go-plugin's
    /// `Plugin.Client(broker, rpcClient)`). Dispense it with
    /// [`Client::dispense_named_async`](super::Client::dispense_named_async).
    #[must_use]
    pub fn netrpc_with<C: Send + 'static>(
        self,
        name: impl Into<String>,
        make: impl Fn(RpcClient, &MuxBroker) -> C + Send + Sync + 'static,
    ) -> Self {
        let factory = ClientFactory::NetRpc(Arc::new(move |client, broker| {
            Box::new(make(client, broker))
        }));
        self.register::<C>(name.into(), factory)
    }

    /// Registers `name` as dispensed as a `C`, built by `factory`.
    fn register<C: 'static>(mut self, name: String, factory: ClientFactory) -> Self {
        self.entries.insert(
            name,
            Registration {
                type_id: TypeId::of::<C>(),
                type_name: type_name::<C>(),
                factory,
            },
        );
        self
    }

    /// The plugin names in this set.
    pub fn names(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }

    /// The plugin registered as `name`, if its client type is `T`.
    pub(super) fn registration<T: 'static>(&self, name: &str) -> Result<&Registration> {
        let registration = self.entries.get(name).ok_or_else(|| Error::UnknownPlugin {
            name: name.to_owned(),
            available: self.names(),
        })?;
        if registration.type_id != TypeId::of::<T>() {
            return Err(type_error::<T>(name, registration));
        }
        Ok(registration)
    }
}

fn type_error<T>(name: &str, registration: &Registration) -> Error {
    Error::DispenseType {
        name: name.to_owned(),
        registered: registration.type_name,
        requested: type_name::<T>(),
    }
}

/// The client a factory built, as the type the caller asked for.
pub(super) fn downcast<T: 'static>(
    name: &str,
    registration: &Registration,
    client: Box<dyn Any + Send>,
) -> Result<T> {
    client
        .downcast::<T>()
        .map(|client| *client)
        .map_err(|_| type_error::<T>(name, registration))
}

/// The plugin sets a host offers, by app protocol version (go-plugin's
/// `VersionedPlugins`). A version given twice is remembered and refused at
/// start, instead of one of the sets being silently dropped.
#[derive(Debug, Default)]
pub(super) struct VersionedSets {
    pub(super) sets: BTreeMap<u32, PluginSet>,
    given_twice: Option<u32>,
}

impl VersionedSets {
    pub(super) fn insert(&mut self, version: u32, plugins: PluginSet) {
        if self.sets.insert(version, plugins).is_some() {
            self.given_twice.get_or_insert(version);
        }
    }

    /// The sets, or the error for a version given twice.
    pub(super) fn into_sets(self) -> Result<BTreeMap<u32, PluginSet>> {
        match self.given_twice {
            Some(version) => Err(Error::Config(format!(
                "the plugin set of app protocol version {version} was given twice (by `plugins` or `version`); give each version one PluginSet, with one `.plugin(..)` per plugin"
            ))),
            None => Ok(self.sets),
        }
    }
}

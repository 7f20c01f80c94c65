//! Go's `net/rpc` with its default gob codec: the wire format of go-plugin's
//! net/rpc protocol (the `Control` and `Dispenser` services, and every
//! plugin's `Plugin.<Method>` calls).
//!
//! A plugin implements its interface as a [`NetRpcServer`](rpc::NetRpcServer)
//! (one async function per method) and registers it with
//! [`plugin::Services::netrpc`](crate::plugin::Services::netrpc); a host
//! registers a client type with
//! [`host::PluginSet::netrpc_with`](crate::host::PluginSet::netrpc_with)
//! and calls through [`RpcClient`](rpc::RpcClient), typed
//! ([`call`](rpc::RpcClient::call)) or untyped
//! ([`call_value`](rpc::RpcClient::call_value), for any Go plugin).
//! `examples/greeter` and the KV example's net/rpc plugin show both halves.
//!
//! - [`gob`]: Go's `encoding/gob` stream format, pure (no I/O): an
//!   [`Encoder`](gob::Encoder) and a bounded, incremental
//!   [`Decoder`](gob::Decoder) over dynamic [`Type`](gob::Type)s and
//!   [`Value`](gob::Value)s, and the [`Gob`](gob::Gob) trait that maps Rust
//!   types onto them.
//! - [`codec`]: net/rpc's message framing on top of it: a request or
//!   response header followed by its body, one gob stream per direction.
//! - [`rpc`]: net/rpc's client and server over a byte stream.
//! - [`mux_broker`]: go-plugin's `MuxBroker`, extra streams by id.

pub mod codec;
pub mod gob;
pub mod mux_broker;
pub mod rpc;

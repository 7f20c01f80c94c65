//! The I/O both sides share: dialing and listening on Unix sockets or
//! loopback TCP, TLS (AutoMTLS and manual), serving gRPC on accepted
//! connections, write coalescing, the yamux-backed multiplexer of the
//! multiplexed broker, the host's HTTP/2 channel, and (feature `otel`) trace
//! context on gRPC calls.

pub(crate) mod channel;
pub(crate) mod coalesce;
pub(crate) mod dial;
pub(crate) mod incoming;
pub(crate) mod listen;
pub(crate) mod mux;
pub(crate) mod serve;
pub mod tls;
#[cfg(feature = "otel")]
pub(crate) mod trace;

pub use channel::Channel;
#[cfg(feature = "host")]
pub(crate) use channel::{Route, RouteFuture};
#[cfg(feature = "plugin")]
pub use listen::Transport;

use crate::protocol::PluginAddress;

/// Translates addresses between where a plugin runs and where its host
/// runs (go-plugin's `runner.AddrTranslator`): a plugin in a container
/// announces addresses the host must rewrite before dialing, and the
/// host's brokered servers need the opposite rewrite.
pub(crate) trait AddrTranslator: Send + Sync + 'static {
    /// An address the plugin announced, as the host can dial it.
    fn plugin_to_host(&self, address: PluginAddress) -> PluginAddress;
    /// An address of the host's, as the plugin can dial it.
    fn host_to_plugin(&self, address: PluginAddress) -> PluginAddress;
}

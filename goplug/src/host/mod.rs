//! The host side: launch a plugin, negotiate, connect, dispense typed
//! clients, and shut it down.
//!
//! ```no_run
//! # async fn example() -> goplug::Result<()> {
//! use goplug::host::{Channel, Client, GrpcPlugin, PluginSet};
//! use goplug::{HandshakeConfig, Protocol};
//! use tonic_health::pb::health_client::HealthClient;
//!
//! const HANDSHAKE: HandshakeConfig = HandshakeConfig::new(1, "BASIC_PLUGIN", "hello");
//! // A generated client such as `KvClient<Channel>`: `GrpcPlugin::new("kv")`
//! // after `grpc_client!`.
//! const HEALTH: GrpcPlugin<HealthClient<Channel>> =
//!     GrpcPlugin::with_channel("health", HealthClient::new);
//!
//! let client = Client::builder(HANDSHAKE)
//!     .plugins(PluginSet::new().plugin(HEALTH))
//!     .command(std::process::Command::new("./kv-plugin"))
//!     .start()
//!     .await?;
//! let mut health = client.dispense(HEALTH)?;
//! client.ping().await?;
//! let report = client.shutdown().await;
//! assert!(report.graceful);
//! # let _ = health; Ok(()) }
//! ```

mod attach;
mod builder;
mod checksum;
mod client;
mod connected;
#[cfg(feature = "container")]
pub mod container;
pub mod discover;
mod exit;
mod handle;
#[cfg(feature = "plugin")]
mod in_process;
mod launch;
mod log_callsites;
mod netrpc;
mod plugin_log;
mod plugin_set;
mod process;
mod program;
mod reattach_builder;
pub mod runner;
mod sandbox;
mod shutdown;
mod socket_dir;
mod stdio;
pub mod supervisor;
mod ticket;
#[cfg(feature = "otel")]
mod trace;
mod version;

use std::ffi::OsString;
use std::time::Duration;

pub use crate::error::SandboxFeature;
pub use crate::protocol::Checksum;
pub use crate::protocol::VersionConstraint;
pub use crate::transport::Channel;
pub use builder::ClientBuilder;
pub use client::Client;
#[cfg(feature = "container")]
pub use container::ContainerRunner;
pub use exit::ExitCause;
pub use handle::{DispenseFuture, GrpcPlugin, NetRpcPlugin, PluginHandle};
pub use plugin_set::{GrpcClient, PluginSet};
pub use reattach_builder::ReattachBuilder;
pub use runner::{LocalRunner, Runner, RunningPlugin};
pub use sandbox::{Sandbox, SandboxMode, SandboxReport};
pub use shutdown::ShutdownReport;
pub use ticket::ReattachTicket;
pub use version::MissingVersion;

#[cfg(feature = "plugin")]
pub(crate) use in_process::attach_in_process;

/// go-plugin's default start timeout.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a plugin has to exit after a shutdown request (go-plugin: 2 s).
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Longest handshake line accepted. A line with an AutoMTLS certificate is
/// about 1.3 KiB; go-plugin's scanner stops at 64 KiB.
pub const HANDSHAKE_LINE_LIMIT: usize = 16 * 1024;

/// Builds the command go-plugin's example hosts use: `sh -c <line>`.
pub fn shell_command(line: impl Into<OsString>) -> std::process::Command {
    let mut command = std::process::Command::new("sh");
    command.arg("-c").arg(line.into());
    command
}

//! The plugin side: serve tonic services to a go-plugin host.
//!
//! A plugin binary builds a [`ServeConfig`] and hands it to [`run`] (from a
//! plain `main`) or awaits [`serve`] (inside a runtime). goplug then does
//! what go-plugin's `plugin.Serve` does: checks the magic cookie, negotiates
//! the app protocol version, listens on a Unix socket (or TCP), registers the
//! health, reflection, controller and stdio services next to yours, prints
//! the handshake line on stdout, ignores SIGINT, and serves until the host
//! asks it to shut down.
//!
//! ```no_run
//! use goplug::HandshakeConfig;
//! use goplug::plugin::{ServeConfig, Services};
//!
//! const HANDSHAKE: HandshakeConfig = HandshakeConfig::new(1, "BASIC_PLUGIN", "hello");
//!
//! fn main() -> std::process::ExitCode {
//! #   // Stand-in for a tonic-generated server such as `KvServer::new(MyKv)`.
//! #   let kv_server = tonic_health::server::health_reporter().1;
//!     let config = ServeConfig::new(HANDSHAKE).plugins(Services::new().grpc("kv", kv_server));
//!     goplug::plugin::run(config)
//! }
//! ```
//!
//! For the smallest and fastest-starting binaries, build plugins with the
//! workspace's `plugin` profile, statically linked, and pack the code they
//! run with `scripts/plugin-order.sh`: an idle plugin then keeps about
//! 2 MiB resident instead of 4 (README, "Writing a plugin").

mod builtin;
mod config;
mod entry;
pub(crate) mod netrpc;
mod parent;
mod process;
mod reflection;
mod routes;
mod services;
mod serving;
mod tls;
#[cfg(feature = "otel")]
mod trace;
mod transports;
mod version;

pub use config::{Runtime, ServeConfig};
#[cfg(feature = "host")]
pub(crate) use entry::serve_in_process;
pub use entry::{run, run_debug, serve, serve_debug};
pub use services::Services;

pub use crate::transport::Transport;

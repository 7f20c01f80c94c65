//! Logging across the process boundary, in hclog's JSON line format.
//!
//! A plugin's stderr is its log channel. On the plugin side,
//! [`HclogLayer`] turns `tracing` events into the JSON lines a go-plugin
//! host parses (`@level`, `@message`, `@module`, `@timestamp` with exactly
//! six fractional digits, and your key/values), so that
//! `tracing::warn!(user = "x", "denied")` shows up in a Go host's log as
//! `[WARN] plugin.name: denied: user=x`. On the host side,
//! [`StderrParser`] reads lines the way go-plugin does, and the host
//! re-emits them as `tracing` events (target `goplug::plugin`).
//!
//! ```no_run
//! // In a plugin's main, before serving:
//! goplug::log::init();
//! tracing::info!(version = 3, "starting");
//! ```
//!
//! The `tracing` layer and [`init`] come with the `plugin` feature; the
//! line format and the parser are always here.

#[cfg(feature = "plugin")]
mod layer;

#[cfg(feature = "plugin")]
pub use layer::{HclogLayer, init, init_with};

pub use crate::protocol::hclog::{LogLevel, LogRecord, StderrParser, format_entry};

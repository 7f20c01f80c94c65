//! Terraform and OpenTofu providers in Rust, on goplug.
//!
//! - [`tfplugin5`] and [`tfplugin6`]: the plugin protocols' messages, and
//!   tonic clients and servers for them;
//! - [`cty`]: Terraform's values and types, with the msgpack and JSON
//!   codecs hosts use;
//! - [`HANDSHAKE`]: the go-plugin handshake both hosts launch providers
//!   with.
//!
//! - [`ProviderServer`] with the [`Provider`], [`Resource`] and
//!   [`DataSource`] traits, [`schema`] builders and [`diagnostics`]: the
//!   provider side, with no wire types in sight;
//! - [`run`] and [`serve`]: Terraform's handshake on goplug's plugin side
//!   (cookie, protocol 5 and 6 negotiated, AutoMTLS), and `-debug` mode
//!   printing a `TF_REATTACH_PROVIDERS` line.
//!
//! Feature `provider` (default) is the provider side, `host` makes the
//! generated clients dispensable from a goplug host.
//!
//! A provider with one resource type, whole (the workspace README,
//! "Writing a Terraform provider in Rust", shows how to install and run
//! it):
//!
//! ```no_run
//! use goplug_terraform::cty::{AttributePath, Type, Value};
//! use goplug_terraform::schema::{Attribute, Schema};
//! use goplug_terraform::{
//!     ChangeRequest, ConfigureRequest, Diagnostic, Diagnostics, Provider, ProviderServer, Resource,
//! };
//!
//! /// The provider: no configuration of its own.
//! struct Hello;
//!
//! impl Provider for Hello {
//!     async fn configure(&self, _request: ConfigureRequest<'_>) -> Diagnostics {
//!         Diagnostics::new()
//!     }
//! }
//!
//! /// `hello_file`: a file with some text in it.
//! struct HelloFile;
//!
//! impl Resource for HelloFile {
//!     fn schema(&self) -> Schema {
//!         Schema::new()
//!             .attribute(Attribute::new("path", Type::String).required().requires_replace())
//!             .attribute(Attribute::new("text", Type::String).required())
//!             .attribute(Attribute::new("id", Type::String).computed())
//!     }
//!
//!     async fn validate(&self, config: &Value) -> Diagnostics {
//!         let mut diags = Diagnostics::new();
//!         if config.get("path").and_then(Value::as_str) == Some("") {
//!             // Points at the `path = ""` line of the configuration.
//!             diags.push(Diagnostic::error("Empty path", "").at(AttributePath::attribute("path")));
//!         }
//!         diags
//!     }
//!
//!     async fn create(&self, request: ChangeRequest<'_>) -> Result<Value, Diagnostics> {
//!         let path = request.planned_state.get("path").and_then(Value::as_str).unwrap_or_default();
//!         let text = request.planned_state.get("text").and_then(Value::as_str).unwrap_or_default();
//!         std::fs::write(path, text)
//!             .map_err(|e| Diagnostic::error("Cannot write", e.to_string()).at(AttributePath::attribute("path")))?;
//!         Ok(Value::object([("path", path.into()), ("text", text.into()), ("id", path.into())]))
//!     }
//!
//!     async fn read(&self, state: &Value) -> Result<Option<Value>, Diagnostics> {
//!         let path = state.get("path").and_then(Value::as_str).unwrap_or_default();
//!         Ok(std::fs::read_to_string(path).ok().map(|text| {
//!             Value::object([("path", path.into()), ("text", text.into()), ("id", path.into())])
//!         }))
//!     }
//!
//!     async fn update(&self, request: ChangeRequest<'_>) -> Result<Value, Diagnostics> {
//!         self.create(request).await
//!     }
//!
//!     async fn delete(&self, state: &Value) -> Result<(), Diagnostics> {
//!         let path = state.get("path").and_then(Value::as_str).unwrap_or_default();
//!         let _ = std::fs::remove_file(path);
//!         Ok(())
//!     }
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     let server = ProviderServer::new(Hello).resource("hello_file", HelloFile);
//!     goplug_terraform::run(server, "registry.terraform.io/example/hello")
//! }
//! ```

pub mod cty;
#[cfg(feature = "provider")]
mod data_source;
#[cfg(feature = "provider")]
pub mod diagnostics;
#[cfg(feature = "provider")]
mod erased;
mod error;
#[cfg(feature = "provider")]
mod provider;
#[cfg(feature = "provider")]
mod resource;
#[cfg(feature = "provider")]
pub mod schema;
#[cfg(feature = "provider")]
mod serve;
#[cfg(feature = "provider")]
mod server;

#[cfg(feature = "provider")]
pub use data_source::DataSource;
#[cfg(feature = "provider")]
pub use diagnostics::{Diagnostic, Diagnostics, Severity};
pub use error::{Encoding, Error, Result};
#[cfg(feature = "provider")]
pub use provider::{ConfigureRequest, Provider};
#[cfg(feature = "provider")]
pub use resource::{ChangeRequest, Plan, PlanRequest, Resource};
#[cfg(feature = "provider")]
pub use serve::{Mode, reattach_line, run, serve, serve_debug};
#[cfg(feature = "provider")]
pub use server::ProviderServer;

/// The handshake Terraform and OpenTofu use for every provider: cookie
/// `TF_PLUGIN_MAGIC_COOKIE`; app protocol versions 5 and 6 are offered
/// through `PLUGIN_PROTOCOL_VERSIONS`, and 4 is the legacy default the
/// hosts never offer.
pub const HANDSHAKE: goplug::HandshakeConfig = goplug::HandshakeConfig::new(
    4,
    "TF_PLUGIN_MAGIC_COOKIE",
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2",
);

/// The name hosts dispense a provider under (go-plugin's plugin name in
/// Terraform's `VersionedPlugins`).
pub const PROVIDER_PLUGIN_NAME: &str = "provider";

#[cfg(feature = "host")]
goplug::grpc_client!(
    tfplugin5::provider_client::ProviderClient,
    tfplugin6::provider_client::ProviderClient,
);

#[cfg(feature = "host")]
pub mod client;

/// Protocol 5 (`tfplugin5`): messages, `provider_client`,
/// `provider_server`, and the `Provisioner` service.
#[allow(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    clippy::all,
    clippy::pedantic
)]
pub mod tfplugin5 {
    tonic::include_proto!("tfplugin5");

    /// The encoded file descriptor set of `tfplugin5.proto`, for reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/tfplugin5_descriptor.bin"));
}

/// Protocol 6 (`tfplugin6`): messages, `provider_client` and
/// `provider_server`.
#[allow(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    clippy::all,
    clippy::pedantic
)]
pub mod tfplugin6 {
    tonic::include_proto!("tfplugin6");

    /// The encoded file descriptor set of `tfplugin6.proto`, for reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/tfplugin6_descriptor.bin"));
}

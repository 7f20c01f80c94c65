//! goplug: HashiCorp's [go-plugin] for Rust, wire-compatible with Go's
//! go-plugin v1.8 in both directions.
//!
//! A plugin is a separate program. The host launches it, the plugin prints
//! one handshake line on stdout, and from then on the two speak gRPC over a
//! Unix socket (or loopback TCP). goplug implements both halves:
//!
//! - **Rust host, any plugin**: [`host::Client`] launches plugins written
//!   with Go's go-plugin, with goplug, or in any language that follows the
//!   protocol (Python with grpcio, for one), and hands out typed tonic
//!   clients.
//! - **Rust plugin, any host**: [`plugin::run`] serves your tonic services
//!   so that a Go program using go-plugin cannot tell the plugin from a Go
//!   one.
//!
//! [go-plugin]: https://github.com/hashicorp/go-plugin
//!
//! # Getting started
//!
//! The README's "Getting started" walks from an empty directory to a host
//! and a plugin; `examples/quickstart` holds the same files, built and
//! tested. In short:
//!
//! ```toml
//! [dependencies]
//! goplug = "0.1"
//! # The versions goplug is built with (re-exported as goplug::tonic,
//! # goplug::prost): generated code names these crates directly.
//! tonic = { version = "0.14", default-features = false, features = ["transport", "router", "codegen"] }
//! tonic-prost = "0.14"
//! prost = "0.14"
//! tokio = { version = "1", features = ["rt-multi-thread", "macros"] }
//!
//! [build-dependencies]
//! protox = "0.10"            # compiles .proto files without protoc
//! tonic-prost-build = "0.14"
//! ```
//!
//! `build.rs` runs `tonic_prost_build::configure().compile_fds(protox::compile(["proto/x.proto"], ["proto"])?)`;
//! `.cargo/config.toml` sets `AWS_LC_SYS_NO_JITTER_ENTROPY = "1"` under
//! `[env]` (otherwise aws-lc's jitter entropy slows every process's first
//! random number, so every AutoMTLS launch). The crate that includes the
//! generated code declares the plugin once and invokes
//! [`grpc_client!`] (the orphan rule allows it nowhere else):
//!
//! ```ignore
//! pub mod pb { tonic::include_proto!("quickstart.v1"); }
//! goplug::grpc_client!(pb::text_client::TextClient);
//! pub const TEXT: GrpcPlugin<pb::text_client::TextClient<Channel>> = GrpcPlugin::new("text");
//! ```
//!
//! The plugin serves `Services::new().grpc("text", TextServer::new(MyText))`
//! with [`plugin::run`]; the host registers `PluginSet::new().plugin(TEXT)`,
//! and [`host::ClientBuilder::run`] starts the plugin, hands the body a
//! client (`client.dispense(TEXT)?` is a `TextClient`), and shuts the
//! plugin down gracefully when the body ends.
//!
//! # Design overview
//!
//! ```text
//!   host process                                     plugin process
//!  ┌──────────────────────────┐  env: cookie, PLUGIN_PROTOCOL_VERSIONS,
//!  │ host::Client             │       PLUGIN_UNIX_SOCKET_DIR, ports ...
//!  │  spawn ──────────────────┼─────────────────────▶┌──────────────────────────┐
//!  │                          │                      │ plugin::serve            │
//!  │  read 1st stdout line ◀──┼──── stdout ──────────│  check cookie, negotiate │
//!  │  "1|3|unix|/tmp/…|grpc|" │                      │  listen, print handshake │
//!  │                          │                      │                          │
//!  │  stderr tail, copy  ◀────┼──── stderr ──────────│  logs                    │
//!  │                          │                      │                          │
//!  │  tonic Channel ──────────┼── gRPC over unix ───▶│ grpc.health.v1.Health    │
//!  │   ping, dispense::<C>()  │      socket          │ plugin.GRPCController    │
//!  │   shutdown(): Shutdown   │                      │ plugin.GRPCStdio         │
//!  │   RPC, 2 s grace, kill   │                      │ reflection, your services│
//!  └──────────────────────────┘                      └──────────────────────────┘
//! ```
//!
//! # Layers
//!
//! Each layer uses only the layers below it; `host` and `plugin` are
//! siblings that never use each other (`scripts/check-layers.sh` keeps it
//! so, and ARCHITECTURE.md has the whole map):
//!
//! ```text
//!   testing                  in-process tests: the only module with both sides
//!   host        plugin       launch, attach, dispense  |  negotiate, bind, announce, serve
//!   grpc (broker)  netrpc  log   go-plugin's services  |  gob + net/rpc  |  hclog logging
//!   transport                dial, listen, serve, TLS, mux, the host's HTTP/2 channel
//!   sys  yamux               pidfds, process tree, launcher, sandbox  |  hashicorp/yamux
//!   error                    the crate's error type
//!   protocol                 pure: handshake line, env names, reattach, checksum, hclog format, versions
//! ```
//!
//! The [`protocol`] module is the pure core both sides share: parsing and
//! printing the handshake line, version negotiation, reattach configs and
//! hclog lines, with no I/O.
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `host` | yes | [`host`]: launching, attaching to and calling plugins; [`discover`]; the plugin sandbox ([`host::Sandbox`], Linux: Landlock, seccomp, rlimits, namespaces) |
//! | `plugin` | yes | [`plugin`]: serving to a go-plugin host; reflection; [`log::init`] and the hclog `tracing` layer |
//! | `otel` | no | one OpenTelemetry trace across the boundary: W3C `traceparent`/`tracestate` on every gRPC call both ways (broker callbacks included), client and server spans named as grpc-go's otelgrpc names them, and `TRACEPARENT` in a launched plugin's environment |
//! | `metrics` | no | supervised plugins' calls, call latencies, restarts and resource usage (RSS, CPU time, fds) through the `metrics` crate facade, labelled `plugin`, for whatever exporter the program installs |
//! | `container` | no | `host::ContainerRunner`: plugins as OCI containers through the Docker Engine API (Docker, Podman), over a local Unix socket, with bollard; implies `host` |
//!
//! With `otel`, spans are `tracing` spans (target `goplug::rpc`, level
//! info): install `tracing-opentelemetry`'s layer to export them. Without
//! the layer nothing is carried. go-plugin's own services (health, stdio,
//! broker stream, controller) make no span; net/rpc calls carry nothing
//! (net/rpc has no metadata), so a net/rpc plugin joins a trace only at
//! start-up. The README's "Traces across the boundary" shows the Go side's
//! otelgrpc setup next to this one.
//!
//! [`testing`] needs both. A plugin binary can build with
//! `default-features = false, features = ["plugin"]`, a host with
//! `features = ["host"]`.
//!
//! goplug runs on Unix only (Linux for pidfds and the parent-death signal).
//!
//! # Writing a plugin
//!
//! Implement the tonic-generated trait of your service and hand the
//! generated server to [`plugin::run`] from `main`:
//!
//! ```no_run
//! use goplug::HandshakeConfig;
//! use goplug::plugin::{Services, ServeConfig};
//!
//! const HANDSHAKE: HandshakeConfig = HandshakeConfig::new(1, "BASIC_PLUGIN", "hello");
//!
//! fn main() -> std::process::ExitCode {
//! #   // Stand-in for a tonic-generated server such as `KvServer::new(MyKv)`.
//! #   let kv_server = tonic_health::server::health_reporter().1;
//!     goplug::plugin::run(ServeConfig::new(HANDSHAKE).plugins(Services::new().grpc("kv", kv_server)))
//! }
//! ```
//!
//! Run by hand, the binary refuses with go-plugin's message and exit
//! status 1; launched by a host it serves until the host shuts it down.
//!
//! # Writing a host
//!
//! ```no_run
//! # async fn example() -> goplug::Result<()> {
//! use goplug::HandshakeConfig;
//! use goplug::host::{Channel, Client, GrpcPlugin, PluginSet};
//! # use tonic_health::pb::health_client::HealthClient as KvClient;
//! # mod pb { pub use tonic_health::pb::HealthCheckRequest as GetRequest; }
//!
//! const HANDSHAKE: HandshakeConfig = HandshakeConfig::new(1, "BASIC_PLUGIN", "hello");
//!
//! // With `goplug::grpc_client!(KvClient)` in the crate with the generated
//! // code, this is `GrpcPlugin::new("kv")`.
//! const KV: GrpcPlugin<KvClient<Channel>> = GrpcPlugin::with_channel("kv", KvClient::new);
//!
//! let client = Client::builder(HANDSHAKE)
//!     .plugins(PluginSet::new().plugin(KV))
//!     .command(std::process::Command::new("./kv-plugin"))
//!     .start()
//!     .await?;
//! let mut kv = client.dispense(KV)?;
//! # let _ = kv.check(pb::GetRequest::default()).await;
//! let report = client.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Compatibility
//!
//! | go-plugin feature | goplug |
//! |---|---|
//! | handshake, magic cookie, `PLUGIN_PROTOCOL_VERSIONS` negotiation | yes, both sides |
//! | gRPC plugins, health, controller shutdown, reflection | yes, both sides |
//! | Unix sockets (`PLUGIN_UNIX_SOCKET_DIR`/`_GROUP`), TCP (`PLUGIN_MIN_PORT`/`_MAX_PORT`) | yes |
//! | stdin inheritance, SIGINT ignored by plugins | yes |
//! | AutoMTLS and manual TLS ([`tls`]), checksum verification ([`host::Checksum`]) | yes, both sides |
//! | hclog log forwarding ([`log`]), stdout/stderr sync (`GRPCStdio`) | yes, both sides |
//! | gRPC broker, classic mode ([`broker`]), also under AutoMTLS | yes, both sides |
//! | reattach ([`reattach`]), debug mode ([`plugin::run_debug`]), runners ([`host::runner`]), discovery ([`discover`]), in-process tests ([`testing`]) | yes |
//! | multiplexed broker (`PLUGIN_MULTIPLEX_GRPC`) over goplug's own yamux | yes, both sides |
//! | net/rpc ([`netrpc`]: gob, `Control`, `Dispenser`, `MuxBroker`) over goplug's [`yamux`] | yes, both sides |
//! | confining a plugin (go-plugin offers nothing; Vault uses containers) | goplug's addition: [`host::Sandbox`] on [`host::ClientBuilder::sandbox`], Linux |
//! | semantic version constraints (on go-plugin's roadmap, never built) | goplug's addition: a plugin's version served as Vault's `logical.PluginVersion` ([`plugin::ServeConfig::plugin_version`]), required by hosts ([`host::ClientBuilder::require_version`], [`protocol::VersionConstraint`]) |
//!
//! Where goplug differs from go-plugin on purpose (each is a place where
//! go-plugin hangs, panics, leaks or says less):
//!
//! - Every wait is bounded: a plugin that never answers the shutdown
//!   request is killed after the grace period, and a plugin whose
//!   descendants hold its pipes open cannot hang [`host::Client::shutdown`].
//! - Killing a plugin kills its descendants too, so `sh -c plugin` (which
//!   go-plugin's examples use) leaves no orphan behind.
//! - The host gives each plugin a private socket directory and removes it
//!   when the plugin is gone, even after a kill.
//! - The host connects eagerly, so an unreachable plugin fails `start`.
//! - A plugin shuts down cleanly on SIGTERM instead of dying with its socket
//!   left behind.
//! - Errors are typed ([`Error`], [`HandshakeError`]) and quote the
//!   offending line; go-plugin's texts start them where tools grep for them.
//! - A handshake line carrying a certificate the host did not ask for is an
//!   error, where a Go host panics.
//! - The host sends `PLUGIN_PROTOCOL_VERSIONS` sorted; go-plugin sends map order.
//! - With AutoMTLS a plugin that sends no certificate, and every TLS failure,
//!   is an error of `start` (the host makes one health-check request while
//!   connecting); a Go host fails at the first call instead.
//! - A verified binary is executed through the descriptor that was hashed,
//!   so it cannot be swapped between the check and the exec.
//! - AutoMTLS certificates are P-256 by default (go-plugin: P-521).
//! - The default allowed protocol is gRPC (go-plugin: net/rpc).
//! - No orphans: a launched plugin dies with its host (parent-death signal,
//!   own process group), and a goplug plugin exits when its host dies.

#![warn(missing_docs)]
// A peer or the OS must never make the library panic: errors are typed.
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(not(unix))]
compile_error!(
    "goplug supports Unix hosts and plugins only (pidfds, Unix sockets, the parent-death signal)"
);

mod error;
pub mod grpc;
#[cfg(feature = "host")]
pub mod host;
pub mod log;
pub mod netrpc;
#[cfg(feature = "plugin")]
pub mod plugin;
pub mod protocol;
mod sync;
mod sys;
#[cfg(all(feature = "host", feature = "plugin"))]
pub mod testing;
mod transport;
pub mod yamux;

pub use error::{BoxError, Error, Result, SandboxFeature};
pub use grpc::broker;
#[cfg(feature = "host")]
pub use host::discover;
pub use protocol::{HandshakeConfig, HandshakeError, Protocol, StderrTail};
pub use protocol::{env, handshake, reattach};
pub use transport::Channel;
pub use transport::tls;

/// The prost goplug is built with: generated messages must use this
/// version (`prost = "0.14"`), or they are not `prost::Message` to goplug.
#[doc(no_inline)]
pub use prost;
/// The semver goplug is built with (`semver = "1"`): plugin versions are
/// `semver::Version`s.
#[doc(no_inline)]
pub use semver;
/// The tonic goplug is built with: generated clients and servers must use
/// this version (`tonic = "0.14"`), or they fail to satisfy goplug's traits.
#[doc(no_inline)]
pub use tonic;
/// The tonic-prost codec goplug is built with (`tonic-prost = "0.14"`).
#[doc(no_inline)]
pub use tonic_prost;

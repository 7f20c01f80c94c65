//! goplug: HashiCorp's go-plugin for Rust.
//!
//! WIP crate docs.

pub mod env;
mod error;
pub mod grpc;
pub mod handshake;
pub mod plugin;

pub use error::{Error, HandshakeError, Result, StderrTail};
pub use handshake::{HandshakeConfig, Protocol};
pub mod host;

//! The pure protocol core both sides share: the handshake line and why one
//! is refused, plugin addresses, go-plugin's environment names, reattach
//! configs, the checksum value, the hclog line format and plugin versions
//! with the constraints hosts require of them. No I/O here:
//! everything is a value, a parser or a printer, tested by tables.

pub mod checksum;
pub mod env;
pub mod handshake;
pub mod handshake_error;
pub mod hclog;
pub mod plugin_version;
pub mod reattach;
pub mod stdout_log;

pub use checksum::{Checksum, ChecksumParseError};
pub use handshake::{HandshakeConfig, HandshakeLine, PluginAddress, Protocol};
pub use handshake_error::{HandshakeError, StderrTail};
#[cfg(feature = "host")]
pub(crate) use handshake_error::{quote, quote_line};
pub use plugin_version::{PluginVersionError, VersionConstraint, VersionConstraintError};
pub use reattach::{ReattachConfig, ReattachError};

/// The health-check service name go-plugin hosts ping (`GRPCServiceName`).
pub const HEALTH_SERVICE_NAME: &str = "plugin";

/// go-plugin hosts send and accept messages up to `math.MaxInt32` bytes.
pub const HOST_MAX_MESSAGE_SIZE: usize = i32::MAX as usize;

//! Vault's optional plugin version service (`logical.PluginVersion`):
//! a plugin that declares its version serves it; a host asks it.

/// Generated messages, client and server of proto package `logical`:
/// `PluginVersion/Version(Empty) returns (VersionReply)`.
#[allow(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    clippy::all,
    clippy::pedantic
)]
pub mod pb {
    tonic::include_proto!("logical");
}

/// The encoded file descriptor set of `logical/version.proto`, for reflection.
#[cfg(feature = "plugin")]
pub(crate) const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/logical_descriptor.bin"));

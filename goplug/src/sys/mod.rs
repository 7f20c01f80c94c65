//! Operating-system primitives both sides use: watching processes through
//! pidfds, the process tree, the launcher thread plugins are forked from,
//! socket-group ownership and the plugin sandbox. Unix only; Linux for
//! pidfds, the parent-death signal and the sandbox.

pub(crate) mod group;
#[cfg(feature = "host")]
pub(crate) mod launcher;
pub(crate) mod pidfd;
#[cfg(feature = "host")]
pub(crate) mod proc;
#[cfg(all(feature = "host", target_os = "linux"))]
pub(crate) mod sandbox;
#[cfg(all(feature = "host", target_os = "linux"))]
pub(crate) mod spawn;

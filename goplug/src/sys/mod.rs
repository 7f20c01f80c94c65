//! Operating-system primitives both sides use: watching processes through
//! pidfds, the process tree, the launcher thread plugins are forked from,
//! and socket-group ownership. Unix only; Linux for pidfds and the
//! parent-death signal.

pub(crate) mod group;
#[cfg(feature = "host")]
pub(crate) mod launcher;
pub(crate) mod pidfd;
#[cfg(feature = "host")]
pub(crate) mod proc;

//! Resource limits: worked out in the parent (never above what the host
//! itself may use), set in the child with `setrlimit`.

use rustix::process::{Resource, Rlimit};

use super::{Limits, Missing};
use crate::error::{Result, SandboxFeature};

/// The limits to set, each `(resource, soft, hard)`.
pub(super) type Prepared = Vec<(Resource, Rlimit)>;

pub(super) fn prepare(
    limits: &Limits,
    user_namespace: bool,
    strict: bool,
    missing: &mut Vec<Missing>,
) -> Result<Prepared> {
    let mut prepared = Vec::new();
    let mut set = |resource: Resource, soft: u64, hard: u64| {
        // Lowering needs no privilege; raising past the host's hard limit
        // would fail in the child, so the host's limit caps it.
        let host = rustix::process::getrlimit(resource).maximum;
        let cap = |value: u64| Some(host.map_or(value, |max| value.min(max)));
        prepared.push((
            resource,
            Rlimit {
                current: cap(soft),
                maximum: cap(hard),
            },
        ));
    };
    set(Resource::Core, 0, 0);
    if let Some(bytes) = limits.address_space {
        set(Resource::As, bytes, bytes);
    }
    if let Some(seconds) = limits.cpu_seconds {
        // SIGXCPU at the soft limit (fatal unless handled: Go ignores
        // it), SIGKILL a second later at the hard one.
        set(Resource::Cpu, seconds, seconds.saturating_add(1));
    }
    if let Some(files) = limits.open_files {
        set(Resource::Nofile, files, files);
    }
    if let Some(processes) = limits.processes {
        // The kernel counts processes per user and never stops root's
        // (a user namespace does not change who the kernel sees).
        let root = rustix::process::getuid().is_root();
        if root {
            missing.push(Missing::new(
                SandboxFeature::ProcessLimit,
                "the kernel does not enforce RLIMIT_NPROC for root; run the host as another user",
                strict,
            )?);
        } else if !user_namespace {
            tracing::debug!(
                "the process limit counts every process of this user, not only the plugin's: a user namespace makes it the plugin's own"
            );
        }
        set(Resource::Nproc, processes, processes);
    }
    Ok(prepared)
}

/// Sets the limits in the child; false when one failed.
pub(super) fn apply(prepared: &Prepared) -> bool {
    prepared
        .iter()
        .all(|(resource, limit)| rustix::process::setrlimit(*resource, *limit).is_ok())
}

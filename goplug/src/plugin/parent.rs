//! A launched plugin notices on its own when its host dies, whatever the
//! host (a Go host sets no parent-death signal), and shuts down cleanly,
//! removing its socket, instead of running on as an orphan.

use rustix::process::{Pid, PidfdFlags};
use tokio_util::sync::CancellationToken;

use crate::sys::pidfd::process_gone;

/// Cancels `shutdown` when the process that launched this one exits.
/// Returns `None` when there is no parent to watch (already orphaned).
pub(crate) fn watch_host(shutdown: CancellationToken) -> Option<tokio::task::JoinHandle<()>> {
    let host = rustix::process::getppid()?;
    if host == Pid::INIT {
        return None;
    }
    let pidfd = rustix::process::pidfd_open(host, PidfdFlags::empty()).ok();
    // The host may have died between getppid and pidfd_open, and its pid
    // been reused: the parent must still be the same process.
    if rustix::process::getppid() != Some(host) {
        tracing::debug!("the host exited before the plugin could watch it");
        shutdown.cancel();
        return None;
    }
    Some(tokio::spawn(async move {
        let exited = process_gone(pidfd, || rustix::process::getppid() == Some(host));
        tokio::select! {
            () = exited => {
                tracing::info!(host = host.as_raw_nonzero().get(), "the host process exited; shutting down");
                shutdown.cancel();
            }
            () = shutdown.cancelled() => {}
        }
    }))
}

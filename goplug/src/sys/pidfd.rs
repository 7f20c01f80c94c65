//! Watching a process that may not be our child: through a pidfd, which
//! names exactly one process even once its pid is recycled, or by polling
//! where pidfds are unavailable (old kernels, seccomp).

use std::os::fd::OwnedFd;
use std::time::Duration;

/// How often a process is polled where pidfds are unavailable (go-plugin
/// polls every second).
pub(crate) const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Resolves when the process of `pidfd` has exited: a pidfd becomes
/// readable then, whether or not the process is our child.
pub(crate) async fn pidfd_exited(pidfd: OwnedFd) -> std::io::Result<()> {
    // SAFETY: the AsyncFd owns the OwnedFd, so the descriptor stays open
    // and names the same pidfd for the AsyncFd's whole life.
    #[expect(unsafe_code, reason = "registering a pidfd with tokio's reactor")]
    let fd = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE)
    }
    .map_err(std::io::Error::from)?;
    let _ = fd.readable().await?;
    Ok(())
}

/// Resolves when the process is gone: through `pidfd` when there is one,
/// else by polling `still_there` every [`POLL_INTERVAL`].
pub(crate) async fn process_gone(pidfd: Option<OwnedFd>, still_there: impl Fn() -> bool) {
    if let Some(pidfd) = pidfd
        && pidfd_exited(pidfd).await.is_ok()
    {
        return;
    }
    while still_there() {
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Whether `pid` exists; signal 0 checks without delivering anything.
#[cfg(feature = "host")]
pub(crate) fn alive(pid: u32) -> bool {
    let Some(process) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    match rustix::process::test_kill_process(process) {
        Ok(()) => true,
        // It exists but belongs to someone else.
        Err(rustix::io::Errno::PERM) => true,
        Err(_) => false,
    }
}

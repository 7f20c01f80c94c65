//! A plugin the host did not launch: found by pid, watched through a
//! pidfd, killed only outside test mode.

use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::process::{Pid, PidfdFlags, Signal};

use super::runner::{BoxFuture, PluginExit, RunningPlugin};

/// How often a plugin is polled for exit where pidfds are unavailable
/// (go-plugin polls every second).
const POLL_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub(crate) struct AttachedPlugin {
    pid: u32,
    /// Names exactly the process found at attach time, so a recycled pid
    /// is never signalled or mistaken for the plugin.
    pidfd: Option<OwnedFd>,
    /// Test mode: never killed, as go-plugin's `Kill` is a no-op then.
    test: bool,
}

impl AttachedPlugin {
    /// Finds the process `pid` without signalling it.
    pub(crate) fn find(pid: u32, test: bool) -> Result<Self, String> {
        let process = i32::try_from(pid)
            .ok()
            .and_then(Pid::from_raw)
            .ok_or_else(|| format!("{pid} is not a valid process id"))?;
        match rustix::process::pidfd_open(process, PidfdFlags::empty()) {
            Ok(pidfd) => Ok(Self {
                pid,
                pidfd: Some(pidfd),
                test,
            }),
            Err(rustix::io::Errno::SRCH) => Err(format!("no process has pid {pid}")),
            // No pidfds (old kernel, seccomp): fall back to polling by pid.
            Err(_) if alive(pid) => Ok(Self {
                pid,
                pidfd: None,
                test,
            }),
            Err(_) => Err(format!("no process has pid {pid}")),
        }
    }
}

/// Resolves when the process of `pidfd` has exited: a pidfd becomes
/// readable then, whether or not the process is our child.
pub(crate) async fn pidfd_exited(pidfd: OwnedFd) -> std::io::Result<()> {
    // SAFETY: the AsyncFd owns the OwnedFd, so the descriptor stays open
    // and names the same pidfd for the AsyncFd's whole life.
    #[allow(unsafe_code)]
    let fd = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE)
    }
    .map_err(std::io::Error::from)?;
    let _ = fd.readable().await?;
    Ok(())
}

/// Whether `pid` exists; signal 0 checks without delivering anything.
fn alive(pid: u32) -> bool {
    let Some(process) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return false;
    };
    match rustix::process::test_kill_process(process) {
        Ok(()) => true,
        // It exists but belongs to someone else.
        Err(rustix::io::Errno::PERM) => true,
        Err(_) => false,
    }
}

impl RunningPlugin for AttachedPlugin {
    fn id(&self) -> String {
        self.pid.to_string()
    }

    fn pid(&self) -> Option<u32> {
        Some(self.pid)
    }

    fn wait(&self) -> BoxFuture<'_, PluginExit> {
        Box::pin(async move {
            if let Some(fd) = self.pidfd.as_ref().and_then(|fd| fd.try_clone().ok())
                && pidfd_exited(fd).await.is_ok()
            {
                return PluginExit::Gone;
            }
            while alive(self.pid) {
                tokio::time::sleep(POLL_INTERVAL).await;
            }
            PluginExit::Gone
        })
    }

    fn kill(&self) {
        if self.test {
            return;
        }
        if let Some(pidfd) = &self.pidfd {
            let _ = rustix::process::pidfd_send_signal(pidfd, Signal::KILL);
        } else if let Some(process) = i32::try_from(self.pid).ok().and_then(Pid::from_raw) {
            let _ = rustix::process::kill_process(process, Signal::KILL);
        }
    }
}

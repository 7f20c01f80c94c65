//! A plugin the host did not launch: found by pid, watched through a
//! pidfd, killed only outside test mode.

use std::os::fd::OwnedFd;

use rustix::process::{Pid, PidfdFlags, Signal};

use super::runner::{BoxFuture, PluginExit, RunningPlugin};
use crate::sys::pidfd::{alive, process_gone};

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

impl RunningPlugin for AttachedPlugin {
    fn id(&self) -> String {
        self.pid.to_string()
    }

    fn pid(&self) -> Option<u32> {
        Some(self.pid)
    }

    fn wait(&self) -> BoxFuture<'_, PluginExit> {
        Box::pin(async move {
            let pidfd = self.pidfd.as_ref().and_then(|fd| fd.try_clone().ok());
            process_gone(pidfd, || alive(self.pid)).await;
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

//! [`ExitCause`]: how a plugin process ended, read from its exit status.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// How a plugin process ended ([`Client::exit_cause`](super::Client::exit_cause)).
///
/// The signals a resource limit or the seccomp filter sends are named, so
/// a host can tell a plugin that hit its sandbox's limits from one that
/// crashed. A Go plugin that runs out of address space exits with code 2
/// (the Go runtime's fatal error) and says so on stderr; a Rust one
/// aborts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExitCause {
    /// It exited with this code.
    Exited(i32),
    /// SIGXCPU: it used up its CPU time limit.
    CpuTimeLimit,
    /// SIGXFSZ: it wrote past its file size limit.
    FileSizeLimit,
    /// SIGSYS: it made a system call a seccomp filter kills on.
    BadSystemCall,
    /// SIGABRT: it aborted (a Rust plugin whose allocation failed does).
    Aborted,
    /// SIGSEGV or SIGBUS: it crashed on memory, an exhausted stack included.
    MemoryFault,
    /// SIGKILL: killed by the host, the kernel (its CPU time hard limit,
    /// the OOM killer) or someone else.
    Killed,
    /// Another signal, by number.
    Signal(i32),
}

impl ExitCause {
    /// The cause behind `status`.
    pub fn of(status: ExitStatus) -> Self {
        if let Some(code) = status.code() {
            return Self::Exited(code);
        }
        match status.signal() {
            Some(libc_signal::XCPU) => Self::CpuTimeLimit,
            Some(libc_signal::XFSZ) => Self::FileSizeLimit,
            Some(libc_signal::SYS) => Self::BadSystemCall,
            Some(libc_signal::ABRT) => Self::Aborted,
            Some(libc_signal::SEGV | libc_signal::BUS) => Self::MemoryFault,
            Some(libc_signal::KILL) => Self::Killed,
            Some(other) => Self::Signal(other),
            None => Self::Signal(0),
        }
    }
}

/// Signal numbers, from nix (already a dependency on every Unix).
mod libc_signal {
    use nix::sys::signal::Signal;
    pub(super) const XCPU: i32 = Signal::SIGXCPU as i32;
    pub(super) const XFSZ: i32 = Signal::SIGXFSZ as i32;
    pub(super) const SYS: i32 = Signal::SIGSYS as i32;
    pub(super) const ABRT: i32 = Signal::SIGABRT as i32;
    pub(super) const SEGV: i32 = Signal::SIGSEGV as i32;
    pub(super) const BUS: i32 = Signal::SIGBUS as i32;
    pub(super) const KILL: i32 = Signal::SIGKILL as i32;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_of_limits_are_named() {
        let cases = [
            (ExitStatus::from_raw(3 << 8), ExitCause::Exited(3)),
            (
                ExitStatus::from_raw(libc_signal::XCPU),
                ExitCause::CpuTimeLimit,
            ),
            (ExitStatus::from_raw(libc_signal::KILL), ExitCause::Killed),
            (
                ExitStatus::from_raw(libc_signal::ABRT | 0x80),
                ExitCause::Aborted,
            ),
            (
                ExitStatus::from_raw(libc_signal::SYS),
                ExitCause::BadSystemCall,
            ),
            (ExitStatus::from_raw(15), ExitCause::Signal(15)),
        ];
        for (status, cause) in cases {
            assert_eq!(ExitCause::of(status), cause, "{status:?}");
        }
    }
}

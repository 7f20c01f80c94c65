//! Confining a plugin process before it runs (Linux): new namespaces,
//! resource limits, Landlock, `no_new_privs` and a seccomp filter, in that
//! order, applied in the forked child just before exec.
//!
//! Everything that allocates (the Landlock ruleset and its path
//! descriptors, the BPF program, the texts of the id maps) is made in the
//! parent by [`prepare`]; the `pre_exec` hook [`Prepared::install`] adds
//! only makes system calls. The child tells the parent which steps failed
//! through one byte on a close-on-exec pipe, read once the spawn returned.

pub(crate) mod interpreter;
mod landlock;
mod namespaces;
mod rlimits;
mod seccomp;

use std::io;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use crate::error::{Error, Result, SandboxFeature};

/// How a path may be used by the plugin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PathAccess {
    /// Read files and list directories.
    Read,
    /// Read and execute.
    Execute,
    /// Everything but execute: create, write, remove, make sockets.
    Write,
    /// Read and write an existing file (`/dev/null`).
    Device,
}

/// One file-system rule.
#[derive(Clone, Debug)]
pub(crate) struct PathRule {
    pub(crate) path: PathBuf,
    pub(crate) access: PathAccess,
    /// A path the user named must exist; a default one is skipped if not.
    pub(crate) required: bool,
}

/// Resource limits; `None` leaves the host's.
#[derive(Clone, Debug, Default)]
pub(crate) struct Limits {
    pub(crate) address_space: Option<u64>,
    pub(crate) cpu_seconds: Option<u64>,
    pub(crate) open_files: Option<u64>,
    pub(crate) processes: Option<u64>,
}

/// Everything a sandbox asks for, decided by the host.
#[derive(Clone, Debug, Default)]
pub(crate) struct Spec {
    pub(crate) strict: bool,
    pub(crate) paths: Vec<PathRule>,
    /// `None`: TCP is not restricted. `Some(ports)`: no TCP bind, connect
    /// only to these ports.
    pub(crate) connect_ports: Option<Vec<u16>>,
    pub(crate) scopes: bool,
    pub(crate) seccomp: bool,
    pub(crate) limits: Limits,
    pub(crate) user_namespace: bool,
    pub(crate) network_namespace: bool,
}

/// A confinement that could not be applied, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Missing {
    pub(crate) feature: SandboxFeature,
    pub(crate) reason: String,
}

impl Missing {
    /// The missing feature, or the strict sandbox's error.
    pub(crate) fn new(feature: SandboxFeature, reason: &str, strict: bool) -> Result<Self> {
        if strict {
            return Err(Error::SandboxUnsupported {
                feature,
                reason: reason.to_owned(),
            });
        }
        Ok(Self {
            feature,
            reason: reason.to_owned(),
        })
    }
}

/// What the child reports failing, one bit each.
const FAILED_USER_NS: u8 = 1;
const FAILED_NET_NS: u8 = 1 << 1;
const FAILED_RLIMIT: u8 = 1 << 2;
const FAILED_LANDLOCK: u8 = 1 << 3;
const FAILED_NO_NEW_PRIVS: u8 = 1 << 4;
const FAILED_SECCOMP: u8 = 1 << 5;

/// A sandbox ready to install on a command.
#[derive(Debug)]
pub(crate) struct Prepared {
    strict: bool,
    namespaces: Option<namespaces::Prepared>,
    limits: rlimits::Prepared,
    landlock: Option<::landlock::RulesetCreated>,
    seccomp: Option<seccompiler::BpfProgram>,
    report: OwnedFd,
}

/// The parent's half: what could not be applied before the spawn, and
/// the pipe the child reports the rest on.
#[derive(Debug)]
pub(crate) struct Pending {
    missing: Vec<Missing>,
    report: OwnedFd,
}

/// Builds everything `spec` needs, in the parent. A strict spec fails
/// here on the first feature this kernel lacks.
pub(crate) fn prepare(spec: &Spec) -> Result<(Prepared, Pending)> {
    let mut missing = Vec::new();
    let landlock = landlock::prepare(spec, &mut missing)?;
    let seccomp = if spec.seccomp {
        seccomp::prepare(spec.strict, &mut missing)?
    } else {
        None
    };
    let limits = rlimits::prepare(&spec.limits, spec.user_namespace, spec.strict, &mut missing)?;
    let namespaces = (spec.user_namespace || spec.network_namespace)
        .then(|| namespaces::prepare(spec.network_namespace));
    let (read, write) = rustix::pipe::pipe_with(
        rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
    )
    .map_err(|e| Error::Sandbox {
        context: "creating the sandbox's report pipe".to_owned(),
        error: e.into(),
    })?;
    Ok((
        Prepared {
            strict: spec.strict,
            namespaces,
            limits,
            landlock,
            seccomp,
            report: write,
        },
        Pending {
            missing,
            report: read,
        },
    ))
}

impl Prepared {
    /// Adds the hook that confines the child to `command`. Hooks added
    /// later (the launcher's parent-death signal) run confined.
    #[expect(
        unsafe_code,
        reason = "pre_exec is how a child confines itself before exec"
    )]
    pub(crate) fn install(self, command: &mut std::process::Command) {
        use std::os::unix::process::CommandExt;
        let mut prepared = Some(self);
        // SAFETY: the closure runs in the forked child before exec. It
        // only makes system calls on what the parent prepared (unshare,
        // open/write/close of the id maps, setrlimit, the Landlock calls,
        // prctl, seccomp, a one-byte write): no allocation, no lock.
        unsafe {
            command.pre_exec(move || match prepared.take() {
                Some(prepared) => prepared.apply(),
                None => Ok(()),
            });
        }
    }

    fn apply(mut self) -> io::Result<()> {
        let mut failed = 0u8;
        let mut first_errno = 0;
        if let Some(namespaces) = &self.namespaces
            && let Err(failure) = namespaces::apply(namespaces)
        {
            let (bit, errno) = match failure {
                namespaces::Failure::User(errno) => (FAILED_USER_NS, errno),
                namespaces::Failure::Network(errno) => (FAILED_NET_NS, errno),
            };
            failed |= bit;
            first_errno = errno;
        }
        if !rlimits::apply(&self.limits) {
            failed |= FAILED_RLIMIT;
        }
        if let Some(ruleset) = self.landlock.take() {
            let enforced = ruleset
                .restrict_self()
                .is_ok_and(|status| status.ruleset != ::landlock::RulesetStatus::NotEnforced);
            if !enforced {
                failed |= FAILED_LANDLOCK;
            }
        }
        if rustix::thread::set_no_new_privs(true).is_err() {
            failed |= FAILED_NO_NEW_PRIVS;
        }
        if let Some(program) = &self.seccomp
            && !seccomp::apply(program)
        {
            failed |= FAILED_SECCOMP;
        }
        let _ = rustix::io::write(&self.report, &[failed]);
        if self.strict && failed != 0 {
            let errno = if first_errno == 0 {
                libc::EPERM
            } else {
                first_errno
            };
            return Err(io::Error::from_raw_os_error(errno));
        }
        Ok(())
    }
}

impl Pending {
    /// What was not applied, once the spawn returned (the child wrote its
    /// byte before exec, so it is there, or the child never ran).
    pub(crate) fn finish(self) -> Vec<Missing> {
        let Self {
            mut missing,
            report,
        } = self;
        let mut byte = [0u8; 1];
        let failed = match rustix::io::read(&report, &mut byte) {
            Ok(1) => byte[0],
            _ => 0,
        };
        let steps = [
            (
                FAILED_USER_NS,
                SandboxFeature::UserNamespace,
                "unshare refused a new user namespace",
            ),
            (
                FAILED_NET_NS,
                SandboxFeature::NetworkNamespace,
                "unshare refused a new network namespace",
            ),
            (
                FAILED_RLIMIT,
                SandboxFeature::ResourceLimit,
                "setrlimit refused a limit",
            ),
            (
                FAILED_LANDLOCK,
                SandboxFeature::LandlockFilesystem,
                "landlock_restrict_self failed",
            ),
            (
                FAILED_NO_NEW_PRIVS,
                SandboxFeature::NoNewPrivs,
                "prctl(PR_SET_NO_NEW_PRIVS) failed",
            ),
            (
                FAILED_SECCOMP,
                SandboxFeature::Seccomp,
                "installing the seccomp filter failed",
            ),
        ];
        for (bit, feature, reason) in steps {
            if failed & bit != 0 {
                missing.push(Missing {
                    feature,
                    reason: reason.to_owned(),
                });
            }
        }
        missing
    }
}

//! The seccomp filter: a deny list of system calls no plugin needs,
//! answered with EPERM, compiled to BPF in the parent.
//!
//! A deny list rather than an allow list: Go's runtime and glibc use a
//! long, version-dependent set of calls (clone3, futex, epoll, rseq, ...)
//! that an allow list would break with the next toolchain.

use std::collections::BTreeMap;

use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};

use super::Missing;
use crate::error::{Error, Result, SandboxFeature};

/// Debugging and reading other processes, mounts, kernel code and
/// keyrings, the machine's clock and power, raw I/O ports.
///
/// By number on the native ABI only: x32 calls (bit 30 set) are not
/// listed, as kernels that build that ABI mostly leave it off, and
/// Landlock still keeps `ptrace` from reaching outside the sandbox.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const DENIED: &[libc::c_long] = &[
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_mount_setattr,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_add_key,
    libc::SYS_keyctl,
    libc::SYS_request_key,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_acct,
    libc::SYS_quotactl,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_userfaultfd,
    libc::SYS_open_by_handle_at,
    libc::SYS_sethostname,
    libc::SYS_setdomainname,
    libc::SYS_syslog,
    libc::SYS_vhangup,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_iopl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ioperm,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_uselib,
];

#[cfg(target_arch = "x86_64")]
const ARCH: Option<TargetArch> = Some(TargetArch::x86_64);
#[cfg(target_arch = "aarch64")]
const ARCH: Option<TargetArch> = Some(TargetArch::aarch64);
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const ARCH: Option<TargetArch> = None;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const DENIED: &[libc::c_long] = &[];

/// The compiled filter, or `None` (and a missing feature) on a machine
/// seccompiler does not know.
pub(super) fn prepare(strict: bool, missing: &mut Vec<Missing>) -> Result<Option<BpfProgram>> {
    let Some(arch) = ARCH else {
        missing.push(Missing::new(
            SandboxFeature::Seccomp,
            "goplug's seccomp filter exists for x86_64 and aarch64 only",
            strict,
        )?);
        return Ok(None);
    };
    if !kernel_has_filters() {
        missing.push(Missing::new(
            SandboxFeature::Seccomp,
            "this kernel has no seccomp filters",
            strict,
        )?);
        return Ok(None);
    }
    let rules = DENIED
        .iter()
        .map(|&call| (call, Vec::new()))
        .collect::<BTreeMap<_, _>>();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(compile_failed)?;
    BpfProgram::try_from(filter)
        .map(Some)
        .map_err(compile_failed)
}

fn compile_failed(error: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Sandbox {
        context: "compiling the seccomp filter".to_owned(),
        error: std::io::Error::other(error),
    }
}

/// Whether this process's status line shows seccomp (the kernel has it).
fn kernel_has_filters() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .is_ok_and(|status| status.lines().any(|line| line.starts_with("Seccomp:")))
}

/// Installs the filter in the child: only `prctl` and `seccomp` calls.
pub(super) fn apply(program: &BpfProgram) -> bool {
    seccompiler::apply_filter(program).is_ok()
}

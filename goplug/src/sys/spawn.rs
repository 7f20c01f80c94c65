//! Starting a plugin process without copying the host's address space.
//!
//! `fork` copies the host's page tables and marks every writable page
//! copy-on-write, so the host pays a page fault for each page it writes
//! afterwards; std forks whenever a command has a `pre_exec` hook, and the
//! parent-death signal needs one. Like glibc's `posix_spawn` and Go's
//! `os/exec`, this runs the child with `clone(CLONE_VM | CLONE_VFORK)`: it
//! lives on a small stack of its own inside the host's memory, makes only
//! system calls, and the calling thread waits until it has exec'd (or
//! failed). `posix_spawn` itself cannot set a parent-death signal and no
//! crate offers such a spawn, hence this file. `CLONE_PIDFD` hands back a
//! pidfd for exactly this child in the same call.

use std::ffi::{CString, OsStr, OsString, c_char, c_int, c_void};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};

use rustix::process::Pid;

/// What to start, all of it already resolved by the caller.
#[derive(Debug)]
pub(crate) struct SpawnRequest<'a> {
    /// The file to execute (a path: no `PATH` search happens here).
    pub(crate) program: &'a Path,
    /// `argv[0]`.
    pub(crate) arg0: &'a OsStr,
    pub(crate) args: Vec<&'a OsStr>,
    /// The complete environment.
    pub(crate) env: &'a [(OsString, OsString)],
    /// The working directory; `None` keeps the host's.
    pub(crate) current_dir: Option<&'a Path>,
    /// Starts a process group of its own (`setpgid(0, 0)`).
    pub(crate) own_process_group: bool,
    /// Sets SIGTERM as the parent-death signal, and fails when the host
    /// (this process) is already gone by then.
    pub(crate) die_with_host: bool,
}

/// A started child: not yet reaped, so `pid` names it until the caller
/// waits for it.
#[derive(Debug)]
pub(crate) struct SpawnedChild {
    pub(crate) pid: Pid,
    pub(crate) pidfd: OwnedFd,
    pub(crate) stdout: OwnedFd,
    pub(crate) stderr: OwnedFd,
}

/// The step of the child's set-up that failed, for the error message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
enum Step {
    Stdio = 1,
    ProcessGroup,
    ParentDeath,
    HostGone,
    WorkingDir,
    Exec,
}

impl Step {
    fn from_code(code: i32) -> Option<Self> {
        [
            Self::Stdio,
            Self::ProcessGroup,
            Self::ParentDeath,
            Self::HostGone,
            Self::WorkingDir,
            Self::Exec,
        ]
        .into_iter()
        .find(|step| *step as i32 == code)
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Stdio => "connecting the plugin's stdout and stderr",
            Self::ProcessGroup => "giving the plugin its own process group",
            Self::ParentDeath => "setting the plugin's parent-death signal",
            Self::HostGone => "the host exited while starting the plugin",
            Self::WorkingDir => "changing to the plugin's working directory",
            Self::Exec => "executing the plugin",
        }
    }
}

/// Everything the child reads, prepared by the parent: the child only
/// makes system calls with it.
#[repr(C)]
struct ChildContext {
    program: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    current_dir: *const c_char,
    stdout: c_int,
    stderr: c_int,
    own_process_group: bool,
    /// The highest signal number, from the parent (glibc computes it).
    last_signal: c_int,
    /// The host's pid when the child must die with it, else 0.
    host: libc::pid_t,
    /// Written by the child when a step fails: the step, then its errno.
    failed_step: AtomicI32,
    failed_errno: AtomicI32,
}

/// The child's stack: the child runs a few system calls and no Rust code
/// that could grow it much.
const CHILD_STACK_BYTES: usize = 64 * 1024;

/// Starts the process of `request` with piped stdout and stderr and the
/// host's stdin. `Unsupported` means the kernel lacks `CLONE_PIDFD`
/// (before Linux 5.2): the caller should fork instead.
pub(crate) fn spawn(request: &SpawnRequest<'_>) -> io::Result<SpawnedChild> {
    let program = c_string(request.program.as_os_str())?;
    let mut argv_owned = vec![c_string(request.arg0)?];
    for arg in &request.args {
        argv_owned.push(c_string(arg)?);
    }
    let envp_owned = request
        .env
        .iter()
        .map(|(key, value)| {
            let mut pair = Vec::with_capacity(key.len() + value.len() + 1);
            pair.extend_from_slice(key.as_bytes());
            pair.push(b'=');
            pair.extend_from_slice(value.as_bytes());
            CString::new(pair).map_err(|_| nul_error(key))
        })
        .collect::<io::Result<Vec<_>>>()?;
    let current_dir = request
        .current_dir
        .map(|dir| c_string(dir.as_os_str()))
        .transpose()?;
    let argv = null_terminated(&argv_owned);
    let envp = null_terminated(&envp_owned);

    let (stdout_read, stdout_write) = pipe_above_stdio()?;
    let (stderr_read, stderr_write) = pipe_above_stdio()?;
    let context = ChildContext {
        program: program.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        current_dir: current_dir
            .as_ref()
            .map_or(std::ptr::null(), |d| d.as_ptr()),
        stdout: stdout_write.as_raw_fd(),
        stderr: stderr_write.as_raw_fd(),
        own_process_group: request.own_process_group,
        last_signal: libc::SIGRTMAX(),
        host: if request.die_with_host {
            rustix::process::getpid().as_raw_nonzero().get()
        } else {
            0
        },
        failed_step: AtomicI32::new(0),
        failed_errno: AtomicI32::new(0),
    };
    let mut stack = vec![0u128; CHILD_STACK_BYTES / size_of::<u128>()];
    let (pid, pidfd) = clone_vfork(&context, &mut stack)?;
    // The child has exec'd or exited: its copies of the write ends are the
    // plugin's stdout and stderr now, ours go.
    drop((stdout_write, stderr_write));
    if let Some(step) = Step::from_code(context.failed_step.load(Ordering::Acquire)) {
        let errno = context.failed_errno.load(Ordering::Acquire);
        // It exited with 127 right after the failure: reap it now.
        let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
        drop(pidfd);
        let cause = io::Error::from_raw_os_error(errno);
        return Err(match step {
            Step::Exec => cause,
            Step::HostGone => io::Error::other(step.describe()),
            _ => io::Error::new(cause.kind(), format!("{}: {cause}", step.describe())),
        });
    }
    Ok(SpawnedChild {
        pid,
        pidfd,
        stdout: stdout_read,
        stderr: stderr_read,
    })
}

#[expect(
    unsafe_code,
    reason = "clone(CLONE_VM | CLONE_VFORK) and the signal mask around it"
)]
fn clone_vfork(context: &ChildContext, stack: &mut [u128]) -> io::Result<(Pid, OwnedFd)> {
    let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | libc::SIGCHLD;
    let mut pidfd: c_int = -1;
    // SAFETY: `stack` outlives the child's use of it (the parent is
    // suspended until the child execs or exits); the stack grows down
    // from its end, which is 16-byte aligned as u128s are.
    let stack_top = unsafe { stack.as_mut_ptr().add(stack.len()) }.cast::<c_void>();
    // All signals stay blocked from before the clone until the child has
    // reset the host's handlers: a handler of the host must never run on
    // the child's stack in the host's memory.
    // SAFETY: an all-zero sigset_t is a valid (empty) set.
    let mut previous: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: plain calls with valid, initialised signal sets.
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut previous);
    }
    // SAFETY: `child` only makes async-signal-safe system calls with what
    // `context` points to, all of it alive until clone returns (CLONE_VFORK).
    let pid = unsafe {
        libc::clone(
            child,
            stack_top,
            flags,
            std::ptr::from_ref(context).cast_mut().cast::<c_void>(),
            &mut pidfd as *mut c_int,
        )
    };
    let clone_error = io::Error::last_os_error();
    // SAFETY: restores the mask saved above.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut());
    }
    if pid < 0 {
        return Err(if clone_error.raw_os_error() == Some(libc::EINVAL) {
            io::Error::new(io::ErrorKind::Unsupported, "clone with CLONE_PIDFD")
        } else {
            clone_error
        });
    }
    let Some(pid) = Pid::from_raw(pid) else {
        return Err(io::Error::other("clone returned pid 0 in the parent"));
    };
    // SAFETY: with CLONE_PIDFD the kernel stored a new descriptor we own.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    Ok((pid, pidfd))
}

/// The child: runs in the host's memory on its own stack until it execs.
/// Only system calls; on failure it records the step and errno and exits.
#[expect(unsafe_code, reason = "the child of clone(CLONE_VM) before exec")]
extern "C" fn child(argument: *mut c_void) -> c_int {
    // SAFETY: `argument` is the parent's `ChildContext`, alive (and not
    // moved) while the parent waits in clone.
    let context = unsafe { &*argument.cast::<ChildContext>() };
    let fail = |step: Step| -> c_int {
        // SAFETY: reads errno of this thread (shared with the waiting
        // parent thread, which is suspended).
        let errno = unsafe { *libc::__errno_location() };
        context.failed_errno.store(errno, Ordering::Release);
        context.failed_step.store(step as i32, Ordering::Release);
        // SAFETY: _exit runs no handlers and touches no shared state.
        unsafe { libc::_exit(127) }
    };
    // SAFETY: each call is an async-signal-safe system call wrapper given
    // valid pointers from `context` or this stack.
    unsafe {
        // Handlers of the host would run on this stack in the host's
        // memory: back to the default for every caught signal, and for
        // SIGPIPE, which Rust programs ignore, as std's spawn does.
        for signal in 1..=context.last_signal {
            if signal == libc::SIGKILL || signal == libc::SIGSTOP {
                continue;
            }
            let mut action: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, std::ptr::null(), &mut action) != 0 {
                continue;
            }
            let ignored = action.sa_sigaction == libc::SIG_IGN;
            if action.sa_sigaction != libc::SIG_DFL && (!ignored || signal == libc::SIGPIPE) {
                let mut default: libc::sigaction = std::mem::zeroed();
                default.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(signal, &default, std::ptr::null_mut());
            }
        }
        if libc::dup2(context.stdout, 1) < 0 || libc::dup2(context.stderr, 2) < 0 {
            return fail(Step::Stdio);
        }
        if context.own_process_group && libc::setpgid(0, 0) != 0 {
            return fail(Step::ProcessGroup);
        }
        if context.host != 0 {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0 {
                return fail(Step::ParentDeath);
            }
            if libc::getppid() != context.host {
                return fail(Step::HostGone);
            }
        }
        if !context.current_dir.is_null() && libc::chdir(context.current_dir) != 0 {
            return fail(Step::WorkingDir);
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        libc::execve(context.program, context.argv, context.envp);
    }
    fail(Step::Exec)
}

/// A pipe whose ends are both above 0, 1 and 2, so that `dup2` onto the
/// child's stdout and stderr never overwrites the other pipe.
fn pipe_above_stdio() -> io::Result<(OwnedFd, OwnedFd)> {
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let lift = |fd: OwnedFd| -> io::Result<OwnedFd> {
        if fd.as_raw_fd() > 2 {
            Ok(fd)
        } else {
            Ok(rustix::io::fcntl_dupfd_cloexec(&fd, 3)?)
        }
    };
    Ok((lift(read)?, lift(write)?))
}

fn c_string(text: &OsStr) -> io::Result<CString> {
    CString::new(text.as_bytes()).map_err(|_| nul_error(text))
}

fn nul_error(text: &OsStr) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{text:?} contains a NUL byte"),
    )
}

fn null_terminated(strings: &[CString]) -> Vec<*const c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn run(request: &SpawnRequest<'_>) -> (String, String, i32) {
        let child = spawn(request).unwrap();
        let mut out = String::new();
        std::fs::File::from(child.stdout)
            .read_to_string(&mut out)
            .unwrap();
        let mut err = String::new();
        std::fs::File::from(child.stderr)
            .read_to_string(&mut err)
            .unwrap();
        let (_, status) =
            rustix::process::waitpid(Some(child.pid), rustix::process::WaitOptions::empty())
                .unwrap()
                .unwrap();
        (out, err, status.exit_status().unwrap_or(-1))
    }

    fn request<'a>(
        program: &'a Path,
        args: Vec<&'a OsStr>,
        env: &'a [(OsString, OsString)],
    ) -> SpawnRequest<'a> {
        SpawnRequest {
            program,
            arg0: OsStr::new("goplug-test-arg0"),
            args,
            env,
            current_dir: None,
            own_process_group: false,
            die_with_host: true,
        }
    }

    #[test]
    fn the_child_gets_its_arguments_environment_directory_and_pipes() {
        let env = [(OsString::from("GOPLUG_SPAWN"), OsString::from("value"))];
        let mut spawn_request = request(
            Path::new("/bin/sh"),
            vec![
                OsStr::new("-c"),
                OsStr::new(
                    "echo \"$(head -c 16 /proc/$$/cmdline) $0 $GOPLUG_SPAWN $(pwd)\"; echo err >&2; exit 3",
                ),
                OsStr::new("first"),
            ],
            &env,
        );
        spawn_request.current_dir = Some(Path::new("/"));
        let (out, err, code) = run(&spawn_request);
        assert_eq!(out, "goplug-test-arg0 first value /\n");
        assert_eq!(err, "err\n");
        assert_eq!(code, 3);
    }

    #[test]
    fn the_child_starts_with_no_signal_blocked_and_sigpipe_default() {
        // grep reads its own status: what it inherited through exec.
        let (out, err, code) = run(&request(
            Path::new("/bin/grep"),
            vec![
                OsStr::new("-E"),
                OsStr::new("^Sig(Blk|Ign)"),
                OsStr::new("/proc/self/status"),
            ],
            &[],
        ));
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("SigBlk:\t0000000000000000"), "{out}");
        let ignored = out
            .lines()
            .find_map(|l| l.strip_prefix("SigIgn:\t"))
            .and_then(|mask| u64::from_str_radix(mask, 16).ok())
            .unwrap();
        assert_eq!(ignored & (1 << (libc::SIGPIPE - 1)), 0, "{out}");
    }

    #[test]
    fn the_child_can_lead_its_own_process_group() {
        let mut spawn_request = request(
            Path::new("/bin/sh"),
            vec![
                OsStr::new("-c"),
                OsStr::new("cut -d' ' -f5 /proc/$$/stat; echo $$"),
            ],
            &[],
        );
        spawn_request.own_process_group = true;
        let (out, err, code) = run(&spawn_request);
        assert_eq!(code, 0, "{out}{err}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert_eq!(
            lines[0], lines[1],
            "the group is the child's own pid: {out}"
        );
    }

    #[test]
    fn a_missing_program_is_not_found() {
        let error = spawn(&request(
            Path::new("/nonexistent/goplug-plugin"),
            vec![],
            &[],
        ))
        .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_missing_working_directory_names_the_step() {
        let mut spawn_request = request(Path::new("/bin/true"), vec![], &[]);
        spawn_request.current_dir = Some(Path::new("/nonexistent/goplug-dir"));
        let error = spawn(&spawn_request).unwrap_err();
        assert!(error.to_string().contains("working directory"), "{error}");
    }
}

//! [`Sandbox`]: what a plugin process may do, set on the host builder
//! (Linux; see `sys/sandbox/` for how each part is applied).

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result, SandboxFeature};

/// What a sandbox does when the kernel lacks a feature it asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SandboxMode {
    /// Apply what the kernel can, start the plugin, and report the rest in
    /// [`Client::sandbox_report`](super::Client::sandbox_report) (and a
    /// warning in the log).
    #[default]
    BestEffort,
    /// Refuse to start ([`Error::SandboxUnsupported`]) unless every
    /// requested confinement is in force.
    Strict,
}

/// Confines a plugin process from before its first instruction: Landlock
/// file-system and network rules, Landlock scopes, a seccomp filter,
/// `no_new_privs`, resource limits and, if asked, new user and network
/// namespaces. Off unless set with
/// [`ClientBuilder::sandbox`](super::ClientBuilder::sandbox); Linux only
/// (elsewhere `start` fails with [`Error::SandboxUnsupported`]).
///
/// The default profile lets a go-plugin plugin do its job and little else:
/// - read and execute its program and that program's interpreter (the
///   dynamic loader, or a script's `#!` line); read the usual system
///   directories (`/usr`, `/lib*`, `/bin`, `/sbin`, `/etc/ld.so.*`,
///   `/etc/ssl`, `/proc`, a few of `/sys`) but execute nothing else;
///   read and write `/dev/null`, `/dev/zero`, `/dev/full`, `/dev/urandom`;
/// - read and write its socket directory, a private temporary directory
///   (`TMPDIR`, inside the socket directory, removed with it) and its
///   working directory;
/// - no TCP at all, bind or connect (its transport is a Unix socket);
///   no connecting to abstract Unix sockets or signalling processes
///   outside the sandbox;
/// - none of `ptrace`, `mount`, `kexec_*`, `bpf`, `perf_event_open`, the
///   keyring calls, module loading, `reboot`, `swapon`/`swapoff`,
///   `pivot_root`, clock setting and a few more (EPERM);
/// - no core dumps.
///
/// ```no_run
/// # fn example(builder: goplug::host::ClientBuilder) {
/// use goplug::host::{Sandbox, SandboxMode};
/// let builder = builder.sandbox(
///     Sandbox::new()
///         .allow_read("/etc/my-plugin")
///         .memory_limit(1 << 30)
///         .mode(SandboxMode::Strict),
/// );
/// # }
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct Sandbox {
    mode: SandboxMode,
    read: Vec<PathBuf>,
    write: Vec<PathBuf>,
    exec: Vec<PathBuf>,
    socket_dir: bool,
    temp_dir: bool,
    working_dir: bool,
    network: bool,
    connect_ports: Vec<u16>,
    scopes: bool,
    seccomp: bool,
    memory: Option<u64>,
    cpu_time: Option<Duration>,
    open_files: Option<u64>,
    processes: Option<u64>,
    user_namespace: bool,
    network_namespace: bool,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    /// The default profile (see the type's documentation), best effort.
    pub fn new() -> Self {
        Self {
            mode: SandboxMode::default(),
            read: Vec::new(),
            write: Vec::new(),
            exec: Vec::new(),
            socket_dir: true,
            temp_dir: true,
            working_dir: true,
            network: false,
            connect_ports: Vec::new(),
            scopes: true,
            seccomp: true,
            memory: None,
            cpu_time: None,
            open_files: None,
            processes: None,
            user_namespace: false,
            network_namespace: false,
        }
    }

    /// Strict or best effort (the default).
    pub fn mode(mut self, mode: SandboxMode) -> Self {
        self.mode = mode;
        self
    }

    /// Lets the plugin read `path` (a file, or a directory and everything
    /// under it). It must exist when the plugin starts.
    pub fn allow_read(mut self, path: impl Into<PathBuf>) -> Self {
        self.read.push(path.into());
        self
    }

    /// Lets the plugin read, write, create and remove under `path`. It
    /// must exist when the plugin starts.
    pub fn allow_write(mut self, path: impl Into<PathBuf>) -> Self {
        self.write.push(path.into());
        self
    }

    /// Lets the plugin read and execute `path` (a program it runs, or a
    /// directory of them). It must exist when the plugin starts.
    pub fn allow_exec(mut self, path: impl Into<PathBuf>) -> Self {
        self.exec.push(path.into());
        self
    }

    /// Leaves TCP unrestricted (default: no TCP bind or connect at all).
    pub fn allow_net(mut self, allow: bool) -> Self {
        self.network = allow;
        self
    }

    /// Lets the plugin connect over TCP to `port` (any address).
    pub fn allow_connect(mut self, port: u16) -> Self {
        self.connect_ports.push(port);
        self
    }

    /// Whether the plugin may write its socket directory (default true;
    /// without it a plugin cannot create its socket).
    pub fn writable_socket_dir(mut self, writable: bool) -> Self {
        self.socket_dir = writable;
        self
    }

    /// Whether the plugin gets a private, writable `TMPDIR` (default true).
    pub fn writable_temp_dir(mut self, writable: bool) -> Self {
        self.temp_dir = writable;
        self
    }

    /// Whether the plugin may write its working directory (default true).
    pub fn writable_working_dir(mut self, writable: bool) -> Self {
        self.working_dir = writable;
        self
    }

    /// Landlock scoping of abstract Unix sockets and signals (default on).
    pub fn scopes(mut self, on: bool) -> Self {
        self.scopes = on;
        self
    }

    /// The seccomp deny list (default on).
    pub fn seccomp(mut self, on: bool) -> Self {
        self.seccomp = on;
        self
    }

    /// Limits the plugin's address space (`RLIMIT_AS`). Go reserves
    /// address space generously: leave a Go plugin some hundreds of MiB.
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.memory = Some(bytes);
        self
    }

    /// Limits the plugin's CPU time (`RLIMIT_CPU`, whole seconds, at
    /// least one): SIGXCPU at the limit, SIGKILL a second later.
    pub fn cpu_time_limit(mut self, limit: Duration) -> Self {
        self.cpu_time = Some(limit);
        self
    }

    /// Limits the plugin's open files (`RLIMIT_NOFILE`).
    pub fn open_files_limit(mut self, files: u64) -> Self {
        self.open_files = Some(files);
        self
    }

    /// Limits processes and threads (`RLIMIT_NPROC`). The kernel counts
    /// them per user, so with the host's user this includes the host's;
    /// in a [`user_namespace`](Self::user_namespace) they are the
    /// plugin's own. Root is never limited (reported as missing).
    pub fn process_limit(mut self, processes: u64) -> Self {
        self.processes = Some(processes);
        self
    }

    /// Runs the plugin in a new user namespace, its own user and group
    /// mapped to themselves (default off).
    pub fn user_namespace(mut self, on: bool) -> Self {
        self.user_namespace = on;
        self
    }

    /// Runs the plugin in a new, empty network namespace (and so a new
    /// user namespace): no network at all, Unix sockets still work
    /// (default off).
    pub fn network_namespace(mut self, on: bool) -> Self {
        self.network_namespace = on;
        self
    }

    /// The system-level description of this sandbox for a launch.
    #[cfg(target_os = "linux")]
    pub(super) fn spec(&self, launch: &LaunchPaths) -> Result<crate::sys::sandbox::Spec> {
        use crate::sys::sandbox::{Limits, PathAccess, PathRule, Spec, interpreter};
        let rule = |path: &Path, access, required| PathRule {
            path: path.to_path_buf(),
            access,
            required,
        };
        let mut paths = Vec::new();
        for dir in SYSTEM_READ {
            paths.push(rule(Path::new(dir), PathAccess::Read, false));
        }
        for device in DEVICES {
            paths.push(rule(Path::new(device), PathAccess::Device, false));
        }
        // The program, its interpreter, and a script interpreter's loader.
        let mut exec = vec![launch.program.clone()];
        let mut next = interpreter::interpreter_of(&launch.program);
        while let Some(interpreter) = next.take() {
            if exec.len() < 3 && !exec.contains(&interpreter) {
                next = interpreter::interpreter_of(&interpreter);
                exec.push(interpreter);
            }
        }
        for program in &exec {
            paths.push(rule(program, PathAccess::Execute, false));
        }
        if self.socket_dir {
            paths.push(rule(&launch.socket_dir, PathAccess::Write, true));
        }
        if let Some(temp) = &launch.temp_dir {
            paths.push(rule(temp, PathAccess::Write, true));
        }
        if self.working_dir {
            if launch.working_dir == Path::new("/") {
                return Err(Error::Config(
                    "the sandboxed plugin's working directory is /, which it would be allowed to write: give its command a working directory (Command::current_dir), or turn writable_working_dir off".to_owned(),
                ));
            }
            paths.push(rule(&launch.working_dir, PathAccess::Write, true));
        }
        paths.extend(self.read.iter().map(|p| rule(p, PathAccess::Read, true)));
        paths.extend(self.exec.iter().map(|p| rule(p, PathAccess::Execute, true)));
        paths.extend(self.write.iter().map(|p| rule(p, PathAccess::Write, true)));
        Ok(Spec {
            strict: self.mode == SandboxMode::Strict,
            paths,
            connect_ports: (!self.network).then(|| self.connect_ports.clone()),
            scopes: self.scopes,
            seccomp: self.seccomp,
            limits: Limits {
                address_space: self.memory,
                cpu_seconds: self.cpu_time.map(|limit| limit.as_secs().max(1)),
                open_files: self.open_files,
                processes: self.processes,
            },
            user_namespace: self.user_namespace || self.network_namespace,
            network_namespace: self.network_namespace,
        })
    }
}

/// Directories and files every plugin may read.
#[cfg(target_os = "linux")]
const SYSTEM_READ: &[&str] = &[
    "/usr",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/bin",
    "/sbin",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/ld.so.preload",
    "/etc/localtime",
    "/etc/nsswitch.conf",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/proc",
    "/sys/devices/system/cpu",
    "/sys/fs/cgroup",
    "/sys/kernel/mm/transparent_hugepage",
];

/// Devices every plugin may read and write.
#[cfg(target_os = "linux")]
const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
];

impl Sandbox {
    /// Makes the plugin's private temporary directory inside its socket
    /// directory (so it goes with it), when the sandbox gives one.
    pub(super) fn make_temp_dir(&self, socket_dir: &Path) -> Result<Option<PathBuf>> {
        if !self.temp_dir {
            return Ok(None);
        }
        let dir = socket_dir.join("tmp");
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|error| Error::Io {
                context: "creating the sandboxed plugin's temporary directory",
                error,
            })?;
        Ok(Some(dir))
    }

    /// Prepares the sandbox for this launch and installs it on `command`.
    ///
    /// # Errors
    ///
    /// [`Error::SandboxUnsupported`] for a strict sandbox on a kernel
    /// without a feature (or any sandbox off Linux); [`Error::Sandbox`]
    /// when a path to allow does not exist; [`Error::Config`] for a
    /// working directory of `/`.
    #[cfg(target_os = "linux")]
    pub(super) fn confine(
        &self,
        command: &mut std::process::Command,
        launch: &LaunchPaths,
    ) -> Result<Confinement> {
        let spec = self.spec(launch)?;
        let (prepared, pending) = crate::sys::sandbox::prepare(&spec)?;
        prepared.install(command);
        Ok(Confinement {
            pending,
            strict: spec.strict,
        })
    }

    #[cfg(not(target_os = "linux"))]
    pub(super) fn confine(
        &self,
        _command: &mut std::process::Command,
        _launch: &LaunchPaths,
    ) -> Result<Confinement> {
        Err(Error::SandboxUnsupported {
            feature: SandboxFeature::Platform,
            reason: "goplug's sandbox is built on Linux's Landlock, seccomp and namespaces"
                .to_owned(),
        })
    }
}

/// A sandbox installed on a launch's command, waiting for the spawn.
#[derive(Debug)]
pub(super) struct Confinement {
    #[cfg(target_os = "linux")]
    pending: crate::sys::sandbox::Pending,
    strict: bool,
}

impl Confinement {
    /// What was not applied, once the plugin started; logged at warn.
    pub(super) fn report(self) -> SandboxReport {
        #[cfg(target_os = "linux")]
        let missing = self
            .pending
            .finish()
            .into_iter()
            .map(|missing| (missing.feature, missing.reason))
            .collect();
        #[cfg(not(target_os = "linux"))]
        let missing = Vec::new();
        let report = SandboxReport { missing };
        for (feature, reason) in &report.missing {
            tracing::warn!(%feature, reason, "the plugin runs without this part of its sandbox");
        }
        report
    }

    /// For a strict sandbox whose child refused to start: the feature it
    /// could not apply, as the error to return instead of the spawn's.
    pub(super) fn refusal(self) -> Option<Error> {
        if !self.strict {
            return None;
        }
        let (feature, reason) = self.report().missing.into_iter().next()?;
        Some(Error::SandboxUnsupported { feature, reason })
    }
}

/// Where a launch puts things, for the sandbox's rules.
#[derive(Debug)]
pub(super) struct LaunchPaths {
    pub(super) program: PathBuf,
    pub(super) working_dir: PathBuf,
    pub(super) socket_dir: PathBuf,
    pub(super) temp_dir: Option<PathBuf>,
}

/// What a sandbox could not apply
/// ([`Client::sandbox_report`](super::Client::sandbox_report)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SandboxReport {
    /// Each confinement not in force, with the reason.
    pub missing: Vec<(SandboxFeature, String)>,
}

impl SandboxReport {
    /// True when everything the sandbox asked for is in force.
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty()
    }

    /// Whether `feature` is missing.
    pub fn lacks(&self, feature: SandboxFeature) -> bool {
        self.missing.iter().any(|(missing, _)| *missing == feature)
    }
}

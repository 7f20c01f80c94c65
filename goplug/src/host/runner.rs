//! How a plugin process is started, watched and stopped: go-plugin's
//! `runner.Runner`, `runner.AttachedRunner` and `runner.AddrTranslator`.
//!
//! The default, [`LocalRunner`], runs the command as a child of the host.
//! Implement [`Runner`] to run plugins elsewhere (a container, a sandbox, a
//! remote machine): the host still reads the handshake from the stdout you
//! return, logs the stderr, and translates addresses through the
//! [`RunningPlugin`] you return.

use std::ffi::OsString;
use std::fmt;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};

use tokio::io::AsyncRead;

use crate::protocol::handshake::PluginAddress;
use crate::sys::launcher::{detach_on_exec, die_with_host, on_launcher_thread};
use crate::sys::proc::kill_descendants;
use crate::sys::spawn::{SpawnRequest, SpawnedChild};

/// A boxed, sendable future, as the runner traits return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A readable pipe of the plugin: its stdout or stderr.
pub type PluginOutput = Box<dyn AsyncRead + Send + Unpin>;

/// What the host prepared for a launch.
#[derive(Debug)]
#[non_exhaustive]
pub struct Launch {
    /// The plugin's command with its complete environment (the host's,
    /// the caller's and go-plugin's variables, cleared first).
    pub command: std::process::Command,
    /// The plugin's program, for messages.
    pub program: PathBuf,
    /// The private directory the plugin was told to put its sockets in
    /// (`PLUGIN_UNIX_SOCKET_DIR`); a container runner mounts it.
    pub socket_dir: PathBuf,
    /// The plugin's own variables: the caller's (set on the command) and
    /// go-plugin's, without the host's environment. A runner that starts
    /// the plugin elsewhere passes these.
    pub env: Vec<(OsString, OsString)>,
    /// `argv[0]` when it is not the command's program (a checksummed
    /// plugin runs as `/proc/self/fd/N` under its own name).
    pub(crate) arg0: Option<OsString>,
    /// goplug added `pre_exec` hooks to `command` (the sandbox, a
    /// checksummed script's descriptor): only a fork runs them.
    pub(crate) needs_fork: bool,
    /// The command's program found in `PATH`, when the host looked it up.
    pub(crate) executable: Option<PathBuf>,
}

/// A started plugin: its output pipes and the handle that watches and stops it.
#[non_exhaustive]
pub struct Started {
    /// The plugin's stdout: the handshake line comes first.
    pub stdout: PluginOutput,
    /// The plugin's stderr: its logs.
    pub stderr: PluginOutput,
    /// Watches and stops the plugin.
    pub plugin: Box<dyn RunningPlugin>,
}

impl Started {
    /// Bundles what a runner started.
    pub fn new(stdout: PluginOutput, stderr: PluginOutput, plugin: Box<dyn RunningPlugin>) -> Self {
        Self {
            stdout,
            stderr,
            plugin,
        }
    }
}

impl fmt::Debug for Started {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Started")
            .field("plugin", &self.plugin)
            .finish_non_exhaustive()
    }
}

/// Starts plugin processes (go-plugin's `runner.Runner`).
pub trait Runner: Send + 'static {
    /// Starts the plugin described by `launch`. The host bounds this call
    /// with its start timeout (the future is dropped when it runs out: undo
    /// what was started). An error is reported as a failed spawn of the
    /// program, unless it wraps a goplug [`Error`](crate::Error)
    /// (`io::Error::other(error)`): that one is reported as it is.
    fn start(self: Box<Self>, launch: Launch) -> BoxFuture<'static, io::Result<Started>>;
}

/// How a plugin ended, as far as the host can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PluginExit {
    /// The plugin exited with this status.
    Exited(ExitStatus),
    /// The plugin is gone, its status unknown (it was not the host's
    /// child, or waiting for it failed).
    Gone,
}

/// A running plugin the host watches and may stop (go-plugin's
/// `runner.AttachedRunner` plus `AddrTranslator`).
pub trait RunningPlugin: Send + Sync + fmt::Debug + 'static {
    /// An identifier for logs; a process id for local plugins.
    fn id(&self) -> String;

    /// The process id, when the plugin is a process on this machine.
    fn pid(&self) -> Option<u32> {
        None
    }

    /// Resolves when the plugin is gone. Called once, from a watcher task.
    fn wait(&self) -> BoxFuture<'_, PluginExit>;

    /// Forcibly stops the plugin. Must not block; called from `Drop` too,
    /// and possibly more than once.
    fn kill(&self);

    /// Called once the plugin is gone (exited or killed): stops whatever it
    /// left behind. Must not block; called from `Drop` too.
    fn cleanup(&self) {}

    /// What [`cleanup`](Self::cleanup) does, awaited: a shutdown or a failed
    /// start waits for it (bounded), so that what the plugin left behind
    /// (a container) is gone when they return. Defaults to `cleanup`.
    fn release(&self) -> BoxFuture<'_, ()> {
        self.cleanup();
        Box::pin(std::future::ready(()))
    }

    /// Extra text for start-up failures (go-plugin's `Diagnose`).
    fn diagnose(&self) -> Option<String> {
        None
    }

    /// Translates an address the plugin announced (the handshake, brokered
    /// servers) into one the host can dial.
    fn plugin_to_host(&self, address: PluginAddress) -> PluginAddress {
        address
    }

    /// Translates an address of the host's brokered servers into one the
    /// plugin can dial.
    fn host_to_plugin(&self, address: PluginAddress) -> PluginAddress {
        address
    }
}

/// Runs the plugin as a child process of the host: the default runner.
///
/// Beyond go-plugin, by default the plugin:
/// - gets its own process group (unless the host's stdin is a terminal,
///   which the plugin must be able to read), so killing it kills every
///   process it started;
/// - receives SIGTERM when the host dies (Linux parent-death signal), so
///   no plugin outlives a crashed host.
///
/// [`keep_running`](Self::keep_running) turns both off and puts the plugin
/// in its own session, so it can outlive its host and be reattached.
///
/// The plugin is started the way `posix_spawn` and Go's `os/exec` start
/// processes (`clone(CLONE_VM | CLONE_VFORK)`): the host's memory is not
/// copied, so a host with a large heap or many plugins starts them as fast
/// as a small one. This uses the command's program, arguments, environment
/// and working directory; for its other `CommandExt` settings (uid, gid,
/// `pre_exec` hooks, `arg0`), see [`fork_exec`](Self::fork_exec).
#[derive(Clone, Debug, Default)]
pub struct LocalRunner {
    keep_running: bool,
    process_group: Option<bool>,
    fork_exec: bool,
}

impl LocalRunner {
    /// The default local runner.
    pub fn new() -> Self {
        Self::default()
    }

    /// Lets the plugin outlive the host (see [`Client::detach`](super::Client::detach)).
    #[must_use]
    pub fn keep_running(mut self, keep: bool) -> Self {
        self.keep_running = keep;
        self
    }

    /// Forces the plugin into its own process group (`true`) or the host's
    /// (`false`, as go-plugin). The default decides by whether stdin is a
    /// terminal.
    #[must_use]
    pub fn own_process_group(mut self, own: bool) -> Self {
        self.process_group = Some(own);
        self
    }

    /// Starts the plugin with std's `Command::spawn` (fork, then exec), so
    /// that every `CommandExt` setting of the command applies: uid, gid,
    /// groups, `pre_exec` hooks, `arg0`. Slower for a large host: fork
    /// copies its page tables and each page it writes afterwards takes a
    /// copy-on-write fault. Plugins that keep running are always started
    /// this way.
    #[must_use]
    pub fn fork_exec(mut self, fork: bool) -> Self {
        self.fork_exec = fork;
        self
    }

    fn wants_own_group(&self) -> bool {
        self.process_group
            .unwrap_or_else(|| !std::io::IsTerminal::is_terminal(&std::io::stdin()))
    }
}

impl Runner for LocalRunner {
    fn start(self: Box<Self>, launch: Launch) -> BoxFuture<'static, io::Result<Started>> {
        Box::pin(async move { spawn_local(*self, launch).await })
    }
}

async fn spawn_local(runner: LocalRunner, launch: Launch) -> io::Result<Started> {
    if !runner.keep_running && !runner.fork_exec && !launch.needs_fork {
        match spawn_without_fork(&runner, &launch).await {
            Err(e) if e.kind() == io::ErrorKind::Unsupported => {
                tracing::debug!("starting the plugin with fork: {e}");
            }
            started => return started,
        }
    }
    spawn_with_fork(runner, launch).await
}

/// The plugin started by `sys::spawn` on the launcher thread.
async fn spawn_without_fork(runner: &LocalRunner, launch: &Launch) -> io::Result<Started> {
    let command = &launch.command;
    let program = match &launch.executable {
        Some(found) => found.clone(),
        None => super::program::resolve_program(command.get_program()).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{:?} is in no PATH directory", command.get_program()),
            )
        })?,
    };
    let arg0 = launch
        .arg0
        .clone()
        .unwrap_or_else(|| command.get_program().to_owned());
    let args: Vec<OsString> = command.get_args().map(ToOwned::to_owned).collect();
    let env: Vec<(OsString, OsString)> = command
        .get_envs()
        .filter_map(|(key, value)| Some((key.to_owned(), value?.to_owned())))
        .collect();
    let current_dir = command.get_current_dir().map(ToOwned::to_owned);
    let own_group = runner.wants_own_group();
    let child: SpawnedChild = on_launcher_thread(move || {
        crate::sys::spawn::spawn(&SpawnRequest {
            program: &program,
            arg0: &arg0,
            args: args.iter().map(OsString::as_os_str).collect(),
            env: &env,
            current_dir: current_dir.as_deref(),
            own_process_group: own_group,
            die_with_host: true,
        })
    })
    .await?;
    let SpawnedChild {
        pid,
        pidfd,
        stdout,
        stderr,
    } = child;
    let plugin = LocalPlugin {
        pid: pid.as_raw_nonzero().get().unsigned_abs(),
        pidfd: Some(pidfd),
        own_group,
        keep_running: false,
        child: Child::Cloned {
            pid,
            reaped: std::sync::atomic::AtomicBool::new(false),
        },
    };
    let stdout = tokio::net::unix::pipe::Receiver::from_owned_fd(stdout)?;
    let stderr = tokio::net::unix::pipe::Receiver::from_owned_fd(stderr)?;
    Ok(Started::new(
        Box::new(stdout),
        Box::new(stderr),
        Box::new(plugin),
    ))
}

/// The plugin started by std's fork and exec, with `pre_exec` hooks.
async fn spawn_with_fork(runner: LocalRunner, launch: Launch) -> io::Result<Started> {
    use std::os::unix::process::CommandExt;
    let own_group = runner.wants_own_group();
    // A checksummed command already carries its arg0.
    let mut command = launch.command;
    command
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if runner.keep_running {
        detach_on_exec(&mut command);
    } else {
        if own_group {
            command.process_group(0);
        }
        die_with_host(&mut command);
    }
    let mut command = tokio::process::Command::from(command);
    command.kill_on_drop(!runner.keep_running);
    let mut child = if runner.keep_running {
        command.spawn()?
    } else {
        on_launcher_thread(move || command.spawn()).await?
    };
    let pid = child.id().unwrap_or_default();
    // Opened before anyone can reap the child, so it names this process.
    let pidfd = rustix::process::Pid::from_raw(pid as i32)
        .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok());
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(io::Error::other(
            "the child's stdout or stderr pipe is missing",
        ));
    };
    Ok(Started::new(
        Box::new(stdout),
        Box::new(stderr),
        Box::new(LocalPlugin {
            pid,
            pidfd,
            own_group: own_group && !runner.keep_running,
            keep_running: runner.keep_running,
            child: Child::Forked(Box::new(tokio::sync::Mutex::new(Some(child)))),
        }),
    ))
}

/// How the host waits for its child.
#[derive(Debug)]
enum Child {
    /// Forked by tokio, which reaps it.
    Forked(Box<tokio::sync::Mutex<Option<tokio::process::Child>>>),
    /// Started by `sys::spawn`: reaped here, after its pidfd reports the exit.
    Cloned {
        pid: rustix::process::Pid,
        reaped: std::sync::atomic::AtomicBool,
    },
}

/// A child process of the host.
#[derive(Debug)]
struct LocalPlugin {
    pid: u32,
    /// Refers to exactly this process, even once its pid is recycled.
    pidfd: Option<std::os::fd::OwnedFd>,
    own_group: bool,
    keep_running: bool,
    child: Child,
}

impl RunningPlugin for LocalPlugin {
    fn id(&self) -> String {
        self.pid.to_string()
    }

    fn pid(&self) -> Option<u32> {
        Some(self.pid)
    }

    fn wait(&self) -> BoxFuture<'_, PluginExit> {
        Box::pin(async move {
            match &self.child {
                Child::Forked(child) => {
                    let mut child = child.lock().await;
                    let Some(child) = child.as_mut() else {
                        return PluginExit::Gone;
                    };
                    match child.wait().await {
                        Ok(status) => PluginExit::Exited(status),
                        Err(e) => {
                            tracing::warn!("waiting for the plugin process failed: {e}");
                            PluginExit::Gone
                        }
                    }
                }
                Child::Cloned { pid, reaped } => {
                    let pidfd = self.pidfd.as_ref().and_then(|fd| fd.try_clone().ok());
                    crate::sys::pidfd::process_gone(pidfd, || !has_exited(*pid)).await;
                    match reap(*pid, reaped) {
                        Some(status) => PluginExit::Exited(status),
                        None => PluginExit::Gone,
                    }
                }
            }
        })
    }

    fn kill(&self) {
        // Descendants first: `sh -c plugin` (go-plugin's examples) leaves
        // the plugin as the shell's child when the shell does not exec.
        kill_descendants(self.pid);
        if self.own_group
            && let Some(group) = rustix::process::Pid::from_raw(self.pid as i32)
        {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
        match &self.pidfd {
            Some(pidfd) => {
                let _ = rustix::process::pidfd_send_signal(pidfd, rustix::process::Signal::KILL);
            }
            // Without pidfds (old kernels) the watcher's tokio child kills it.
            None => {
                if let Child::Forked(child) = &self.child
                    && let Ok(mut child) = child.try_lock()
                    && let Some(child) = child.as_mut()
                {
                    let _ = child.start_kill();
                }
            }
        }
    }

    fn cleanup(&self) {
        // Children that double-forked away from the plugin are no longer
        // its descendants, but still in its group. The group id cannot be
        // reused while a member lives; once the group is empty this fails
        // harmlessly (a new leader taking the freed pid in the moments
        // since the reap is the one, remote, race).
        if self.own_group
            && let Some(group) = rustix::process::Pid::from_raw(self.pid as i32)
        {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
    }

    fn diagnose(&self) -> Option<String> {
        self.keep_running
            .then(|| "the plugin was started to keep running after the host exits".to_owned())
    }
}

impl Drop for LocalPlugin {
    fn drop(&mut self) {
        // tokio reaps the children it forked; a cloned child that has
        // exited but was never waited for is reaped here, without blocking.
        if let Child::Cloned { pid, reaped } = &self.child {
            let _ = reap(*pid, reaped);
        }
    }
}

/// Whether the cloned child `pid` has exited (or cannot be waited for),
/// without reaping it.
fn has_exited(pid: rustix::process::Pid) -> bool {
    use rustix::process::{WaitId, WaitIdOptions};
    let peek = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
    !matches!(rustix::process::waitid(WaitId::Pid(pid), peek), Ok(None))
}

/// Reaps the cloned child `pid` once, if it has exited: its status.
fn reap(pid: rustix::process::Pid, reaped: &std::sync::atomic::AtomicBool) -> Option<ExitStatus> {
    use std::os::unix::process::ExitStatusExt;
    if reaped.load(std::sync::atomic::Ordering::Acquire) {
        return None;
    }
    match rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::NOHANG) {
        Ok(Some((_, status))) => {
            reaped.store(true, std::sync::atomic::Ordering::Release);
            Some(ExitStatus::from_raw(status.as_raw()))
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!("reaping the plugin process failed: {e}");
            None
        }
    }
}

/// A running plugin as the broker sees it: only its address translation.
pub(crate) struct BrokerTranslator(pub(crate) std::sync::Arc<dyn RunningPlugin>);

impl crate::transport::AddrTranslator for BrokerTranslator {
    fn plugin_to_host(&self, address: PluginAddress) -> PluginAddress {
        self.0.plugin_to_host(address)
    }

    fn host_to_plugin(&self, address: PluginAddress) -> PluginAddress {
        self.0.host_to_plugin(address)
    }
}

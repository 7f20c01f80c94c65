//! Starting plugin processes so that they die with their host: the
//! parent-death signal, a session of their own for plugins that outlive
//! the host, and the one thread every plugin is started from.

use std::io;
use std::sync::Mutex;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

/// Asks the kernel to send the plugin SIGTERM when the host dies, and
/// refuses to start it when the host is already gone.
#[expect(
    unsafe_code,
    reason = "pre_exec is how a child sets its parent-death signal"
)]
pub(crate) fn die_with_host(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let host = rustix::process::getpid();
    // SAFETY: the closure runs in the forked child before exec; it only
    // makes two syscalls (prctl, getppid), allocates nothing and takes no
    // lock, so it is async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM))?;
            if rustix::process::getppid() != Some(host) {
                return Err(io::Error::other(
                    "the host exited while starting the plugin",
                ));
            }
            Ok(())
        });
    }
}

/// Puts the plugin in a session of its own, so that neither the host's
/// exit nor its terminal's signals reach it.
#[expect(unsafe_code, reason = "pre_exec is how a child starts its own session")]
pub(crate) fn detach_on_exec(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and only
    // calls setsid(2): async-signal-safe, no allocation, no lock.
    unsafe {
        command.pre_exec(|| rustix::process::setsid().map(drop).map_err(io::Error::from));
    }
}

type LaunchJob = Box<dyn FnOnce() + Send>;

/// The thread every plugin with a parent-death signal is started from.
///
/// Linux delivers the parent-death signal when the *thread* that started
/// the child exits, not the process. Starting it from a tokio worker or a
/// blocking-pool thread would kill plugins whenever the pool retires that
/// thread; one thread that lives as long as the process makes the signal
/// mean "the host died". It is the one process-wide item in goplug, and
/// idles on a channel.
fn launcher() -> io::Result<std_mpsc::Sender<LaunchJob>> {
    static LAUNCHER: Mutex<Option<std_mpsc::Sender<LaunchJob>>> = Mutex::new(None);
    let mut slot = LAUNCHER
        .lock()
        .map_err(|_| io::Error::other("the plugin launcher thread panicked"))?;
    if let Some(sender) = slot.as_ref() {
        return Ok(sender.clone());
    }
    let (sender, jobs) = std_mpsc::channel::<LaunchJob>();
    std::thread::Builder::new()
        .name("goplug-launcher".to_owned())
        .stack_size(256 * 1024)
        .spawn(move || {
            for job in jobs {
                job();
            }
        })?;
    *slot = Some(sender.clone());
    Ok(sender)
}

/// Runs `job` (a spawn) on the launcher thread and returns what it
/// returned; `tokio::process` children register with the caller's runtime.
pub(crate) async fn on_launcher_thread<T: Send + 'static>(
    job: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let runtime = tokio::runtime::Handle::current();
    let (done, result) = tokio::sync::oneshot::channel();
    launcher()?
        .send(Box::new(move || {
            let _entered = runtime.enter();
            let _ = done.send(job());
        }))
        .map_err(|_| io::Error::other("the plugin launcher thread is gone"))?;
    tokio::time::timeout(Duration::from_secs(30), result)
        .await
        .map_err(|_| io::Error::other("the plugin launcher thread did not answer in 30 s"))?
        .map_err(|_| io::Error::other("the plugin launcher thread dropped the launch"))?
}

//! The one fixture of goplug's end-to-end tests: a [`Harness`] per test.
//!
//! Every command the harness builds carries `GOPLUG_TEST_ID=<id>` in its
//! environment, and so do the processes it starts; with the pids a test
//! [tracks](Harness::track) (and the one a script writes to
//! [`pid_file`](Harness::pid_file)), that is how the checks find the
//! test's *own* processes. No check looks at every process of the test
//! binary, so tests of one binary can run in parallel and no test can fail
//! another.
//!
//! - [`Harness::shared`]: checks only the test's own processes and its
//!   socket directory. Runs alongside other shared tests.
//! - [`Harness::exclusive`]: adds what only a test alone in its process
//!   can check: the fd count and the runtime's threads back at their
//!   baselines, and no stray zombie (the process becomes a child
//!   subreaper, so a plugin's orphans stay visible). It waits until no
//!   other harness of the binary is open, and keeps others out until it
//!   closes. The order of the tests does not matter: each one leaves
//!   nothing behind, and the checks wait for the state to settle.
//!
//! In a binary with exclusive tests, every test takes a harness *before*
//! building its runtime ([`Harness::run`] does): a runtime built while an
//! exclusive test runs would count against its fds.
//!
//! Time limits are defined once here ([`prompt`], [`step`], [`settle`]) and
//! scaled by `GOPLUG_TEST_SLACK` (a whole factor, default 1) for slow
//! machines.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use goplug::host::{Channel, Client, ClientBuilder, PluginSet};
use goplug_example_kv::{HANDSHAKE, pb::kv_client::KvClient};

use crate::procfs::{Descendant, describe, leftovers, open_fds};

/// The environment variable that tags a test's processes.
pub const TEST_ID: &str = "GOPLUG_TEST_ID";

/// goplug's default shutdown grace (go-plugin's 2 s). Not scaled: it is
/// the library's, and tests check it is kept.
pub const GRACE: Duration = Duration::from_secs(2);

/// The factor every limit is scaled by: `GOPLUG_TEST_SLACK`, default 1.
pub fn slack() -> u32 {
    static SLACK: OnceLock<u32> = OnceLock::new();
    *SLACK.get_or_init(|| {
        std::env::var("GOPLUG_TEST_SLACK")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1)
            .max(1)
    })
}

/// `limit` scaled by [`slack`].
pub fn scaled(limit: Duration) -> Duration {
    limit * slack()
}

/// An upper bound on what should be immediate (a failed start, a forced
/// kill, a call on a dead connection): far above what it takes on a loaded
/// 2-core machine, far below the hangs the tests rule out (30 s sleeps,
/// 20 s timeouts).
pub fn prompt() -> Duration {
    scaled(Duration::from_secs(5))
}

/// One start, call, or shutdown on a loaded 2-core machine.
pub fn step() -> Duration {
    scaled(Duration::from_secs(30))
}

/// How long the end state may take to settle: killed processes reaped,
/// background tasks closing their fds.
pub fn settle() -> Duration {
    scaled(Duration::from_secs(10))
}

/// Polls `check` every 20 ms until it holds, blocking this thread, or
/// `limit` has passed: then panics with `what` and the last `Err`.
pub fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> Result<(), String>) {
    let started = Instant::now();
    loop {
        match check() {
            Ok(()) => return,
            Err(e) if started.elapsed() > limit => panic!("{what}: not within {limit:?}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// [`eventually`] on a runtime: sleeps between polls, so the runtime's
/// tasks (reaping, closing) go on.
pub async fn eventually_async(
    limit: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<(), String>,
) {
    let started = Instant::now();
    loop {
        match check() {
            Ok(()) => return,
            Err(e) if started.elapsed() > limit => panic!("{what}: not within {limit:?}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Shared harnesses open and the exclusive one, if any.
#[derive(Debug, Default)]
struct Turns {
    shared: usize,
    exclusive: bool,
}

static TURNS: Mutex<Turns> = Mutex::new(Turns {
    shared: 0,
    exclusive: false,
});
static TURN_CHANGED: Condvar = Condvar::new();

/// A harness's place among the binary's tests, given back on drop. Shared
/// turns never wait for a waiting exclusive one (a test may hold two), and
/// the exclusive one waits until no harness is open.
#[derive(Debug)]
struct Turn {
    exclusive: bool,
}

impl Turn {
    fn take(exclusive: bool) -> Self {
        let mut turns = TURNS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while turns.exclusive || (exclusive && turns.shared > 0) {
            turns = TURN_CHANGED
                .wait(turns)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        if exclusive {
            turns.exclusive = true;
        } else {
            turns.shared += 1;
        }
        Self { exclusive }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut turns = TURNS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.exclusive {
            turns.exclusive = false;
        } else {
            turns.shared -= 1;
        }
        TURN_CHANGED.notify_all();
    }
}

/// What an exclusive test must find again at its end.
#[derive(Debug)]
struct Baseline {
    fds: usize,
    threads: BTreeSet<u32>,
}

/// One test's fixture: a working directory (`work`), a socket directory
/// (`sockets`, also the plugins' `TMPDIR`), the test's processes, and the
/// checks that it left nothing behind. See the [module](self) docs.
#[derive(Debug)]
pub struct Harness {
    id: String,
    _root: tempfile::TempDir,
    /// The plugins' working directory; free for the test's own files.
    pub work: PathBuf,
    /// The host's socket directory and the plugins' `TMPDIR`: it must be
    /// empty at the end.
    pub sockets: PathBuf,
    tracked: Mutex<Vec<u32>>,
    baseline: Option<Baseline>,
    _turn: Turn,
}

impl Harness {
    /// A harness whose checks cover only this test's processes and files.
    pub fn shared() -> Self {
        Self::open(Turn::take(false), false)
    }

    /// A harness for a test alone in its process: see the [module](self)
    /// docs.
    pub fn exclusive() -> Self {
        let turn = Turn::take(true);
        become_subreaper();
        warm_up();
        Self::open(turn, true)
    }

    fn open(turn: Turn, exclusive: bool) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let id = format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let root = tempfile::Builder::new()
            .prefix("goplug-test")
            .tempdir()
            .expect("the test's temp dir");
        let work = root.path().join("work");
        let sockets = root.path().join("sockets");
        std::fs::create_dir(&work).expect("the work directory");
        std::fs::create_dir(&sockets).expect("the socket directory");
        let baseline = exclusive.then(|| Baseline {
            fds: open_fds(),
            threads: thread_ids(),
        });
        Self {
            id,
            _root: root,
            work,
            sockets,
            tracked: Mutex::default(),
            baseline,
            _turn: turn,
        }
    }

    /// The value of `GOPLUG_TEST_ID` in this test's processes.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The socket directory (as the ledger called it): see [`Harness::sockets`].
    pub fn temp_dir(&self) -> &Path {
        &self.sockets
    }

    /// A path in the working directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.work.join(name)
    }

    /// A fresh directory in the working directory.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let dir = self.path(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch dir");
        dir
    }

    /// Where [`script`](Self::script) and [`plugin`](Self::plugin) write
    /// the plugin's pid.
    pub fn pid_file(&self) -> PathBuf {
        self.path("pid")
    }

    /// The pid in [`pid_file`](Self::pid_file), waiting for it; tracked.
    pub fn pid(&self) -> u32 {
        let pid = crate::read_pid(&self.pid_file());
        self.track(pid);
        pid
    }

    /// Tags `command` as this test's (`GOPLUG_TEST_ID`), in the working
    /// directory, with the socket directory as its `TMPDIR`.
    /// A `TMPDIR` or working directory the test set already is kept.
    pub fn tag<'c>(&self, command: &'c mut Command) -> &'c mut Command {
        if !command.get_envs().any(|(key, _)| key == "TMPDIR") {
            command.env("TMPDIR", &self.sockets);
        }
        if command.get_current_dir().is_none() {
            command.current_dir(&self.work);
        }
        command.env(TEST_ID, &self.id)
    }

    /// `program`, tagged.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        self.tag(&mut command);
        command
    }

    /// A test plugin binary ([`crate::FAKE`], [`crate::FAULT`],
    /// [`crate::NOISY`]) in `mode`, tagged.
    pub fn plugin(&self, program: &crate::Bin, mode: &str) -> Command {
        let mut command = self.command(program);
        if !mode.is_empty() {
            command.arg(mode);
        }
        command
    }

    /// The fake plugin in `mode`, writing its pid to
    /// [`pid_file`](Self::pid_file) first.
    pub fn fake(&self, mode: &str) -> Command {
        self.fake_with_env(mode, &[])
    }

    /// [`fake`](Self::fake) with extra environment variables.
    pub fn fake_with_env(&self, mode: &str, env: &[(&str, &str)]) -> Command {
        let mut command = self.command(&crate::FAKE);
        command
            .arg("pid-file")
            .arg(self.pid_file())
            .arg(mode)
            .envs(env.iter().copied());
        command
    }

    /// A shell script as the plugin, writing its pid to
    /// [`pid_file`](Self::pid_file) first (`$$` stays the plugin's pid
    /// through `exec`).
    pub fn script(&self, body: &str) -> Command {
        let mut command = self.command("/bin/sh");
        command.arg("-c").arg(self.script_text(body));
        command
    }

    /// The text of [`script`](Self::script), for hosts that take a shell
    /// command line.
    pub fn script_text(&self, body: &str) -> String {
        format!("echo $$ > '{}'; {body}", self.pid_file().display())
    }

    /// A host for `command` (tagged here) with the KV plugin set, this
    /// socket directory and a start timeout of [`step`].
    pub fn kv_host(&self, mut command: Command) -> ClientBuilder {
        self.tag(&mut command);
        Client::builder(HANDSHAKE)
            .plugins(PluginSet::new().grpc::<KvClient<Channel>>("kv"))
            .command(command)
            .unix_socket_dir(&self.sockets)
            .start_timeout(step())
    }

    /// A recipe for [`kv_host`](Self::kv_host) with `program` and `args`,
    /// made anew at each call (a supervisor's restarts), tagged as this
    /// test's.
    pub fn kv_host_recipe(
        &self,
        program: impl Into<std::ffi::OsString>,
        args: &[&str],
    ) -> impl Fn() -> ClientBuilder + Send + Sync + 'static {
        let program = program.into();
        let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
        let (id, work, sockets) = (self.id.clone(), self.work.clone(), self.sockets.clone());
        move || {
            let mut command = Command::new(&program);
            command
                .args(&args)
                .env("TMPDIR", &sockets)
                .env(TEST_ID, &id)
                .current_dir(&work);
            Client::builder(HANDSHAKE)
                .plugins(PluginSet::new().grpc::<KvClient<Channel>>("kv"))
                .command(command)
                .unix_socket_dir(&sockets)
                .start_timeout(step())
        }
    }

    /// A plugin the test started (or the host library did): at the end it
    /// must be gone, not even a zombie.
    pub fn track(&self, pid: u32) {
        if let Ok(mut tracked) = self.tracked.lock() {
            tracked.push(pid);
        }
    }

    /// This test's processes that exist: tagged ones that run, and tracked
    /// ones (the pid file's included) that run or wait to be reaped.
    pub fn own_processes(&self) -> Vec<Descendant> {
        let mut found: Vec<Descendant> =
            tagged(&self.id).into_iter().filter_map(describe).collect();
        let mut tracked = self.tracked.lock().map(|t| t.clone()).unwrap_or_default();
        if let Some(pid) = std::fs::read_to_string(self.pid_file())
            .ok()
            .and_then(|text| text.trim().parse().ok())
        {
            tracked.push(pid);
        }
        for pid in tracked {
            if !found.iter().any(|p| p.pid == pid)
                && let Some(process) = describe(pid)
            {
                found.push(process);
            }
        }
        found
    }

    /// The check of the end state, once: `Err` says what is left.
    fn left_behind(&self) -> Result<(), String> {
        if let Some(baseline) = &self.baseline {
            reap_strays(&self.tracked.lock().map(|t| t.clone()).unwrap_or_default());
            let fds = open_fds();
            let threads = new_runtime_threads(&baseline.threads);
            let processes = self.own_processes();
            let files = leftovers(&self.sockets);
            if processes.is_empty() && files.is_empty() && fds <= baseline.fds && threads.is_empty()
            {
                return Ok(());
            }
            return Err(format!(
                "left behind: processes {processes:?}, files {files:?}, fds {fds} (baseline {}): \
                 {}, threads {threads:?}",
                baseline.fds,
                describe_fds()
            ));
        }
        let processes = self.own_processes();
        let files = leftovers(&self.sockets);
        if processes.is_empty() && files.is_empty() {
            return Ok(());
        }
        Err(format!(
            "left behind: processes {processes:?}, files in the socket dir {files:?}"
        ))
    }

    /// The test's processes are gone (not even zombies) and its socket
    /// directory is empty, waiting up to [`settle`] on the runtime (which
    /// reaps). For an exclusive harness, the fds and threads are back at
    /// their baselines too.
    pub async fn assert_clean(&self) {
        eventually_async(settle(), "the test's end state", || self.left_behind()).await;
    }

    /// [`close`](Self::close)'s check, waiting up to `limit`, keeping the
    /// harness (and its turn): `Err` says what was left behind.
    pub fn check(&self, limit: Duration) -> Result<(), String> {
        let started = Instant::now();
        loop {
            match self.left_behind() {
                Ok(()) => return Ok(()),
                Err(e) if started.elapsed() > limit => {
                    return Err(format!("after {limit:?}, {e}"));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Checks the end state (see [`assert_clean`](Self::assert_clean)),
    /// blocking this thread: call it with no runtime left to reap.
    ///
    /// # Panics
    ///
    /// With what was left behind.
    pub fn close(self) {
        if let Err(e) = self.check(settle()) {
            panic!("{e}");
        }
    }

    /// Runs an async test on a current-thread runtime built now and
    /// dropped before the harness [closes](Self::close). The whole test is
    /// bounded (4 minutes, scaled), so no await can hang it.
    pub fn run(self, test: impl AsyncFnOnce(&Harness)) {
        self.run_on(current_thread(), scaled(Duration::from_secs(240)), test);
    }

    /// [`run`](Self::run) on a runtime with two workers (the CI machine has
    /// two cores), unbounded (for soaks; bound each await).
    pub fn run_multi_thread(self, test: impl AsyncFnOnce(&Harness)) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        self.run_on(runtime, Duration::MAX, test);
    }

    /// [`run`](Self::run) with `logs` receiving the plugin log events of
    /// every thread of the runtime (and of this one while it runs).
    pub fn run_logged(self, logs: crate::PluginLogs, test: impl AsyncFnOnce(&Harness)) {
        self.run_logged_filtered(logs, "trace", test);
    }

    /// [`run_logged`](Self::run_logged) with `logs` behind a host filter in
    /// `RUST_LOG` syntax.
    pub fn run_logged_filtered(
        self,
        logs: crate::PluginLogs,
        filter: &str,
        test: impl AsyncFnOnce(&Harness),
    ) {
        use tracing_subscriber::Layer as _;
        use tracing_subscriber::layer::SubscriberExt as _;
        let filter = tracing_subscriber::EnvFilter::new(filter);
        let dispatch =
            tracing::Dispatch::new(tracing_subscriber::registry().with(logs.with_filter(filter)));
        let on_start = dispatch.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .on_thread_start(move || {
                // Runtime threads end with the runtime, and their default with them.
                std::mem::forget(tracing::dispatcher::set_default(&on_start));
            })
            .build()
            .expect("a tokio runtime");
        let _default = tracing::dispatcher::set_default(&dispatch);
        self.run_on(runtime, scaled(Duration::from_secs(240)), test);
    }

    fn run_on(
        self,
        runtime: tokio::runtime::Runtime,
        bound: Duration,
        test: impl AsyncFnOnce(&Harness),
    ) {
        runtime.block_on(async {
            if tokio::time::timeout(bound, test(&self)).await.is_err() {
                panic!("the test did not finish within {bound:?}");
            }
        });
        drop(runtime);
        self.close();
    }
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Makes this process the reaper of its orphaned descendants.
pub fn become_subreaper() {
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        panic!("PR_SET_CHILD_SUBREAPER: {e}");
    }
}

/// What lives as long as the process is set up before the first baseline:
/// tokio's signal pipe (made by the first runtime that waits for a child).
fn warm_up() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        current_thread().block_on(async {
            let _ = tokio::process::Command::new("true").status().await;
        });
    });
}

/// The pids whose environment holds `GOPLUG_TEST_ID=<id>`.
fn tagged(id: &str) -> Vec<u32> {
    let wanted = format!("{TEST_ID}={id}");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != std::process::id())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|environ| {
                environ
                    .split(|byte| *byte == 0)
                    .any(|variable| variable == wanted.as_bytes())
            })
        })
        .collect()
}

/// Reaps this process's zombie children that are not `tracked` plugins
/// (orphans reparented to this subreaper). A tracked plugin must be reaped
/// by the library.
fn reap_strays(tracked: &[u32]) {
    for process in crate::descendants() {
        if process.is_zombie()
            && process.parent == std::process::id()
            && !tracked.contains(&process.pid)
            && let Ok(pid) = i32::try_from(process.pid)
        {
            let _ = nix::sys::wait::waitpid(
                nix::unistd::Pid::from_raw(pid),
                Some(nix::sys::wait::WaitPidFlag::WNOHANG),
            );
        }
    }
}

/// This process's thread ids.
fn thread_ids() -> BTreeSet<u32> {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(Result::ok)
                .filter_map(|task| task.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Threads started since `baseline` that a runtime or goplug runs
/// (`tokio-runtime-w…`, `goplug…`), but not goplug's launcher thread, which
/// lives as long as the process by design. The test runner's own threads
/// (named after tests) come and go and are not counted.
fn new_runtime_threads(baseline: &BTreeSet<u32>) -> Vec<String> {
    thread_ids()
        .difference(baseline)
        .filter_map(|tid| {
            let name = std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).ok()?;
            let name = name.trim_end();
            let ours = name.starts_with("tokio-runtime") || name.starts_with("goplug");
            (ours && name != "goplug-launcher").then(|| format!("{tid} {name}"))
        })
        .collect()
}

fn describe_fds() -> String {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return String::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| std::fs::read_link(entry.path()).ok())
        .map(|target| target.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

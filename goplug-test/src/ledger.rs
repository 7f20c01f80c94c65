//! The reliability suite's end-of-test accounting
//! (`research/reliability.md` §5.0): the test process is a child subreaper,
//! so anything a plugin leaves running stays visible as our descendant;
//! at the end there must be no live descendants, no unreaped plugin, the
//! fd count back at its baseline and the test's temp dir empty.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// fd counts are per process and cargo runs a binary's tests on threads:
/// tests holding a [`Ledger`] take turns.
static SERIAL: Mutex<()> = Mutex::new(());

/// How long the end-of-test state may take to settle (background tasks
/// closing their fds, killed processes being reaped).
const SETTLE: Duration = Duration::from_secs(5);

/// A process below this one, as `/proc` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descendant {
    /// Its pid.
    pub pid: u32,
    /// Its parent's pid.
    pub parent: u32,
    /// The state letter of `/proc/<pid>/stat` (`Z` for a zombie).
    pub state: char,
    /// Its command name.
    pub name: String,
}

impl Descendant {
    /// Whether it has exited and waits to be reaped.
    pub fn is_zombie(&self) -> bool {
        self.state == 'Z'
    }
}

/// The baseline of one reliability test, checked by [`Ledger::close`].
#[derive(Debug)]
pub struct Ledger {
    fds: usize,
    temp: tempfile::TempDir,
    plugins: Vec<u32>,
    _turn: MutexGuard<'static, ()>,
}

impl Ledger {
    /// Waits for this binary's other ledgers, makes this process a child
    /// subreaper and records the fd baseline.
    pub fn open() -> Self {
        let turn = SERIAL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        become_subreaper();
        let temp = tempfile::Builder::new()
            .prefix("ledger")
            .tempdir()
            .expect("the test's temp dir");
        Self {
            fds: crate::open_fds(),
            temp,
            plugins: Vec::new(),
            _turn: turn,
        }
    }

    /// The test's own temp dir (give it to hosts as the socket dir and to
    /// plugins as `TMPDIR`); it must be empty at the end.
    pub fn temp_dir(&self) -> &Path {
        self.temp.path()
    }

    /// A fresh directory outside [`temp_dir`](Self::temp_dir) for files a
    /// test keeps (pid files, markers); removed with the ledger.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("ledger-scratch-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch dir");
        dir
    }

    /// A plugin the host library launched: it must be reaped by the
    /// library, so a zombie of it at the end is a failure. Other zombies
    /// are grandchildren reparented here and reaped by [`close`](Self::close).
    pub fn track(&mut self, pid: u32) {
        self.plugins.push(pid);
    }

    /// Checks the end state, waiting up to 5 s for it to settle: no live
    /// descendants, no unreaped plugin, fds at baseline, temp dir empty.
    ///
    /// # Panics
    ///
    /// With what was left behind.
    pub fn close(self) {
        if let Err(left) = self.check(SETTLE) {
            panic!("{left}");
        }
    }

    /// The check of [`close`](Self::close), waiting up to `settle`, without
    /// giving up this test's turn: `Err` says what was left behind.
    pub fn check(&self, settle: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            let left = self.reap_strays();
            let fds = crate::open_fds();
            let files = crate::leftovers(self.temp.path());
            if left.is_empty() && fds <= self.fds && files.is_empty() {
                return Ok(());
            }
            if start.elapsed() > settle {
                return Err(format!(
                    "left behind after {settle:?}: processes {left:?}, fds {fds} (baseline {}): {}, files {files:?}",
                    self.fds,
                    describe_fds()
                ));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Reaps zombies that are not tracked plugins; returns what is left.
    fn reap_strays(&self) -> Vec<Descendant> {
        let mut left = Vec::new();
        for process in descendants() {
            let ours = process.parent == std::process::id();
            if process.is_zombie() && ours && !self.plugins.contains(&process.pid) {
                reap(process.pid);
            } else {
                left.push(process);
            }
        }
        left
    }
}

/// Makes this process the reaper of its orphaned descendants.
pub fn become_subreaper() {
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        panic!("PR_SET_CHILD_SUBREAPER: {e}");
    }
}

/// Every process below this one.
pub fn descendants() -> Vec<Descendant> {
    let mut found = Vec::new();
    let mut queue = children_of("self");
    while let Some(pid) = queue.pop() {
        let Some(process) = describe(pid) else {
            continue;
        };
        queue.extend(children_of(&pid.to_string()));
        found.push(process);
    }
    found
}

fn children_of(pid: &str) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter_map(|pid| pid.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

fn describe(pid: u32) -> Option<Descendant> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) S ppid …`; comm may hold spaces and parentheses.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let mut rest = stat.get(close + 2..)?.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let parent = rest.next()?.parse().ok()?;
    Some(Descendant {
        pid,
        parent,
        state,
        name: stat.get(open + 1..close)?.to_owned(),
    })
}

fn reap(pid: u32) {
    let Ok(pid) = i32::try_from(pid) else {
        return;
    };
    let _ = nix::sys::wait::waitpid(
        nix::unistd::Pid::from_raw(pid),
        Some(nix::sys::wait::WaitPidFlag::WNOHANG),
    );
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

/// A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`, …); `pid`
/// may be `"self"`.
pub fn status_kib(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Threads of process `pid` (`"self"` for this one).
pub fn threads(pid: &str) -> Option<u64> {
    status_kib(pid, "Threads")
}

/// CPU time (user + system) this process has used.
pub fn cpu_time() -> Duration {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF);
    usage.map_or(Duration::ZERO, |usage| {
        let user = usage.user_time();
        let system = usage.system_time();
        let micros =
            (user.tv_sec() + system.tv_sec()) * 1_000_000 + user.tv_usec() + system.tv_usec();
        Duration::from_micros(u64::try_from(micros).unwrap_or(0))
    })
}

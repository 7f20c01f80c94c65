//! What `/proc` says about this process and the processes below it:
//! descendants, fds, threads, memory and CPU time.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// A process, as `/proc/<pid>/stat` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descendant {
    /// Its pid.
    pub pid: u32,
    /// Its parent's pid.
    pub parent: u32,
    /// The state letter of `/proc/<pid>/stat` (`Z` for a zombie, `T` when
    /// stopped).
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

/// Process `pid` as `/proc` shows it now; `None` once it is gone (reaped).
pub fn describe(pid: u32) -> Option<Descendant> {
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

/// Every process below this one. Process-wide: a test's checks use
/// [`Harness::own_processes`](crate::Harness::own_processes) instead.
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

/// Open file descriptors of process `pid` (`"self"` for this one).
pub fn fd_count(pid: &str) -> Option<u64> {
    let entries = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    u64::try_from(entries.count()).ok()
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    fd_count("self").map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX))
}

/// Lists what is left in `dir`.
pub fn leftovers(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
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

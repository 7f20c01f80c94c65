//! A plugin's process, read from `/proc`: the tree under it, which the host
//! kills so that no descendant is orphaned or keeps the plugin's pipes open,
//! and what it costs (memory, CPU time, fds), which a supervisor reports.

/// SIGKILLs every descendant of `pid`, deepest first, so that none is
/// orphaned and none keeps the plugin's output pipes open.
pub(crate) fn kill_descendants(pid: u32) {
    let mut found = Vec::new();
    let mut queue = vec![pid];
    // Bounded against pathological trees.
    while let Some(parent) = queue.pop() {
        if found.len() >= 4096 {
            break;
        }
        for child in children_of(parent) {
            found.push(child);
            queue.push(child);
        }
    }
    for child in found.into_iter().rev() {
        if let Some(child) = i32::try_from(child)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(child, rustix::process::Signal::KILL);
        }
    }
}

fn children_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("children")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// What a process costs now, read from `/proc/<pid>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Usage {
    pub(crate) rss_bytes: u64,
    /// User plus system time, all threads.
    pub(crate) cpu_time: std::time::Duration,
    pub(crate) open_fds: u64,
}

/// `pid`'s resident memory, CPU time and open fds; `None` when the process
/// is gone or `/proc` does not say (never a panic: it may vanish midway).
pub(crate) fn usage(pid: u32) -> Option<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let open_fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    let ticks = cpu_ticks(&stat)?;
    let per_second = rustix::param::clock_ticks_per_second().max(1);
    let cpu_time = std::time::Duration::from_secs(ticks / per_second)
        + std::time::Duration::from_nanos((ticks % per_second) * 1_000_000_000 / per_second);
    let pages = resident_pages(&statm)?;
    let page = u64::try_from(rustix::param::page_size()).ok()?;
    Some(Usage {
        rss_bytes: pages.saturating_mul(page),
        cpu_time,
        open_fds: u64::try_from(open_fds).ok()?,
    })
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line; the
/// command name before them may hold spaces and parentheses, so fields
/// are counted from its last `)`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user.saturating_add(system))
}

/// The resident pages (second field) of `/proc/<pid>/statm`.
fn resident_pages(statm: &str) -> Option<u64> {
    statm.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let cases = [
            (
                "12 (kv) S 1 12 12 0 -1 4194560 100 0 0 0 7 3 0 0 20 0",
                Some(10),
            ),
            (
                "12 (a) b) (c) R 1 12 12 0 -1 0 0 0 0 0 250 50 0 0",
                Some(300),
            ),
            ("12 (kv) S 1 12", None),
            ("garbage", None),
        ];
        for (line, want) in cases {
            assert_eq!(cpu_ticks(line), want, "{line}");
        }
        assert_eq!(resident_pages("2000 345 100 1 0 50 0"), Some(345));
        assert_eq!(resident_pages("2000"), None);
    }

    #[test]
    fn our_own_process_has_memory_and_fds_and_a_vanished_one_none() {
        let own = usage(std::process::id()).expect("our own /proc entry");
        assert!(own.rss_bytes > 0 && own.open_fds > 0, "{own:?}");
        // Beyond any pid_max: no such process.
        assert_eq!(usage(u32::MAX), None);
    }
}

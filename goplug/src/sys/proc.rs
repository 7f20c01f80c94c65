//! The process tree under a plugin, read from `/proc`: what the host
//! kills so that no descendant is orphaned or keeps the plugin's pipes open.

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

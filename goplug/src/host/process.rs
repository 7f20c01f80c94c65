//! The plugin process: environment, spawning, the handshake line on stdout,
//! stderr draining, exit watching and killing.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::runner::{PluginExit, PluginOutput, RunningPlugin, Started};
use crate::protocol::StderrTail;

/// Longest stderr line handled as one line by default; longer ones are
/// split, as go-plugin's `PluginLogBufferSize` does.
pub(crate) const DEFAULT_LOG_BUFFER_SIZE: usize = 64 * 1024;
/// Stderr lines kept for error messages.
const TAIL_LINES: usize = 20;
/// Bytes of each kept stderr line.
const TAIL_LINE_BYTES: usize = 512;
/// How long a reaped-or-killed process may take to be reaped.
pub(crate) const REAP_TIMEOUT: Duration = Duration::from_secs(5);

/// A writer the host copies the plugin's raw stderr to.
pub(crate) type StderrSink = Box<dyn AsyncWrite + Send + Unpin>;

/// Where the plugin process is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProcessState {
    Running,
    Exited(ExitStatus),
    /// Waiting on the child failed; it is gone but its status is unknown.
    Lost,
}

/// Builds the plugin's environment as go-plugin does: the caller's
/// variables, then the host's own (unless skipped), then go-plugin's; the
/// last value of a name wins.
pub(crate) fn assemble_env(
    caller: impl IntoIterator<Item = (OsString, OsString)>,
    host: Option<impl IntoIterator<Item = (OsString, OsString)>>,
    plugin_vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = Vec::new();
    let mut set = |key: OsString, value: OsString| {
        if let Some(slot) = env.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
        } else {
            env.push((key, value));
        }
    };
    for (k, v) in caller {
        set(k, v);
    }
    for (k, v) in host.into_iter().flatten() {
        set(k, v);
    }
    for (k, v) in plugin_vars {
        set(k, v);
    }
    env
}

/// The last stderr lines of the plugin.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    lines: VecDeque<String>,
}

impl Tail {
    fn push(&mut self, line: &[u8]) {
        let text = String::from_utf8_lossy(&line[..line.len().min(TAIL_LINE_BYTES)]).into_owned();
        if self.lines.len() == TAIL_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(text);
    }

    fn snapshot(&self) -> StderrTail {
        StderrTail(self.lines.iter().cloned().collect::<Vec<_>>().join("\n"))
    }
}

/// A started plugin and the tasks that watch it.
#[derive(Debug)]
pub(crate) struct PluginProcess {
    pub(crate) pid: Option<u32>,
    pub(crate) program: PathBuf,
    name: String,
    state: watch::Receiver<ProcessState>,
    plugin: Arc<dyn RunningPlugin>,
    tail: Arc<Mutex<Tail>>,
    stderr_task: Option<JoinHandle<()>>,
    stdout_task: Option<JoinHandle<()>>,
    /// Set by `detach`: the plugin is no longer the host's to kill.
    detached: bool,
}

impl PluginProcess {
    /// Starts watching a plugin a runner started: its exit, its stderr.
    /// `program` names the plugin in messages.
    pub(crate) fn watch(
        started: Started,
        program: PathBuf,
        stderr_sink: Option<StderrSink>,
        log_buffer_size: usize,
    ) -> (Self, BufReader<PluginOutput>) {
        let Started {
            stdout,
            stderr,
            plugin,
            ..
        } = started;
        let plugin: Arc<dyn RunningPlugin> = Arc::from(plugin);
        let (state_tx, state) = watch::channel(ProcessState::Running);
        let watched = plugin.clone();
        tokio::spawn(async move {
            let state = match watched.wait().await {
                PluginExit::Exited(status) => ProcessState::Exited(status),
                _ => ProcessState::Lost,
            };
            state_tx.send_replace(state);
        });

        let tail = Arc::new(Mutex::new(Tail::default()));
        let plugin_name = program.file_name().map_or_else(
            || program.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let stderr_task = tokio::spawn(drain_stderr(
            stderr,
            stderr_sink,
            tail.clone(),
            plugin_name.clone(),
            log_buffer_size.max(1),
        ));
        (
            Self {
                pid: plugin.pid(),
                program,
                name: plugin_name,
                state,
                plugin,
                tail,
                stderr_task: Some(stderr_task),
                stdout_task: None,
                detached: false,
            },
            BufReader::new(stdout),
        )
    }

    /// Watches a plugin that has no output pipes (a reattached one).
    pub(crate) fn watch_attached(plugin: Box<dyn RunningPlugin>, program: PathBuf) -> Self {
        let started = Started::new(
            Box::new(tokio::io::empty()),
            Box::new(tokio::io::empty()),
            plugin,
        );
        let (mut process, stdout) = Self::watch(started, program, None, DEFAULT_LOG_BUFFER_SIZE);
        drop(stdout);
        if let Some(task) = process.stderr_task.take() {
            task.abort();
        }
        process
    }

    /// Keeps reading stdout after the handshake and discards it, as
    /// go-plugin does, so a chatty plugin never blocks on a full pipe.
    pub(crate) fn discard_stdout(&mut self, mut stdout: BufReader<PluginOutput>) {
        self.stdout_task = Some(tokio::spawn(async move {
            let _ = tokio::io::copy_buf(&mut stdout, &mut tokio::io::sink()).await;
        }));
    }

    /// The plugin's name in logs: its program's file name, as go-plugin.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn state(&self) -> ProcessState {
        *self.state.borrow()
    }

    pub(crate) fn exit_status(&self) -> Option<ExitStatus> {
        match self.state() {
            ProcessState::Exited(status) => Some(status),
            _ => None,
        }
    }

    pub(crate) fn running(&self) -> &dyn RunningPlugin {
        self.plugin.as_ref()
    }

    pub(crate) fn running_arc(&self) -> Arc<dyn RunningPlugin> {
        self.plugin.clone()
    }

    /// Waits until the process is gone, or `timeout`. Returns whether it is gone.
    pub(crate) async fn wait_gone(&self, timeout: Duration) -> bool {
        // A zero timeout would still wait for the timer's next tick.
        if timeout.is_zero() {
            return self.state() != ProcessState::Running;
        }
        let mut state = self.state.clone();
        matches!(
            tokio::time::timeout(timeout, state.wait_for(|s| *s != ProcessState::Running)).await,
            Ok(Ok(_))
        )
    }

    /// Kills the plugin (and, for local ones, its descendants) and waits,
    /// bounded, for it to be gone.
    pub(crate) async fn kill(&self) -> bool {
        if self.state() == ProcessState::Running {
            self.plugin.kill();
        }
        self.wait_gone(REAP_TIMEOUT).await
    }

    /// Stops what the plugin left behind and waits (bounded) until that is
    /// done.
    pub(crate) async fn release(&self) {
        if tokio::time::timeout(REAP_TIMEOUT, self.plugin.release())
            .await
            .is_err()
        {
            tracing::warn!(
                id = self.plugin.id(),
                "releasing what the plugin left behind did not finish within {REAP_TIMEOUT:?}"
            );
        }
    }

    /// Waits (bounded) for the stdout and stderr readers to reach EOF, so
    /// that every stderr line reached the sink and the tail.
    pub(crate) async fn finish_readers(&mut self, timeout: Duration) {
        let readers = async {
            if let Some(task) = self.stderr_task.take() {
                let _ = task.await;
            }
            if let Some(task) = self.stdout_task.take() {
                let _ = task.await;
            }
        };
        if tokio::time::timeout(timeout, readers).await.is_err() {
            // A descendant of the plugin may hold the pipes open.
            tracing::debug!("plugin output pipes still open after the plugin exited");
        }
    }

    /// Lets the plugin go: it is not killed when this is dropped. Its
    /// output keeps being drained (and its exit reaped) while the host runs.
    pub(crate) fn detach(mut self) {
        self.detached = true;
        self.stderr_task.take();
        self.stdout_task.take();
    }

    pub(crate) fn stderr_tail(&self) -> StderrTail {
        self.tail
            .lock()
            .map(|tail| tail.snapshot())
            .unwrap_or_default()
    }
}

impl Drop for PluginProcess {
    fn drop(&mut self) {
        if self.detached {
            return;
        }
        // Never blocks. The SIGKILL goes out now, even if the runtime is busy
        // or gone; the watcher task (or tokio's orphan reaper) reaps.
        if self.state() == ProcessState::Running {
            self.plugin.kill();
        }
        self.plugin.cleanup();
        if let Some(task) = &self.stdout_task {
            task.abort();
        }
    }
}

/// Reads the plugin's stderr to the end: every line goes to the tail kept
/// for errors, to the raw copy (if any), and is re-logged through
/// `tracing` as go-plugin's host logs it. Lines longer than `limit` are
/// split and logged verbatim at debug, never parsed, never dropped.
async fn drain_stderr(
    stderr: PluginOutput,
    mut sink: Option<StderrSink>,
    tail: Arc<Mutex<Tail>>,
    plugin: String,
    limit: usize,
) {
    let mut reader = BufReader::with_capacity(limit.min(1 << 20), stderr);
    let mut parser = crate::protocol::hclog::StderrParser::new();
    // Inside a line longer than `limit`, between its pieces.
    let mut continuing = false;
    loop {
        let (piece, line_ends) = match read_line(&mut reader, limit).await {
            Ok(Line::Complete(line)) => (line, true),
            Ok(Line::TooLong(piece)) => (piece, false),
            Ok(Line::Eof(rest)) if !rest.is_empty() => (rest, true),
            Ok(Line::Eof(_)) => break,
            Err(e) => {
                tracing::error!(plugin, "reading plugin stderr: {e}");
                break;
            }
        };
        if let Ok(mut tail) = tail.lock() {
            tail.push(&piece);
        }
        let text = String::from_utf8_lossy(&piece);
        if continuing || !line_ends {
            tracing::debug!(target: "goplug::plugin", plugin, "{text}");
        } else {
            super::plugin_log::emit(&plugin, &parser.parse(&text));
        }
        continuing = !line_ends;
        if let Some(writer) = sink.as_mut() {
            let written = async {
                writer.write_all(&piece).await?;
                if line_ends {
                    writer.write_all(b"\n").await?;
                }
                writer.flush().await
            };
            if let Err(e) = written.await {
                tracing::warn!(
                    plugin,
                    "copying plugin stderr failed, no longer copying: {e}"
                );
                sink = None;
            }
        }
    }
}

/// One line read with a length cap.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// A line without its `\n` (a `\r` before it is kept; the parser trims it).
    Complete(Vec<u8>),
    /// `limit` bytes without a newline; the rest of the line is still unread.
    TooLong(Vec<u8>),
    /// End of input; what was read after the last newline.
    Eof(Vec<u8>),
}

/// Reads up to and excluding `\n`, never buffering more than `limit` bytes.
pub(crate) async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    limit: usize,
) -> io::Result<Line> {
    let mut line = Vec::new();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(Line::Eof(line));
        }
        let room = limit - line.len();
        let window = &available[..available.len().min(room)];
        if let Some(pos) = window.iter().position(|&b| b == b'\n') {
            line.extend_from_slice(&window[..pos]);
            reader.consume(pos + 1);
            return Ok(Line::Complete(line));
        }
        let taken = window.len();
        line.extend_from_slice(window);
        reader.consume(taken);
        if line.len() >= limit {
            return Ok(Line::TooLong(line));
        }
    }
}

/// The program name as a `PathBuf`, for messages.
pub(crate) fn program_of(command: &std::process::Command) -> PathBuf {
    PathBuf::from(command.get_program())
}

/// The caller's explicit variables of a command (removals are ignored: the
/// environment is rebuilt from scratch).
pub(crate) fn caller_env(command: &std::process::Command) -> Vec<(OsString, OsString)> {
    command
        .get_envs()
        .filter_map(|(k, v)| v.map(|v| (k.to_os_string(), v.to_os_string())))
        .collect()
}

/// `OsString` pairs from string pairs.
pub(crate) fn os_pair(key: &str, value: impl AsRef<OsStr>) -> (OsString, OsString) {
    (OsString::from(key), value.as_ref().to_os_string())
}

/// The first bytes of a program file: enough for `#!` and the ELF header
/// fields the kernel checks.
fn program_header(path: &std::path::Path) -> Option<(std::fs::Metadata, Vec<u8>)> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).ok()?;
    let meta = file.metadata().ok()?;
    let mut header = Vec::with_capacity(64);
    file.take(64).read_to_end(&mut header).ok()?;
    Some((meta, header))
}

/// The ELF machine (`e_machine`) of a header, if it is an ELF header.
fn elf_machine(header: &[u8]) -> Option<u16> {
    if header.len() < 20 || !header.starts_with(b"\x7fELF") {
        return None;
    }
    let bytes = [header[18], header[19]];
    Some(match header[5] {
        2 => u16::from_be_bytes(bytes),
        _ => u16::from_le_bytes(bytes),
    })
}

/// `e_machine` values this host's kernel runs natively (a 64-bit kernel
/// also runs its 32-bit sibling's binaries).
fn native_machines() -> &'static [u16] {
    match std::env::consts::ARCH {
        "x86_64" => &[62, 3],
        "x86" => &[3],
        "aarch64" => &[183, 40],
        "arm" => &[40],
        "riscv64" | "riscv32" => &[243],
        "powerpc64" | "powerpc" => &[21, 20],
        "s390x" => &[22],
        "loongarch64" => &[258],
        _ => &[],
    }
}

fn machine_name(machine: u16) -> String {
    match machine {
        3 => "x86".to_owned(),
        20 => "powerpc".to_owned(),
        21 => "powerpc64".to_owned(),
        22 => "s390x".to_owned(),
        40 => "arm".to_owned(),
        62 => "x86_64".to_owned(),
        183 => "aarch64".to_owned(),
        243 => "riscv".to_owned(),
        258 => "loongarch64".to_owned(),
        other => format!("machine {other}"),
    }
}

/// Whether binfmt_misc handlers are registered: they can make the kernel
/// run any format (qemu for foreign ELF binaries, interpreters by magic).
fn binfmt_misc_in_use() -> bool {
    std::fs::read_dir("/proc/sys/fs/binfmt_misc").is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|entry| !matches!(entry.file_name().to_str(), Some("register" | "status")))
    })
}

/// Whether the kernel would refuse to execute `program` (ENOEXEC): an
/// executable file that is neither a `#!` script nor an ELF binary for
/// this machine, with no binfmt_misc handler that could take it.
pub(crate) fn kernel_refuses(program: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    let Some(path) = super::program::resolve_program(program.as_os_str()) else {
        return false;
    };
    let Some((meta, header)) = program_header(&path) else {
        return false;
    };
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 || header.starts_with(b"#!") {
        return false;
    }
    let foreign = elf_machine(&header).is_none_or(|machine| {
        !native_machines().is_empty() && !native_machines().contains(&machine)
    });
    foreign && !binfmt_misc_in_use()
}

/// What the file at `program` is, when that explains why it could not be
/// started; empty otherwise. Starts with `; `.
pub(crate) fn spawn_diagnosis(program: &std::path::Path, error: &io::Error) -> String {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let Some(path) = super::program::resolve_program(program.as_os_str()) else {
        return String::new();
    };
    let Some((meta, header)) = program_header(&path) else {
        return String::new();
    };
    if meta.is_dir() {
        return "; it is a directory".to_owned();
    }
    let mode = meta.permissions().mode() & 0o7777;
    if error.kind() == io::ErrorKind::PermissionDenied {
        let why = if mode & 0o111 == 0 {
            "not executable (chmod +x)"
        } else {
            "executable, so the file system may be mounted noexec, or a directory on the path is not searchable"
        };
        return format!(
            "; mode {mode:04o}, owner uid {} gid {}: {why}",
            meta.uid(),
            meta.gid()
        );
    }
    if error.kind() == io::ErrorKind::NotFound {
        let interpreter = header.strip_prefix(b"#!").and_then(|line| {
            line.split(|b| b.is_ascii_whitespace())
                .find(|w| !w.is_empty())
        });
        return interpreter.map_or_else(String::new, |interpreter| {
            format!(
                "; the interpreter of its #! line, {}, was not found",
                String::from_utf8_lossy(interpreter)
            )
        });
    }
    if error.raw_os_error() != Some(rustix::io::Errno::NOEXEC.raw_os_error()) {
        return String::new();
    }
    match elf_machine(&header) {
        Some(machine) => format!(
            "; an ELF binary for {}, this host is {}",
            machine_name(machine),
            std::env::consts::ARCH
        ),
        None => format!(
            "; neither an ELF binary nor a script with a #! line (it starts with {:?})",
            String::from_utf8_lossy(&header[..header.len().min(16)])
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        items.iter().map(|(k, v)| os_pair(k, v)).collect()
    }

    #[test]
    fn env_order_is_caller_then_host_then_plugin() {
        let env = assemble_env(
            pairs(&[("A", "caller"), ("B", "caller"), ("C", "caller")]),
            Some(pairs(&[("B", "host"), ("PLUGIN_MIN_PORT", "1")])),
            pairs(&[("C", "plugin"), ("PLUGIN_MIN_PORT", "10000")]),
        );
        assert_eq!(
            env,
            pairs(&[
                ("A", "caller"),
                ("B", "host"),
                ("C", "plugin"),
                ("PLUGIN_MIN_PORT", "10000")
            ])
        );
        let skipped = assemble_env(pairs(&[("B", "caller")]), None::<Vec<_>>, pairs(&[]));
        assert_eq!(skipped, pairs(&[("B", "caller")]));
    }

    #[tokio::test]
    async fn read_line_caps_and_splits() {
        let cases: Vec<(&[u8], usize, Vec<Line>)> = vec![
            (
                b"1|1|unix|/s|grpc|\n",
                64,
                vec![
                    Line::Complete(b"1|1|unix|/s|grpc|".to_vec()),
                    Line::Eof(vec![]),
                ],
            ),
            (
                b"a\r\nb",
                64,
                vec![Line::Complete(b"a\r".to_vec()), Line::Eof(b"b".to_vec())],
            ),
            (
                b"abcdefgh\n",
                4,
                vec![
                    Line::TooLong(b"abcd".to_vec()),
                    Line::TooLong(b"efgh".to_vec()),
                    Line::Complete(vec![]),
                    Line::Eof(vec![]),
                ],
            ),
            (b"", 4, vec![Line::Eof(vec![])]),
        ];
        for (input, limit, want) in cases {
            // A 2-byte buffer exercises lines that span reads.
            let mut reader = BufReader::with_capacity(2, input);
            let mut got = Vec::new();
            loop {
                let line = read_line(&mut reader, limit).await.unwrap();
                let end = matches!(line, Line::Eof(_));
                got.push(line);
                if end {
                    break;
                }
            }
            assert_eq!(got, want, "input {input:?}");
        }
    }

    #[test]
    fn tail_keeps_the_last_lines_truncated() {
        let mut tail = Tail::default();
        for i in 0..30 {
            tail.push(format!("line {i}").as_bytes());
        }
        tail.push(&[b'x'; 2000]);
        let text = tail.snapshot().0;
        assert!(!text.contains("line 10\n"));
        assert!(text.contains("line 29"));
        assert_eq!(text.lines().count(), TAIL_LINES);
        assert_eq!(text.lines().last().unwrap().len(), TAIL_LINE_BYTES);
    }

    #[test]
    fn elf_machines_are_read_in_either_byte_order() {
        let mut header = b"\x7fELF\x02\x01\x01".to_vec();
        header.resize(20, 0);
        header[18] = 183;
        assert_eq!(elf_machine(&header), Some(183));
        header[5] = 2;
        header[18..20].copy_from_slice(&22u16.to_be_bytes());
        assert_eq!(elf_machine(&header), Some(22));
        assert_eq!(elf_machine(b"#!/bin/sh\n"), None);
    }

    #[test]
    fn only_files_the_kernel_cannot_run_are_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8], mode: u32| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            path
        };
        assert!(!kernel_refuses(&write("script", b"#!/bin/sh\n", 0o755)));
        assert!(!kernel_refuses(&write("data", b"text", 0o644)));
        assert!(!kernel_refuses(std::path::Path::new("sh")));
        if !binfmt_misc_in_use() {
            assert!(kernel_refuses(&write("text", b"text", 0o755)));
        }
    }
}

//! Helpers for goplug's end-to-end tests: the one test [`Harness`], the
//! test plugin binaries, the Go interop binaries, and what `/proc` says.

pub mod h2raw;
mod harness;
mod kv;
pub mod pki;
mod procfs;
pub mod spanfile;

pub use harness::{
    GRACE, Harness, TEST_ID, become_subreaper, eventually, eventually_async, prompt, scaled,
    settle, slack, step,
};
pub use kv::{get, kv, percentiles, put, put_get, within};
pub use procfs::{
    Descendant, cpu_time, descendants, describe, fd_count, leftovers, open_fds, status_kib, threads,
};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A binary of this crate (a test plugin, or the lifecycle host), found
/// next to the running test binary (`target/<profile>/deps/..`), where
/// cargo builds it for the crate's integration tests. Use it by reference:
/// `Command::new(&FAKE)`, `format!("exec {FAKE} kv")`.
#[derive(Debug)]
pub struct Bin {
    name: &'static str,
    path: OnceLock<PathBuf>,
}

impl Bin {
    const fn new(name: &'static str) -> Self {
        Self {
            name,
            path: OnceLock::new(),
        }
    }

    /// Its path.
    ///
    /// # Panics
    ///
    /// When the binary is not built.
    pub fn path(&self) -> &Path {
        self.path.get_or_init(|| {
            let exe = std::env::current_exe().expect("the test binary's path");
            let dirs = exe.ancestors().skip(1).take(2);
            dirs.map(|dir| dir.join(self.name))
                .find(|path| path.is_file())
                .unwrap_or_else(|| {
                    panic!(
                        "{} is not built next to {}: cargo builds it for goplug-test's tests",
                        self.name,
                        exe.display()
                    )
                })
        })
    }
}

impl std::fmt::Display for Bin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.path().display().fmt(f)
    }
}

impl AsRef<std::ffi::OsStr> for Bin {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.path().as_os_str()
    }
}

impl AsRef<Path> for Bin {
    fn as_ref(&self) -> &Path {
        self.path()
    }
}

/// The fake plugin (`src/bin/fake-plugin.rs`): KV modes and misbehaviour.
pub static FAKE: Bin = Bin::new("fake-plugin");
/// The fault plugin (`src/bin/fault-plugin.rs`): crashes and handshakes.
pub static FAULT: Bin = Bin::new("fault-plugin");
/// The noisy plugin (`src/bin/noisy-plugin.rs`): floods and load.
pub static NOISY: Bin = Bin::new("noisy-plugin");
/// The sandbox probe (`src/bin/sandbox-probe.rs`): the KV plugin whose
/// `probe:` keys try what a sandbox stops.
pub static SANDBOX_PROBE: Bin = Bin::new("sandbox-probe");
/// The lifecycle host (`src/bin/lifecycle-host.rs`): a host to kill.
pub static LIFECYCLE_HOST: Bin = Bin::new("lifecycle-host");
/// The example Terraform provider (`src/bin/tf-provider-goplug.rs`).
pub static TF_PROVIDER_GOPLUG: Bin = Bin::new("tf-provider-goplug");

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate lives in the repository")
        .to_path_buf()
}

/// Builds `interop/go` (go-plugin v1.8.0 hosts and plugins) once per test
/// process and returns the path of binary `name`. Panics with Go's output
/// when the build fails: interop is never optional.
pub fn go_bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let out = std::env::var_os("GOPLUG_INTEROP_BIN_DIR")
            .map_or_else(|| repo_root().join("target/interop-go"), PathBuf::from);
        std::fs::create_dir_all(&out).map_err(|e| format!("creating {}: {e}", out.display()))?;
        let output = Command::new("go")
            .args(["build", "-o"])
            .arg(&out)
            .arg("./cmd/...")
            .current_dir(repo_root().join("interop/go"))
            .output()
            .map_err(|e| format!("running `go build`: {e} (is Go installed?)"))?;
        if !output.status.success() {
            return Err(format!(
                "`go build ./cmd/...` in interop/go failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(out)
    });
    match dir {
        Ok(dir) => dir.join(name),
        Err(e) => panic!("{e}"),
    }
}

/// The Python interpreter for the Python interop plugin.
pub fn python() -> String {
    std::env::var("GOPLUG_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// The shell command that runs our Python KV plugin.
pub fn python_kv_plugin_command() -> String {
    format!(
        "{} {}",
        python(),
        repo_root().join("interop/python/kv_plugin.py").display()
    )
}

/// Waits until process `pid` no longer exists (not even as a zombie),
/// letting the runtime run (it reaps). Panics after `within`.
pub async fn process_gone(pid: u32, within: Duration) {
    let start = Instant::now();
    while Path::new(&format!("/proc/{pid}")).exists() && start.elapsed() < within {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_process_gone(pid, Duration::ZERO);
}

/// Waits until process `pid` no longer exists (not even as a zombie),
/// blocking this thread. Panics after `within`.
pub fn assert_process_gone(pid: u32, within: Duration) {
    let start = Instant::now();
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    loop {
        if !proc_dir.exists() {
            return;
        }
        if start.elapsed() > within {
            let stat = std::fs::read_to_string(proc_dir.join("stat")).unwrap_or_default();
            panic!("process {pid} still exists after {within:?}: {stat}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `signal` to process `pid`.
///
/// # Panics
///
/// When the process cannot be signalled.
pub fn signal(pid: u32, signal: nix::sys::signal::Signal) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("a pid"));
    nix::sys::signal::kill(pid, signal).expect("signal the process");
}

/// Reads a pid written by a plugin command (`echo $$ > file`).
pub fn read_pid(file: &Path) -> u32 {
    let start = Instant::now();
    loop {
        if let Some(pid) = std::fs::read_to_string(file)
            .ok()
            .and_then(|text| text.trim().parse().ok())
        {
            return pid;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no pid in {}",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The first line `stdout` carries, waiting at most `timeout` (on a thread
/// of its own, so a silent child cannot hang the test); `None` when nothing
/// came in time.
pub fn first_line(stdout: std::process::ChildStdout, timeout: Duration) -> Option<String> {
    use std::io::BufRead as _;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    rx.recv_timeout(timeout).ok()
}

/// Runs a command to completion with a timeout, returning its output.
/// Panics (after killing it) when it does not finish in time.
pub fn run_with_timeout(command: &mut Command, timeout: Duration) -> std::process::Output {
    run_with_input(command, None, timeout)
}

/// [`run_with_timeout`], with `input` (if any) on the command's stdin.
pub fn run_with_input(
    command: &mut Command,
    input: Option<&str>,
    timeout: Duration,
) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = command
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {command:?}: {e}"));
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(input.as_bytes()).expect("writing stdin");
    }
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(output) => output.expect("collecting output"),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            let output = rx.recv_timeout(Duration::from_secs(5));
            panic!("{command:?} did not finish within {timeout:?}: {output:?}");
        }
    }
}

/// A `tracing` layer that records the plugin log events a goplug host
/// re-emits (target `goplug::plugin` and below): level, message and
/// key/values.
#[derive(Clone, Debug)]
pub struct PluginLogs {
    events: std::sync::Arc<std::sync::Mutex<Vec<PluginEvent>>>,
    message_cap: usize,
}

/// One recorded plugin log event.
#[derive(Clone, Debug)]
pub struct PluginEvent {
    /// The event's level.
    pub level: tracing::Level,
    /// Its target (`goplug::plugin` or `goplug::plugin::<module>`).
    pub target: String,
    /// The message.
    pub message: String,
    /// The `module` field (the plugin's hclog `@module`).
    pub module: String,
    /// Every other field but `plugin`, by name, values as text.
    pub fields: Vec<(String, String)>,
}

impl PluginEvent {
    /// The field `name`, if the event has it as a field of its own.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The fields as `k=v k2=v2`.
    pub fn fields_text(&self) -> String {
        let pairs: Vec<String> = self
            .fields
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        pairs.join(" ")
    }
}

impl Default for PluginLogs {
    fn default() -> Self {
        Self::keeping_message_bytes(usize::MAX)
    }
}

impl PluginLogs {
    /// Records only the first `cap` bytes of each message, so a test can
    /// measure the host's memory under floods without the records growing it.
    pub fn keeping_message_bytes(cap: usize) -> Self {
        Self {
            events: std::sync::Arc::default(),
            message_cap: cap,
        }
    }

    /// The events so far: (level, message, `k=v` fields).
    pub fn events(&self) -> Vec<(tracing::Level, String, String)> {
        self.records()
            .into_iter()
            .map(|event| (event.level, event.fields_text(), event.message))
            .map(|(level, fields, message)| (level, message, fields))
            .collect()
    }

    /// The events so far, with every field.
    pub fn records(&self) -> Vec<PluginEvent> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// The first event with `message`.
    pub fn record(&self, message: &str) -> Option<PluginEvent> {
        self.records()
            .into_iter()
            .find(|event| event.message == message)
    }

    /// The `module` field (the plugin's hclog `@module`) of the first
    /// event with `message`.
    pub fn module_of(&self, message: &str) -> Option<String> {
        self.record(message).map(|event| event.module)
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for PluginLogs {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let target = event.metadata().target();
        if target != "goplug::plugin" && !target.starts_with("goplug::plugin::") {
            return;
        }
        #[derive(Default)]
        struct Fields {
            message: String,
            module: String,
            others: Vec<(String, String)>,
        }
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                match field.name() {
                    "message" => self.message = format!("{value:?}"),
                    "plugin" => {}
                    name => self.others.push((name.to_owned(), format!("{value:?}"))),
                }
            }
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                match field.name() {
                    "module" => value.clone_into(&mut self.module),
                    "message" => value.clone_into(&mut self.message),
                    "plugin" => {}
                    name => self.others.push((name.to_owned(), value.to_owned())),
                }
            }
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        if fields.message.len() > self.message_cap {
            let mut end = self.message_cap;
            while !fields.message.is_char_boundary(end) {
                end -= 1;
            }
            fields.message.truncate(end);
            fields.message.shrink_to_fit();
        }
        if let Ok(mut events) = self.events.lock() {
            events.push(PluginEvent {
                level: *event.metadata().level(),
                target: target.to_owned(),
                message: fields.message,
                module: fields.module,
                fields: fields.others,
            });
        }
    }
}

/// Runs go-plugin's host (`interop/go`'s `probe-host`) against the plugin
/// command `plugin` (run with `sh -c`) in `dir`, and returns its JSON report.
///
/// `dir` is its `TMPDIR` too: go-plugin's host gives a plugin no socket
/// directory, so the plugin's socket lands there, and stays there when the
/// host kills the plugin (a refused handshake) or the plugin is a Go one
/// with a multiplexed broker (go-plugin never removes that socket). The
/// caller removes `dir`.
pub fn probe_host(plugin: &str, flags: &[&str], dir: &Path) -> serde_json::Value {
    let output = run_with_timeout(
        Command::new(go_bin("probe-host"))
            .arg("-cmd")
            .arg(plugin)
            .args(flags)
            .current_dir(dir)
            .env("TMPDIR", dir),
        Duration::from_secs(60),
    );
    assert!(output.status.success(), "probe-host failed: {output:?}");
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("probe-host printed no JSON ({e}): {output:?}"))
}

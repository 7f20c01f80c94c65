//! The reliability suite's plugin (`research/reliability.md` §5, series C
//! and E): an in-memory KV service (the KV example's protocol) whose
//! handlers count how many of them run at once, and actions that flood or
//! abuse stdout and stderr, started by the host through the KV itself:
//!
//! - `Get("start:<action>:<arg>")` starts `<action>` on a thread of its own
//!   and answers at once (for `synced-exit`, with the hex SHA-256 of the
//!   bytes it is about to write); `Get("done:<action>")` then answers the
//!   milliseconds its write loop took, or `NotFound` while it runs.
//! - `Get("stats:max-in-flight")`: the most handlers that ever ran at once.
//! - Other keys: `Put` stores, `Get` returns (`NotFound` when absent).
//!
//! Actions: `stderr-long-line` (10 MiB without a newline, then three hclog
//! JSON lines), `stderr-flood:<bytes>` (short lines), `stdout-raw:<bytes>`
//! and `stdout-synced:<bytes>` (a 1 MiB line, then `<bytes>` more, to the
//! real stdout kept from before the handshake, or to the synced fd 1),
//! `hostile` (log lines no parser should trust, then an hclog `hostile-done`
//! at warn), `synced-exit` (1 MiB of pseudo-random bytes to the synced
//! stdout, then a clean exit).
//!
//! Environment: `NOISY_HANDLER_MS` makes every KV handler sleep that long
//! (to make calls overlap); `NOISY_LOG_EVERY_MS` logs an hclog JSON line
//! to stderr that often, for the whole life of the plugin.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use goplug::plugin::{ServeConfig, Services};
use goplug_example_kv::{HANDSHAKE, pb};
use tokio::sync::Notify;
use tonic::{Request, Response, Status};

fn main() -> ExitCode {
    let raw_stdout = match keep_real_stdout() {
        Ok(file) => file,
        Err(e) => {
            eprintln!("noisy-plugin: dup of stdout: {e}");
            return ExitCode::FAILURE;
        }
    };
    let handler_delay = env_millis("NOISY_HANDLER_MS");
    if let Some(every) = env_millis("NOISY_LOG_EVERY_MS") {
        std::thread::spawn(move || log_forever(every));
    }
    let exit = Arc::new(Notify::new());
    let kv = NoisyKv {
        shared: Arc::new(Shared {
            values: Mutex::new(HashMap::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            raw_stdout: Mutex::new(raw_stdout),
            exit: exit.clone(),
        }),
        handler_delay,
    };
    let config = ServeConfig::new(HANDSHAKE)
        .plugins(Services::new().grpc("kv", pb::kv_server::KvServer::new(kv)))
        .with_graceful_shutdown(async move { exit.notified().await });
    goplug::plugin::run(config)
}

/// A copy of fd 1 made before the plugin library points fd 1 at its
/// synced-stdout pipe: writes to it reach the host's raw stdout pipe.
#[expect(
    clippy::disallowed_methods,
    reason = "keeps stdout, writes nothing yet"
)]
fn keep_real_stdout() -> std::io::Result<File> {
    let stdout = std::io::stdout();
    Ok(File::from(
        std::os::fd::AsFd::as_fd(&stdout).try_clone_to_owned()?,
    ))
}

fn env_millis(name: &str) -> Option<Duration> {
    let millis: u64 = std::env::var(name).ok()?.parse().ok()?;
    Some(Duration::from_millis(millis))
}

struct Shared {
    values: Mutex<HashMap<String, Vec<u8>>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    raw_stdout: Mutex<File>,
    /// Notified (once) to make the plugin stop serving and exit normally.
    exit: Arc<Notify>,
}

impl Shared {
    fn store(&self, key: String, value: Vec<u8>) {
        if let Ok(mut values) = self.values.lock() {
            values.insert(key, value);
        }
    }

    fn load(&self, key: &str) -> Option<Vec<u8>> {
        self.values.lock().ok()?.get(key).cloned()
    }
}

struct NoisyKv {
    shared: Arc<Shared>,
    handler_delay: Option<Duration>,
}

/// Counts a handler in, and out when dropped.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        Self(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl NoisyKv {
    async fn handle<T>(
        &self,
        work: impl FnOnce(&Arc<Shared>) -> Result<T, Status>,
    ) -> Result<T, Status> {
        let _counted = InFlight::enter(&self.shared);
        if let Some(delay) = self.handler_delay {
            tokio::time::sleep(delay).await;
        }
        work(&self.shared)
    }
}

#[tonic::async_trait]
impl pb::kv_server::Kv for NoisyKv {
    async fn get(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::GetResponse>, Status> {
        let key = request.into_inner().key;
        if key == "stats:max-in-flight" {
            let max = self.shared.max_in_flight.load(Ordering::SeqCst);
            return Ok(Response::new(pb::GetResponse {
                value: max.to_string().into_bytes(),
            }));
        }
        let value = self
            .handle(|shared| {
                if let Some(command) = key.strip_prefix("start:") {
                    return start(shared, command);
                }
                shared
                    .load(&key)
                    .ok_or_else(|| Status::not_found(key.clone()))
            })
            .await?;
        Ok(Response::new(pb::GetResponse { value }))
    }

    async fn put(&self, request: Request<pb::PutRequest>) -> Result<Response<pb::Empty>, Status> {
        let request = request.into_inner();
        self.handle(|shared| {
            shared.store(request.key, request.value);
            Ok(())
        })
        .await?;
        Ok(Response::new(pb::Empty {}))
    }
}

/// A write loop an action runs on its own thread.
type Job = Box<dyn FnOnce(&Shared) -> std::io::Result<()> + Send>;

/// Starts `action[:arg]` on a thread and returns the action's reply;
/// `done:<action>` is recorded when its write loop ends.
fn start(shared: &Arc<Shared>, command: &str) -> Result<Vec<u8>, Status> {
    let (action, arg) = command.split_once(':').unwrap_or((command, ""));
    let bytes = || {
        arg.parse::<usize>()
            .map_err(|_| Status::invalid_argument(format!("{action}: a byte count, not {arg:?}")))
    };
    let mut reply = Vec::new();
    let job: Job = match action {
        "stderr-long-line" => Box::new(|_| stderr_long_line()),
        "stderr-flood" => {
            let bytes = bytes()?;
            Box::new(move |_| stderr_flood(bytes))
        }
        "stdout-raw" => {
            let bytes = bytes()?;
            Box::new(move |shared| {
                let mut raw = shared
                    .raw_stdout
                    .lock()
                    .map_err(|_| std::io::Error::other("raw stdout lock poisoned"))?;
                long_line_then(&mut *raw, bytes)
            })
        }
        "stdout-synced" => {
            let bytes = bytes()?;
            Box::new(move |_| long_line_then(&mut synced_stdout(), bytes))
        }
        "hostile" => Box::new(|_| hostile()),
        "synced-exit" => {
            let data = pseudo_random(1 << 20);
            reply = goplug::host::Checksum::of_bytes(&data)
                .to_string()
                .into_bytes();
            Box::new(move |shared| {
                let mut stdout = synced_stdout();
                stdout.write_all(&data)?;
                stdout.flush()?;
                shared.exit.notify_one();
                Ok(())
            })
        }
        other => {
            return Err(Status::invalid_argument(format!(
                "unknown action {other:?}"
            )));
        }
    };
    let shared = shared.clone();
    let action = action.to_owned();
    std::thread::spawn(move || {
        let started = Instant::now();
        let outcome = match job(&shared) {
            Ok(()) => started.elapsed().as_millis().to_string(),
            Err(e) => format!("failed: {e}"),
        };
        shared.store(format!("done:{action}"), outcome.into_bytes());
    });
    Ok(reply)
}

/// fd 1 once the handshake is out: the pipe the host receives through
/// `GRPCStdio`.
#[expect(
    clippy::disallowed_methods,
    reason = "writing the synced stdout is the point"
)]
fn synced_stdout() -> std::io::StdoutLock<'static> {
    std::io::stdout().lock()
}

/// hclog's JSON line format.
fn hclog(level: &str, message: &str) -> String {
    format!("{{\"@level\":\"{level}\",\"@message\":\"{message}\",\"@module\":\"noisy\"}}\n")
}

fn stderr_long_line() -> std::io::Result<()> {
    let mut stderr = std::io::stderr().lock();
    let chunk = [b'a'; 64 * 1024];
    for _ in 0..160 {
        stderr.write_all(&chunk)?;
    }
    stderr.write_all(b"\n")?;
    for (level, message) in [
        ("info", "json one"),
        ("warn", "json two"),
        ("error", "json three"),
    ] {
        stderr.write_all(hclog(level, message).as_bytes())?;
    }
    stderr.flush()
}

/// `bytes` of 100-byte text lines.
fn stderr_flood(bytes: usize) -> std::io::Result<()> {
    let mut stderr = std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr().lock());
    let mut line = Vec::with_capacity(100);
    for n in 0..bytes / 100 {
        line.clear();
        write!(line, "flood line {n:>12} ")?;
        line.resize(99, b'.');
        line.push(b'\n');
        stderr.write_all(&line)?;
    }
    stderr.flush()
}

/// A 1 MiB line, then `bytes` more in 1 KiB lines.
fn long_line_then(out: &mut impl Write, bytes: usize) -> std::io::Result<()> {
    let mut long = vec![b'x'; 1 << 20];
    long.push(b'\n');
    out.write_all(&long)?;
    let line = [b"y".repeat(1023), b"\n".to_vec()].concat();
    for _ in 0..bytes / line.len() {
        out.write_all(&line)?;
    }
    out.flush()
}

/// Log lines a host must survive, then a marker that they were all read.
fn hostile() -> std::io::Result<()> {
    let mut stderr = std::io::stderr().lock();
    stderr.write_all(b"invalid utf-8 \xff\xfe\xc3( here\n")?;
    stderr.write_all(b"a NUL \0 inside\n")?;
    stderr.write_all(b"\x1b[31mred\x1b[0m \x1b]0;title\x07 \x1b[2J\n")?;
    let depth = 100_000;
    let mut deep = b"{\"@level\":\"error\",\"@message\":\"deep\",\"x\":".to_vec();
    deep.extend(std::iter::repeat_n(b'[', depth));
    deep.extend(std::iter::repeat_n(b']', depth));
    deep.extend_from_slice(b"}\n");
    stderr.write_all(&deep)?;
    stderr.write_all(b"{\"@level\": 7}\n")?;
    stderr.write_all(b"{\"@level\": 7, \"@message\": \"level seven\"}\n")?;
    stderr.write_all(hclog("warn", "hostile-done").as_bytes())?;
    stderr.flush()
}

/// Bytes with no pattern a lost or repeated chunk could hide in.
fn pseudo_random(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// An hclog JSON line on stderr every `every`, with a counter.
fn log_forever(every: Duration) {
    for n in 0u64.. {
        let line = format!(
            "{{\"@level\":\"info\",\"@message\":\"tick\",\"@module\":\"noisy\",\"n\":{n}}}\n"
        );
        if std::io::stderr().write_all(line.as_bytes()).is_err() {
            return;
        }
        std::thread::sleep(every);
    }
}

//! A goplug plugin that fails on request, for the reliability suite
//! (`research/reliability.md` §5). It serves the KV example's service,
//! in memory, where `Get` of some keys is a fault:
//!
//! - `block`: never answers (the count of such calls is `Get("blocked")`);
//! - `abort`, `segv`, `exit`: the process aborts, takes a SIGSEGV, or exits 0;
//! - `panic`: the main thread panics (as an `unwrap` in `main` would).
//!
//! The first argument picks how it starts:
//!
//! - `serve`: as any goplug plugin.
//! - `hold-pipes`: first starts `sleep 1000`, which inherits stdout and
//!   stderr, so the pipes stay open after the plugin is gone.
//! - `slow-handshake`: the handshake line goes out one byte every 10 ms.
//! - `padded-handshake`: the handshake line goes out with spaces around
//!   it and a CRLF, as go-plugin's host accepts.
//!
//! The last two run `serve` as a child and relay its stdout.
#![allow(clippy::print_stdout, clippy::disallowed_methods)] // relaying the handshake by hand is the point of some modes

use std::collections::HashMap;
use std::io::{BufRead, Read, Write};
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use goplug::plugin::{ServeConfig, Services};
use goplug_example_kv::{HANDSHAKE, pb};
use tonic::{Request, Response, Status};

fn main() -> ExitCode {
    let mode = std::env::args().nth(1);
    match mode.as_deref() {
        Some("serve") => serve(),
        Some("hold-pipes") => {
            // Inherits stdout and stderr: the pipes outlive the plugin.
            if let Err(e) = std::process::Command::new("sleep").arg("1000").spawn() {
                eprintln!("fault-plugin: could not start sleep: {e}");
                return ExitCode::FAILURE;
            }
            serve()
        }
        Some("slow-handshake") => relay(|line| {
            let mut stdout = std::io::stdout().lock();
            for byte in line.bytes() {
                stdout.write_all(&[byte])?;
                stdout.flush()?;
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(())
        }),
        Some("padded-handshake") => relay(|line| {
            let mut stdout = std::io::stdout().lock();
            write!(stdout, "  {}  \r\n", line.trim_end())?;
            stdout.flush()
        }),
        other => {
            eprintln!("fault-plugin: unknown mode {other:?}");
            ExitCode::from(2)
        }
    }
}

/// What the main thread does next.
enum Fate {
    /// The plugin stopped serving with this code.
    Exit(ExitCode),
    /// A handler asked for a panic on the main thread.
    Panic,
}

/// Serves on another thread, so that a handler can make the main thread
/// panic: a panic in a handler would only fail that call.
fn serve() -> ExitCode {
    let (fate, next) = mpsc::channel();
    let service = FaultKv {
        values: Arc::default(),
        blocked: Arc::default(),
        fate: fate.clone(),
    };
    let config = ServeConfig::new(HANDSHAKE)
        .file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .plugins(Services::new().grpc("kv", pb::kv_server::KvServer::new(service)));
    std::thread::spawn(move || {
        let _ = fate.send(Fate::Exit(goplug::plugin::run(config)));
    });
    match next.recv() {
        Ok(Fate::Exit(code)) => code,
        Ok(Fate::Panic) => panic!("fault-plugin: the panic that was asked for"),
        Err(_) => ExitCode::FAILURE,
    }
}

/// Runs `serve` as a child and relays its output, the handshake line
/// through `send_line`; exits with the child.
fn relay(send_line: impl FnOnce(&str) -> std::io::Result<()>) -> ExitCode {
    let Ok(me) = std::env::current_exe() else {
        return ExitCode::FAILURE;
    };
    let mut child = match std::process::Command::new(me)
        .arg("serve")
        .stdout(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            eprintln!("fault-plugin: could not start the server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(stdout) = child.stdout.take() else {
        return ExitCode::FAILURE;
    };
    let mut stdout = std::io::BufReader::new(stdout);
    let mut line = String::new();
    if stdout.read_line(&mut line).is_err() || send_line(&line).is_err() {
        let _ = child.kill();
        let _ = child.wait();
        return ExitCode::FAILURE;
    }
    std::thread::spawn(move || {
        let mut rest = Vec::new();
        while stdout.read_to_end(&mut rest).is_ok_and(|n| n > 0) {
            let _ = std::io::stdout().write_all(&rest);
            rest.clear();
        }
    });
    match child.wait() {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

/// The KV service, in memory, with faults on request.
#[derive(Debug)]
struct FaultKv {
    values: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    blocked: Arc<AtomicUsize>,
    fate: mpsc::Sender<Fate>,
}

/// Counts a blocked call for as long as it is pending.
struct Blocked(Arc<AtomicUsize>);

impl Drop for Blocked {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[tonic::async_trait]
impl pb::kv_server::Kv for FaultKv {
    async fn get(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::GetResponse>, Status> {
        let key = request.into_inner().key;
        match key.as_str() {
            "block" => {
                self.blocked.fetch_add(1, Ordering::SeqCst);
                let _counted = Blocked(self.blocked.clone());
                std::future::pending::<()>().await;
            }
            "blocked" => {
                let count = self.blocked.load(Ordering::SeqCst).to_string();
                return Ok(Response::new(pb::GetResponse {
                    value: count.into_bytes(),
                }));
            }
            "abort" => std::process::abort(),
            "exit" => std::process::exit(0),
            "segv" => {
                // Rust's runtime handles the first SIGSEGV (it looks for a
                // stack overflow), restores the default action and returns;
                // the second one kills.
                let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSEGV);
                let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSEGV);
            }
            "panic" => {
                let _ = self.fate.send(Fate::Panic);
                std::future::pending::<()>().await;
            }
            _ => {}
        }
        let values = self
            .values
            .lock()
            .map_err(|_| Status::internal("poisoned"))?;
        values.get(&key).map_or_else(
            || Err(Status::not_found(format!("no key {key:?}"))),
            |value| {
                Ok(Response::new(pb::GetResponse {
                    value: value.clone(),
                }))
            },
        )
    }

    async fn put(&self, request: Request<pb::PutRequest>) -> Result<Response<pb::Empty>, Status> {
        let request = request.into_inner();
        self.values
            .lock()
            .map_err(|_| Status::internal("poisoned"))?
            .insert(request.key, request.value);
        Ok(Response::new(pb::Empty {}))
    }
}

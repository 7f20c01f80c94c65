//! The KV plugin (files `kv_<key>` in its working directory) whose `Get`
//! of a key `probe:<action> <argument>` tries something a sandbox should
//! stop and answers `ok:<detail>` or `err:<ERRNO>`, the same probes as
//! `interop/go/cmd/probe-plugin` (see its `sandbox.go`):
//!
//! - `read PATH`, `write PATH` (creates PATH), `connect HOST:PORT`,
//!   `exec PATH` (runs `PATH -c true`), `ptrace PID`, `signal PID`
//!   (signal 0), `abstract NAME` (connects to an abstract Unix socket),
//!   `env NAME`;
//! - `memory`: reserves address space 64 MiB at a time, never touched,
//!   up to 16 GiB; a limit makes the allocation fail, which aborts;
//! - `threads`: starts parked threads until one cannot start (at most
//!   4096), and answers how many;
//! - `burn`: spins until a CPU time limit ends the process.
#![allow(clippy::print_stdout)]

use std::process::ExitCode;

use goplug::plugin::{ServeConfig, Services};
use goplug_example_kv::{FileKv, HANDSHAKE, pb};
use tonic::{Request, Response, Status};

struct ProbeKv(FileKv);

#[tonic::async_trait]
impl pb::kv_server::Kv for ProbeKv {
    async fn get(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::GetResponse>, Status> {
        let key = request.into_inner().key;
        let value = match key.strip_prefix("probe:") {
            Some(probe) => {
                let probe = probe.to_owned();
                tokio::task::spawn_blocking(move || run(&probe))
                    .await
                    .map_err(|e| Status::internal(e.to_string()))?
                    .into_bytes()
            }
            None => self.0.read(&key).await?,
        };
        Ok(Response::new(pb::GetResponse { value }))
    }

    async fn put(&self, request: Request<pb::PutRequest>) -> Result<Response<pb::Empty>, Status> {
        let request = request.into_inner();
        self.0.write(&request.key, &request.value).await?;
        Ok(Response::new(pb::Empty {}))
    }
}

fn run(probe: &str) -> String {
    let (action, argument) = probe.split_once(' ').unwrap_or((probe, ""));
    let outcome = match action {
        "read" => std::fs::read_to_string(argument).map(|text| text.trim().to_owned()),
        "write" => std::fs::write(argument, "written by the probe").map(|()| String::new()),
        "connect" => argument
            .parse::<std::net::SocketAddr>()
            .map_err(std::io::Error::other)
            .and_then(|address| {
                std::net::TcpStream::connect_timeout(&address, std::time::Duration::from_secs(10))
            })
            .map(|_| String::new()),
        "exec" => std::process::Command::new(argument)
            .args(["-c", "true"])
            .status()
            .map(|status| status.to_string()),
        "ptrace" => ptrace(argument),
        "signal" => argument
            .parse::<i32>()
            .map_err(std::io::Error::other)
            .and_then(|pid| {
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
                    .map_err(std::io::Error::from)
            })
            .map(|()| String::new()),
        "abstract" => {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(argument)
                .and_then(|address| std::os::unix::net::UnixStream::connect_addr(&address))
                .map(|_| String::new())
        }
        "env" => Ok(std::env::var(argument).unwrap_or_default()),
        "memory" => memory(),
        "threads" => threads(),
        "burn" => burn(),
        other => Err(std::io::Error::other(format!("unknown probe {other:?}"))),
    };
    match outcome {
        Ok(detail) => format!("ok:{detail}"),
        Err(e) => format!("err:{}", errno_name(&e)),
    }
}

fn errno_name(error: &std::io::Error) -> String {
    match error.raw_os_error() {
        Some(code) => format!("{:?}", nix::errno::Errno::from_raw(code)),
        None => error.to_string(),
    }
}

fn ptrace(pid: &str) -> std::io::Result<String> {
    let pid = pid.parse::<i32>().map_err(std::io::Error::other)?;
    let pid = nix::unistd::Pid::from_raw(pid);
    nix::sys::ptrace::attach(pid)?;
    let _ = nix::sys::ptrace::detach(pid, None);
    Ok(String::new())
}

fn memory() -> std::io::Result<String> {
    const CHUNK: usize = 64 << 20;
    let mut held: Vec<Vec<u8>> = Vec::new();
    for _ in 0..256 {
        held.push(std::hint::black_box(Vec::with_capacity(CHUNK)));
    }
    Ok(format!("reserved {} MiB with no limit", held.len() * 64))
}

fn threads() -> std::io::Result<String> {
    let mut started = 0;
    while started < 4096 {
        let spawned = std::thread::Builder::new().stack_size(64 * 1024).spawn(|| {
            loop {
                std::thread::park();
            }
        });
        match spawned {
            Ok(_) => started += 1,
            Err(e) => return Err(e),
        }
    }
    Ok(format!("started {started} threads with no limit"))
}

fn burn() -> std::io::Result<String> {
    let mut x: u64 = 0;
    loop {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}

fn main() -> ExitCode {
    let config = ServeConfig::new(HANDSHAKE)
        .file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .plugins(Services::new().grpc(
            "kv",
            pb::kv_server::KvServer::new(ProbeKv(FileKv::new("sandbox-probe"))),
        ));
    goplug::log::init();
    goplug::plugin::run(config)
}

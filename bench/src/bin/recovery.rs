//! Time from a supervised plugin's crash (SIGKILL) to the next successful
//! call through its supervised channel: kills the plugin `--kills` times
//! (20 by default), each time timing a call made at once, which waits for
//! the restart. The restart backoff is `--backoff-ms` (0 by default: the
//! figure is the supervisor's own cost, noticing the exit and starting
//! the plugin again, not a policy's wait). Prints one JSON line:
//! `{"plugin":...,"kills":N,"backoff_ms":B,"p50_ms":...,"p99_ms":...,"max_ms":...}`.
//! Usage: recovery --plugin PATH [--kills N] [--backoff-ms B]
//! (a go-plugin KV gRPC plugin, `kv` in the plugin set, go-plugin's KV
//! handshake: `kv-rust-grpc` or interop's `kv-plugin-go-grpc`).

#![allow(clippy::print_stdout)] // a command-line tool's report

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use goplug::host::supervisor::{RestartPolicy, Supervisor};
use goplug::host::{Channel, Client, GrpcPlugin, PluginSet};
use goplug_example_kv::HANDSHAKE;
use goplug_example_kv::pb::{self, kv_client::KvClient};

const KV: GrpcPlugin<KvClient<Channel>> = GrpcPlugin::new("kv");
const BOUND: Duration = Duration::from_secs(30);

struct Args {
    plugin: PathBuf,
    kills: usize,
    backoff: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut plugin, mut kills, mut backoff) = (None, 20, Duration::ZERO);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--plugin" => plugin = Some(PathBuf::from(value()?)),
            "--kills" => kills = value()?.parse().map_err(|e| format!("--kills: {e}"))?,
            "--backoff-ms" => {
                let ms = value()?.parse().map_err(|e| format!("--backoff-ms: {e}"))?;
                backoff = Duration::from_millis(ms);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let plugin = plugin.ok_or("--plugin PATH is required")?;
    // The plugin runs in a scratch directory.
    let plugin = std::fs::canonicalize(&plugin)
        .map_err(|e| format!("--plugin {}: {e}", plugin.display()))?;
    Ok(Args {
        plugin,
        kills: kills.max(1),
        backoff,
    })
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

async fn run(args: Args) -> Result<Vec<Duration>, String> {
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let recipe = {
        let (plugin, work) = (args.plugin.clone(), work.path().to_owned());
        move || {
            let mut command = std::process::Command::new(&plugin);
            command.current_dir(&work);
            Client::builder(HANDSHAKE)
                .plugins(PluginSet::new().plugin(KV))
                .command(command)
        }
    };
    // Every kill is a failure: the circuit must not open within the run.
    let policy = RestartPolicy::default()
        .initial_backoff(args.backoff)
        .max_backoff(args.backoff)
        .jitter(0.0)
        .circuit(args.kills + 1, Duration::from_secs(1));
    let supervisor = Supervisor::new();
    let kv = supervisor.supervise("kv", policy, recipe);
    kv.wait_serving(BOUND).await.map_err(|e| e.to_string())?;
    let mut client = kv.dispense(KV).map_err(|e| e.to_string())?;
    let get = pb::GetRequest { key: "k".into() };
    client
        .put(pb::PutRequest {
            key: "k".into(),
            value: b"v".to_vec(),
        })
        .await
        .map_err(|e| e.to_string())?;
    let mut times = Vec::with_capacity(args.kills);
    for _ in 0..args.kills {
        let pid = kv.status().pid.ok_or("a serving plugin without a pid")?;
        let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).map_err(|e| e.to_string())?);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL)
            .map_err(|e| e.to_string())?;
        let killed = Instant::now();
        // Calls until one succeeds: the first may still reach the dying
        // process and fail; later ones wait for the restart.
        loop {
            let call = tokio::time::timeout(BOUND, client.get(get.clone())).await;
            match call {
                Ok(Ok(_)) => break,
                Ok(Err(_)) if killed.elapsed() < BOUND => {}
                Ok(Err(status)) => return Err(format!("no recovery within {BOUND:?}: {status}")),
                Err(_) => return Err(format!("a call hung past {BOUND:?}")),
            }
        }
        times.push(killed.elapsed());
    }
    supervisor.shutdown(BOUND).await;
    Ok(times)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("recovery: {error}");
            return ExitCode::from(2);
        }
    };
    let plugin = args.plugin.display().to_string();
    let (kills, backoff) = (args.kills, args.backoff);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(args)) {
        Ok(mut times) => {
            times.sort();
            let ms = |d: Duration| (d.as_secs_f64() * 1e5).round() / 100.0;
            let line = serde_json::json!({
                "plugin": plugin,
                "kills": kills,
                "backoff_ms": backoff.as_millis() as u64,
                "p50_ms": ms(percentile(&times, 0.5)),
                "p99_ms": ms(percentile(&times, 0.99)),
                "max_ms": ms(times[times.len() - 1]),
            });
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("recovery: {error}");
            ExitCode::FAILURE
        }
    }
}

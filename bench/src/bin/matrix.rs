//! The benchmark matrix: every host/plugin pairing of goplug and go-plugin
//! v1.8 (Go/Go, Go host/Rust plugin, Rust host/Go plugin, Rust/Rust) under
//! every workload of the `bench-host` programs, over gRPC and net/rpc, plus
//! the floor of the machine (raw Unix-socket ping-pong, blocking and
//! spinning; spawn+wait of a trivial binary). Writes a Markdown section with
//! ratios to Go/Go and the targets.
//!
//! Run through `scripts/bench.sh`:
//! `matrix --go-bin-dir DIR --rust-bin-dir target/release [--quick] [--only LABEL]... [--protocol grpc|netrpc] [--startup FILE] --out FILE`
#![allow(clippy::print_stdout)] // a command-line tool's report

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Duration;

use goplug_bench::floor::{self, Wait, median_floor, spawn_floor, unix_floor};
use goplug_bench::percentile;
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
    /// Only this protocol's tables (`--protocol grpc`); none: both.
    protocol: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut go, mut rust, mut quick, mut startup, mut out) = (None, None, false, None, None);
    let mut rust_plugins = None;
    let mut only = Vec::new();
    let mut protocol = None;
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
            "--protocol" => match value()?.as_str() {
                p @ ("grpc" | "netrpc") => protocol = Some(p.to_owned()),
                other => return Err(format!("--protocol: {other:?} is not grpc or netrpc")),
            },
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
        protocol,
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
    let mut command = Command::new(host_dir.join("bench-host"));
    if flags.iter().any(|f| f == "-direct") {
        // The plugin is run without a shell and inherits the host's
        // environment (both hosts pass theirs on, as go-plugin does).
        command
            .arg("-cmd")
            .arg(&plugin)
            .env("BENCH_PROTOCOL", protocol)
            .env("BENCH_RUNTIME", runtime);
    } else {
        command.arg("-cmd").arg(format!(
            "BENCH_PROTOCOL={protocol} BENCH_RUNTIME={runtime} exec '{}'",
            plugin.display()
        ));
    }
    command.args(["-protocol", protocol]).args(flags);
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

/// The row of the `session` workload: what Terraform does with a provider
/// in one command, the plugin run directly as Terraform runs providers.
const SESSION_ROW: &str = "Terraform-like session (launch, 20 calls, shutdown)";

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
            label: "session",
            flags: flags(&[
                "-workload",
                "session",
                "-direct",
                "-sessions",
                &n(50, 5),
                "-iterations",
                "20",
            ]),
            grpc_only: false,
            rows: &[
                (SESSION_ROW, "session_p50_ms", "ms", false),
                ("  session p90", "session_p90_ms", "ms", false),
                (
                    "  sessions with an error",
                    "session_errors",
                    "sessions",
                    false,
                ),
            ],
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

/// The bound of a target.
#[derive(Clone, Copy)]
enum Bound {
    AtMost(f64),
    AtLeast(f64),
}

/// A target of the issue: a figure of this run and its bound.
struct Target {
    what: String,
    value: Option<f64>,
    bound: Bound,
    /// `×` for a ratio, ` ms` for a difference of times.
    unit: &'static str,
}

impl Target {
    fn ratio(what: &str, value: Option<f64>, bound: Bound) -> Self {
        Self {
            what: what.to_owned(),
            value,
            bound,
            unit: "×",
        }
    }

    fn line(&self) -> String {
        let (op, bound, met) = match self.bound {
            Bound::AtMost(b) => ("≤", b, self.value.map(|v| v <= b)),
            Bound::AtLeast(b) => ("≥", b, self.value.map(|v| v >= b)),
        };
        let unit = self.unit;
        let verdict = match (self.value, met) {
            (Some(v), Some(met)) => {
                format!("{v:.2}{unit} — {}", if met { "met" } else { "**missed**" })
            }
            _ => "not measured".to_owned(),
        };
        format!("| {} | {op} {bound}{unit} | {verdict} |", self.what)
    }
}

/// One cell of the results, if it was measured.
fn get_result(results: &Results, protocol: &str, label: &str, pairing: &str) -> Option<f64> {
    results
        .get(&(protocol.to_owned(), label.to_owned()))
        .and_then(|cells| cells.get(pairing))
        .copied()
}

fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().collect();
    if let Some(code) = floor::pong_main(&raw) {
        return code;
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
    // Sessions that failed are a measured result, not a failure of the run.
    let mut failed_sessions = Vec::new();
    let all_workloads: Vec<_> = workloads(args.quick)
        .into_iter()
        .filter(|workload| args.only.is_empty() || args.only.iter().any(|l| l == workload.label))
        .collect();
    // The floor is measured three times through the run and its median
    // reported: one measurement can land in a burst of the machine's noise.
    let floor_trips = if args.quick { 2_000 } else { 20_000 };
    let measure_floors = || [Wait::Block, Wait::Spin].map(|wait| unix_floor(floor_trips, wait));
    let mut floors = vec![measure_floors()];
    let protocols: Vec<&str> = ["grpc", "netrpc"]
        .into_iter()
        .filter(|p| args.protocol.as_deref().is_none_or(|only| only == *p))
        .collect();
    for protocol in protocols.iter().copied() {
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
                        Ok(figures) => {
                            if figures["session_errors"].as_f64().is_some_and(|n| n > 0.0) {
                                failed_sessions.push(format!(
                                    "{protocol} {} {}: {} session(s) failed, the first: {}",
                                    workload.label,
                                    pairing.name,
                                    figures["session_errors"],
                                    figures["first_error"].as_str().unwrap_or("?"),
                                ));
                            }
                            add_run(collected, &figures);
                        }
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
        floors.push(measure_floors());
    }
    let floor_count = floors.len();
    let (blocking, spinning): (Vec<_>, Vec<_>) = floors
        .into_iter()
        .map(|[block, spin]| (block, spin))
        .unzip();
    let floor = median_floor(blocking);
    let spin_floor = median_floor(spinning);
    let startup = match &args.startup {
        Some(path) => {
            let read = std::fs::read_to_string(path)
                .ok()
                .and_then(|text| serde_json::from_str::<Value>(&text).ok());
            if read.is_none() {
                errors.push(format!("no start-up figures in {}", path.display()));
            }
            read
        }
        None => None,
    };

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
    for protocol in protocols.iter().copied() {
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
                // A count (of failed sessions) has no ratio.
                let count = *unit == "sessions";
                let cell = |name: &str| match (cells.get(name), reference) {
                    (None, _) => "–".to_owned(),
                    (Some(v), _) if count => format!("{v:.0}"),
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
    let unary_p50 = get_result(&results, "grpc", "unary round trip p50", "Rust/Rust");
    out.push_str(&format!(
        "- Raw Unix-socket ping-pong between two processes (16 bytes, {floor_trips} round trips; \
         the median of {floor_count} measurements spread through the run):\n"
    ));
    let mut floor_line =
        |what: &str, why: &str, floor: &Result<(Duration, Duration), String>| match floor {
            Ok((p50, p99)) => {
                let p50 = p50.as_secs_f64() * 1e6;
                out.push_str(&format!(
                    "  - {what}: p50 {p50:.1} µs, p99 {:.1} µs{}. {why}\n",
                    p99.as_secs_f64() * 1e6,
                    unary_p50.map_or(String::new(), |unary| format!(
                        " (gRPC unary p50 Rust/Rust: {:.2}× this p50)",
                        unary / p50
                    )),
                ));
                Some(p50)
            }
            Err(e) => {
                out.push_str(&format!("  - {what}: failed: {e}\n"));
                None
            }
        };
    floor_line(
        "blocking reads",
        "Each message wakes a sleeping process, so an idle vCPU's wake-up is in every round trip: not a floor for a busy connection.",
        &floor,
    );
    let spin_p50 = floor_line(
        "spinning",
        "Both ends poll a non-blocking socket and stay on a CPU: the floor of a round trip between two processes.",
        &spin_floor,
    );
    let spawn = match startup.as_ref().map(|s| s["spawn_floor_ms"].as_f64()) {
        Some(Some(ms)) => Ok((ms, "measured by `startup` between its rounds")),
        _ => {
            let mut times = Vec::new();
            spawn_floor(if args.quick { 20 } else { 200 }, &mut times).map(|()| {
                (
                    percentile(&times, 0.5).as_secs_f64() * 1e3,
                    "measured by `matrix`",
                )
            })
        }
    };
    match &spawn {
        Ok((median, by)) => out.push_str(&format!(
            "- Spawn and wait for `/bin/true` (Rust's `Command::status`; {by}): median {median:.2} ms.\n",
        )),
        Err(e) => out.push_str(&format!("- Spawning /bin/true failed: {e}\n")),
    }

    // Targets.
    let get =
        |protocol: &str, label: &str, pairing: &str| get_result(&results, protocol, label, pairing);
    let ratio = |protocol: &str, label: &str, pairing: &str| match (
        get(protocol, label, pairing),
        get(protocol, label, "Go/Go"),
    ) {
        (Some(v), Some(r)) if r > 0.0 => Some(v / r),
        _ => None,
    };
    let mut targets = vec![
        Target::ratio(
            "gRPC unary p50, Rust/Rust ÷ Go/Go",
            ratio("grpc", "unary round trip p50", "Rust/Rust"),
            Bound::AtMost(0.5),
        ),
        Target::ratio(
            "gRPC idle plugin RSS, Rust/Rust ÷ Go/Go",
            ratio("grpc", "idle plugin RSS", "Rust/Rust"),
            Bound::AtMost(0.25),
        ),
        Target::ratio(
            "gRPC 64 callers calls/s, Rust/Rust ÷ Go/Go",
            ratio("grpc", "64 callers, tiny calls", "Rust/Rust"),
            Bound::AtLeast(2.0),
        ),
        Target::ratio(
            "gRPC 1 MiB echo MiB/s, Rust/Rust ÷ Go/Go",
            ratio("grpc", "1 MiB echo", "Rust/Rust"),
            Bound::AtLeast(1.5),
        ),
        Target::ratio(
            "gRPC unary p50, Rust/Rust ÷ spinning Unix-socket p50",
            unary_p50.zip(spin_p50).map(|(v, f)| v / f),
            Bound::AtMost(3.0),
        ),
    ];
    if let Some(startup) = &startup {
        let median = |mode: &str, pairing: &str| startup[mode][pairing].as_f64();
        let rust = "Rust host / Rust plugin";
        for (mode, bound) in [("plain", 0.5), ("AutoMTLS", 0.25)] {
            targets.push(Target::ratio(
                &format!("cold start {mode} (sh), Rust/Rust ÷ Go/Go"),
                median(mode, rust)
                    .zip(median(mode, "Go host / Go plugin"))
                    .map(|(v, r)| v / r),
                Bound::AtMost(bound),
            ));
        }
        targets.push(Target::ratio(
            "Rust/Rust start→ping (direct, plain) ÷ spawn-and-wait floor",
            median("direct plain", rust)
                .zip(spawn.as_ref().ok().map(|(ms, _)| *ms))
                .map(|(v, f)| v / f),
            Bound::AtMost(3.0),
        ));
        targets.push(Target {
            what: "Rust/Rust AutoMTLS − plain start→ping (direct)".to_owned(),
            value: median("direct AutoMTLS", rust)
                .zip(median("direct plain", rust))
                .map(|(tls, plain)| tls - plain),
            bound: Bound::AtMost(1.0),
            unit: " ms",
        });
    }
    out.push_str(
        "\n### Targets (ratios within this run)\n\n| target | bound | this run |\n|---|---|---|\n",
    );
    for target in &targets {
        out.push_str(&target.line());
        out.push('\n');
    }
    // Mixed pairings: no slower than Go/Go (rates at least, times at most 1×).
    let mut slower = Vec::new();
    for protocol in ["grpc", "netrpc"] {
        for workload in &all_workloads {
            for (label, _, _, higher_better) in workload.rows {
                if label.contains("RSS") || label.contains("p99") || label.contains("error") {
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
    if !failed_sessions.is_empty() {
        out.push_str(
            "\nFailed sessions of this run (a session whose plugin had to be killed fails):\n\n",
        );
        for e in &failed_sessions {
            out.push_str(&format!("- {}\n", e.replace('\n', " ")));
        }
    }
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

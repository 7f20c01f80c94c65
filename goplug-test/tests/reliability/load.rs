//! Reliability suite, series E: concurrency, resources and soak
//! (`research/reliability.md` §5, T36–T38). Every test runs under a
//! [`Harness::exclusive`]: its processes gone, no zombies, fds and socket
//! dir at baseline.
//!
//! Longer runs: `GOPLUG_CHURN_ROUNDS` (T37, default 2 rounds of 50
//! plugins), `GOPLUG_SOAK_SECS` (T38c, default 120) with `GOPLUG_SOAK_CSV`
//! for the samples; `scripts/soak.sh` runs the soak in release mode.

use std::os::unix::process::ExitStatusExt as _;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use goplug::host::{Channel, Client};
use goplug_example_kv::pb::kv_client::KvClient;
use goplug_test::{
    Harness, NOISY, fd_count, get, percentiles, put, status_kib, step, threads, within,
};
use tokio::task::JoinSet;

/// The plugin server's `max_concurrent_streams` (goplug::plugin): no more
/// handlers than this may run at once on one connection.
const STREAM_LIMIT: usize = 1024;

/// Calls T36 keeps in flight at once: more than the stream limit.
const IN_FLIGHT: usize = 2000;

fn noisy(h: &Harness, env: &[(&str, &str)]) -> Command {
    let mut command = h.plugin(&NOISY, "");
    command.envs(env.iter().copied());
    command
}

async fn start(h: &Harness, env: &[(&str, &str)]) -> Client {
    let client = within(step(), "plugin start", h.kv_host(noisy(h, env)).start())
        .await
        .expect("the plugin starts");
    h.track(client.pid().expect("a launched plugin has a pid"));
    client
}

fn kv(client: &Client) -> KvClient<Channel> {
    client.dispense_named("kv").expect("the kv plugin")
}

fn host_rss_kib() -> u64 {
    status_kib("self", "VmRSS").expect("VmRSS of this process")
}

/// T36: 2,000 unary calls in flight at once on one connection, from 64
/// tasks: every call succeeds with its own answer, and the plugin never
/// runs more handlers at once than its stream limit.
#[test]
fn t36_two_thousand_concurrent_calls_succeed_within_the_stream_limit() {
    Harness::exclusive().run_multi_thread(async |h| {
        // Slow handlers, so the calls pile up at the plugin.
        let client = start(h, &[("NOISY_HANDLER_MS", "200")]).await;
        let kv = kv(&client);
        let started = Instant::now();
        let mut tasks = JoinSet::new();
        for task in 0..64 {
            let kv = kv.clone();
            tasks.spawn(async move {
                let mut calls = JoinSet::new();
                for n in (task..IN_FLIGHT).step_by(64) {
                    let mut kv = kv.clone();
                    calls.spawn(async move {
                        let sent = Instant::now();
                        let key = format!("key-{n}");
                        put(&mut kv, &key, key.clone().into_bytes()).await?;
                        let value = get(&mut kv, &key).await?;
                        assert_eq!(value, key.as_bytes(), "a call got another call's answer");
                        Ok::<_, tonic::Status>(sent.elapsed())
                    });
                }
                calls.join_all().await
            });
        }
        let results = within(step(), "2,000 calls", tasks.join_all()).await;
        let total = started.elapsed();
        let latencies: Vec<Duration> = results
            .into_iter()
            .flatten()
            .map(|latency| latency.expect("every call succeeds"))
            .collect();
        assert_eq!(latencies.len(), IN_FLIGHT);
        eprintln!(
            "T36: {IN_FLIGHT} put+get pairs in {total:?}; {}",
            percentiles(latencies)
        );
        let mut kv = kv;
        let max = get(&mut kv, "stats:max-in-flight").await.unwrap();
        let max: usize = String::from_utf8(max).unwrap().parse().unwrap();
        eprintln!("T36: at most {max} handlers ran at once");
        assert!(max <= STREAM_LIMIT, "{max} handlers ran at once");
        // Past the limit the host queues calls; below it they all run at once.
        assert!(
            max > STREAM_LIMIT / 2,
            "the calls did not overlap ({max} at most)"
        );
        assert!(within(step(), "shutdown", client.shutdown()).await.graceful);
    });
}

/// T37: plugins started and stopped 50 at a time, half of them crashing
/// (SIGKILL) before the host stops them: every start succeeds, and at the
/// end nothing is left and the host's memory has not grown.
#[test]
fn t37_plugin_churn_leaves_nothing_behind_and_memory_flat() {
    Harness::exclusive().run_multi_thread(async |h| {
        let rounds: usize = std::env::var("GOPLUG_CHURN_ROUNDS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(2)
            .max(2);
        // Memory is measured from the end of the first round: allocators keep
        // what 50 plugins at once needed, and a leak shows as growth after.
        let mut rss_after_first_round = None;
        let mut start_times = Vec::new();
        for round in 0..rounds {
            let mut lifecycles = JoinSet::new();
            for n in 0..50 {
                let host = h.kv_host(noisy(h, &[]));
                lifecycles.spawn(async move {
                    let client = host.start().await.expect("the plugin starts");
                    let pid = client.pid().expect("a launched plugin has a pid");
                    client.ping().await.expect("the plugin answers");
                    let crash = n % 2 == 0;
                    if crash {
                        nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid as i32),
                            nix::sys::signal::Signal::SIGKILL,
                        )
                        .expect("SIGKILL the plugin");
                    }
                    let took = client.start_duration();
                    let report = client.shutdown().await;
                    let killed = report.status.and_then(|status| status.signal());
                    if crash {
                        assert_eq!(killed, Some(9), "{report:?}");
                    } else {
                        assert!(report.graceful && killed.is_none(), "{report:?}");
                    }
                    (pid, took)
                });
            }
            for (pid, took) in within(step() * 2, "a round of 50", lifecycles.join_all()).await {
                h.track(pid);
                start_times.push(took);
            }
            let rss = host_rss_kib();
            eprintln!("T37: round {round} done, host RSS {rss} KiB");
            rss_after_first_round.get_or_insert(rss);
        }
        let grown_kib = host_rss_kib().saturating_sub(rss_after_first_round.unwrap_or(0));
        eprintln!(
            "T37: {} lifecycles; starts {}; host RSS grew {grown_kib} KiB",
            start_times.len(),
            percentiles(start_times)
        );
        assert!(grown_kib < 10 * 1024, "host RSS grew by {grown_kib} KiB");
    });
}

/// Lowers this process's soft `RLIMIT_NOFILE` until dropped.
struct FdLimit {
    soft: u64,
    hard: u64,
}

impl FdLimit {
    fn lower_to(limit: u64) -> Self {
        use nix::sys::resource::{Resource, getrlimit, setrlimit};
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
        setrlimit(Resource::RLIMIT_NOFILE, limit, hard).expect("setrlimit");
        Self { soft, hard }
    }
}

impl Drop for FdLimit {
    fn drop(&mut self) {
        use nix::sys::resource::{Resource, setrlimit};
        let _ = setrlimit(Resource::RLIMIT_NOFILE, self.soft, self.hard);
    }
}

/// Whether `error`, or an error below it, is EMFILE.
fn is_emfile(error: &goplug::Error) -> bool {
    if error.io_error().and_then(std::io::Error::raw_os_error) == Some(nix::libc::EMFILE) {
        return true;
    }
    let mut cause = std::error::Error::source(error);
    while let Some(error) = cause {
        let io = error.downcast_ref::<std::io::Error>();
        if io.and_then(std::io::Error::raw_os_error) == Some(nix::libc::EMFILE) {
            return true;
        }
        cause = error.source();
    }
    false
}

/// T38a: with the fd limit lowered, plugin starts fail with a clean error
/// that carries EMFILE (no panic, nothing left behind), and succeed again
/// once running plugins are stopped.
#[test]
fn t38a_running_out_of_fds_fails_starts_cleanly_and_recovers() {
    Harness::exclusive().run_multi_thread(async |h| {
        let limit = FdLimit::lower_to(goplug_test::open_fds() as u64 + 48);
        let mut running = Vec::new();
        let error = loop {
            match within(step(), "plugin start", h.kv_host(noisy(h, &[])).start()).await {
                Ok(client) => {
                    h.track(client.pid().expect("a launched plugin has a pid"));
                    running.push(client);
                    assert!(running.len() < 48, "48 fds were never exhausted");
                }
                Err(error) => break error,
            }
        };
        eprintln!(
            "T38a: start {} failed: {error} ({error:?})",
            running.len() + 1
        );
        assert!(!running.is_empty(), "no plugin started at all: {error}");
        assert!(is_emfile(&error), "not EMFILE: {error} ({error:?})");
        // Room again: starts succeed.
        for client in running.drain(..2.min(running.len())) {
            within(step(), "shutdown", client.shutdown()).await;
        }
        let again = start(h, &[]).await;
        again.ping().await.expect("the new plugin answers");
        running.push(again);
        for client in running {
            assert!(within(step(), "shutdown", client.shutdown()).await.graceful);
        }
        drop(limit);
    });
}

/// Spins threads on every core until dropped.
struct BusyCores {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl BusyCores {
    fn peg(count: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..count)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                })
            })
            .collect();
        Self { stop, threads }
    }
}

impl Drop for BusyCores {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// T38b: with both cores pegged by busy threads, 10 plugins started at
/// once all complete their handshake well inside the start timeout.
#[test]
fn t38b_plugins_start_while_the_cores_are_pegged() {
    Harness::exclusive().run_multi_thread(async |h| {
        let busy = BusyCores::peg(2);
        let mut starts = JoinSet::new();
        for _ in 0..10 {
            let host = h.kv_host(noisy(h, &[]));
            starts.spawn(async move {
                let client = host.start().await.expect("the plugin starts");
                client.ping().await.expect("the plugin answers");
                client
            });
        }
        let clients = within(step() * 2, "10 starts", starts.join_all()).await;
        drop(busy);
        for client in &clients {
            h.track(client.pid().expect("a launched plugin has a pid"));
        }
        eprintln!(
            "T38b: handshakes under load: {}",
            percentiles(clients.iter().map(Client::start_duration).collect())
        );
        for client in clients {
            assert!(within(step(), "shutdown", client.shutdown()).await.graceful);
        }
    });
}

/// One soak sample, a CSV row.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    secs: f64,
    host_rss_kib: u64,
    host_fds: u64,
    host_threads: u64,
    plugin_pid: u32,
    plugin_rss_kib: u64,
    plugin_fds: u64,
    plugin_threads: u64,
    calls: u64,
}

impl Sample {
    const HEADER: &'static str = "secs,host_rss_kib,host_fds,host_threads,plugin_pid,plugin_rss_kib,plugin_fds,plugin_threads,calls";

    fn take(started: Instant, plugin_pid: u32, calls: u64) -> Self {
        let pid = plugin_pid.to_string();
        Self {
            secs: started.elapsed().as_secs_f64(),
            host_rss_kib: host_rss_kib(),
            host_fds: fd_count("self").unwrap_or(0),
            host_threads: threads("self").unwrap_or(0),
            plugin_pid,
            plugin_rss_kib: status_kib(&pid, "VmRSS").unwrap_or(0),
            plugin_fds: fd_count(&pid).unwrap_or(0),
            plugin_threads: threads(&pid).unwrap_or(0),
            calls,
        }
    }

    fn csv(&self) -> String {
        format!(
            "{:.1},{},{},{},{},{},{},{},{}",
            self.secs,
            self.host_rss_kib,
            self.host_fds,
            self.host_threads,
            self.plugin_pid,
            self.plugin_rss_kib,
            self.plugin_fds,
            self.plugin_threads,
            self.calls
        )
    }
}

/// Mixed calls on one plugin until `stop`: puts of varied sizes, gets that
/// must return them, and health checks. Returns the first failure.
async fn mixed_calls(
    client: Arc<Client>,
    worker: u64,
    calls: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> Result<(), String> {
    let mut kv = kv(&client);
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let key = format!("w{worker}-{}", n % 64);
        let value = vec![b'v'; (n as usize * 37) % 4096];
        put(&mut kv, &key, value.clone())
            .await
            .map_err(|e| format!("put {key}: {e}"))?;
        let got = get(&mut kv, &key)
            .await
            .map_err(|e| format!("get {key}: {e}"))?;
        if got != value {
            return Err(format!("get {key}: another value"));
        }
        if n.is_multiple_of(10) {
            client.ping().await.map_err(|e| format!("ping: {e}"))?;
        }
        calls.fetch_add(3, Ordering::Relaxed);
        n += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

/// The mean of `pick` over `samples`.
fn mean(samples: &[Sample], pick: fn(&Sample) -> u64) -> f64 {
    samples.iter().map(|s| pick(s) as f64).sum::<f64>() / samples.len().max(1) as f64
}

/// Polls `value` every 100 ms until `done` holds for it or `limit` has
/// passed; returns the last value (the caller asserts on it).
async fn settled(limit: Duration, value: impl Fn() -> u64, done: impl Fn(u64) -> bool) -> u64 {
    let started = Instant::now();
    loop {
        let now = value();
        if done(now) || started.elapsed() > limit {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The lowest value of `value` over `window`, polled every 100 ms: a
/// baseline that no transient inflates.
async fn lowest(window: Duration, value: impl Fn() -> u64) -> u64 {
    let started = Instant::now();
    let mut low = value();
    while started.elapsed() < window {
        tokio::time::sleep(Duration::from_millis(100)).await;
        low = low.min(value());
    }
    low
}

fn host_fds() -> u64 {
    fd_count("self").unwrap_or(0)
}

fn host_threads() -> u64 {
    threads("self").unwrap_or(0)
}

/// T38c: a soak (`GOPLUG_SOAK_SECS`, default 120 s, in generations of
/// 10 s; run by `scripts/soak.sh`): mixed calls from three tasks, the
/// plugin logging to stderr, and a new plugin and client every 10 s. Host
/// RSS, fds and threads must stay flat and no call may fail; samples go to
/// `GOPLUG_SOAK_CSV` when set.
#[test]
#[ignore = "soak: scripts/soak.sh"]
fn t38c_soak_keeps_rss_fds_and_threads_flat() {
    let total = Duration::from_secs(
        std::env::var("GOPLUG_SOAK_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(120),
    );
    let every = Duration::from_secs(10);
    soak(
        u32::try_from(total.as_secs() / every.as_secs()).unwrap_or(u32::MAX),
        every,
    );
}

/// T38c, short: the soak's checks over five generations of 4 s.
#[test]
fn t38c_short_soak_keeps_rss_fds_and_threads_flat() {
    soak(5, Duration::from_secs(4));
}

/// `generations` whole generations of `every`: the first two are the
/// warm-up. Before each reconnect after the warm-up, when the state is the
/// same every time (one plugin, three workers), the host's fds and threads
/// must settle to at most what they were after the warm-up.
fn soak(generations: u32, every: Duration) {
    const WARM_UP: u32 = 2;
    assert!(
        generations >= WARM_UP + 3,
        "a soak of {generations} generations shows nothing"
    );
    let settle = goplug_test::settle();
    Harness::exclusive().run_multi_thread(async |h| {
        let started = Instant::now();
        let calls = Arc::new(AtomicU64::new(0));
        let plugin_pid = Arc::new(AtomicU32::new(0));
        let sampling = Arc::new(AtomicBool::new(true));
        let sampler = {
            let (calls, plugin_pid, sampling) =
                (calls.clone(), plugin_pid.clone(), sampling.clone());
            tokio::spawn(async move {
                let mut samples = Vec::new();
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                while sampling.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let pid = plugin_pid.load(Ordering::Relaxed);
                    samples.push(Sample::take(started, pid, calls.load(Ordering::Relaxed)));
                }
                samples
            })
        };
        let mut warmed_up_at = None;
        // (fds, threads) after the warm-up, then once settled in each generation.
        let mut baseline = None;
        let mut steady = Vec::new();
        for generation in 0..generations {
            let client = Arc::new(start(h, &[("NOISY_LOG_EVERY_MS", "20")]).await);
            plugin_pid.store(client.pid().unwrap_or(0), Ordering::Relaxed);
            let stop = Arc::new(AtomicBool::new(false));
            let mut workers = JoinSet::new();
            for worker in 0..3 {
                workers.spawn(mixed_calls(
                    client.clone(),
                    u64::from(generation) * 3 + worker,
                    calls.clone(),
                    stop.clone(),
                ));
            }
            tokio::time::sleep(every).await;
            if generation >= WARM_UP {
                let (fds, threads) = match baseline {
                    None => {
                        warmed_up_at.get_or_insert(started.elapsed());
                        let window = Duration::from_secs(1);
                        let fds = lowest(window, host_fds).await;
                        let threads = lowest(window, host_threads).await;
                        baseline = Some((fds, threads));
                        (fds, threads)
                    }
                    Some((fds, threads)) => (
                        settled(settle, host_fds, |now| now <= fds).await,
                        settled(settle, host_threads, |now| now <= threads).await,
                    ),
                };
                steady.push((generation, fds, threads));
            }
            stop.store(true, Ordering::Relaxed);
            for outcome in within(step(), "workers stopping", workers.join_all()).await {
                outcome.unwrap_or_else(|e| panic!("soak generation {generation}: {e}"));
            }
            let client = Arc::into_inner(client).expect("the workers are done with the client");
            let report = within(step(), "shutdown", client.shutdown()).await;
            assert!(report.graceful, "{report:?}");
        }
        sampling.store(false, Ordering::Relaxed);
        let samples = within(step(), "the sampler", sampler).await.unwrap();
        if let Ok(path) = std::env::var("GOPLUG_SOAK_CSV") {
            let rows: Vec<String> = samples.iter().map(Sample::csv).collect();
            std::fs::write(&path, format!("{}\n{}\n", Sample::HEADER, rows.join("\n")))
                .unwrap_or_else(|e| panic!("writing {path}: {e}"));
        }
        let warmed_up_at = warmed_up_at.expect("generations after the warm-up");
        let after_warm_up: Vec<Sample> = samples
            .iter()
            .copied()
            .filter(|s| s.secs >= warmed_up_at.as_secs_f64())
            .collect();
        let fifth = (after_warm_up.len() / 5).max(1);
        let (first, last) = (
            &after_warm_up[..fifth],
            &after_warm_up[after_warm_up.len() - fifth..],
        );
        let (rss_first, rss_last) = (
            mean(first, |s| s.host_rss_kib),
            mean(last, |s| s.host_rss_kib),
        );
        let plugin_rss_max = after_warm_up.iter().map(|s| s.plugin_rss_kib).max();
        eprintln!(
            "T38c: {generations} plugins, {} calls in {:?}; host RSS {rss_first:.0} -> \
             {rss_last:.0} KiB; (generation, fds, threads) settled before reconnects \
             {steady:?}; plugin RSS max {plugin_rss_max:?} KiB",
            calls.load(Ordering::Relaxed),
            started.elapsed(),
        );
        assert!(
            rss_last <= rss_first * 1.1 + 2048.0,
            "host RSS grew from {rss_first:.0} KiB to {rss_last:.0} KiB"
        );
        let (fds, threads) = baseline.expect("a baseline after the warm-up");
        for (generation, now_fds, now_threads) in &steady {
            assert!(
                *now_fds <= fds,
                "host fds grew to {now_fds} (after the warm-up {fds}) in generation \
                 {generation} and did not settle within {settle:?}: {steady:?}"
            );
            assert!(
                *now_threads <= threads,
                "host threads grew to {now_threads} (after the warm-up {threads}) in \
                 generation {generation} and did not settle within {settle:?}: {steady:?}"
            );
        }
    });
}

//! The supervisor under faults: a plugin that hangs (SIGSTOP) is found by
//! its health checks and replaced; a crash loop opens the circuit until a
//! reset; a plugin that never finishes its handshake is retried; calls
//! made through the supervised channel wait or fail fast as the policy
//! says; the status and the `metrics` facade report a plugin's memory,
//! CPU time, fds and call latencies (Rust and Go plugins); and the
//! supervisor's shutdown is bounded and leaves nothing.

use std::time::Duration;

use goplug::Error;
use goplug::host::supervisor::{
    PluginState, RestartPolicy, SupervisedPlugin, Supervisor, SupervisorEvent, WhenDown,
};
use goplug::host::{Channel, GrpcPlugin};
use goplug_example_kv::pb::{self, kv_client::KvClient};
use goplug_test::{FAKE, Harness, step};
use tokio::sync::broadcast;

const KV: GrpcPlugin<KvClient<Channel>> = GrpcPlugin::new("kv");

/// A fast policy, so faults play out in a test's time.
fn quick() -> RestartPolicy {
    RestartPolicy::default()
        .initial_backoff(Duration::from_millis(20))
        .multiplier(2)
        .max_backoff(Duration::from_millis(200))
}

/// The next event that `wanted` accepts, within a step.
async fn next_event(
    events: &mut broadcast::Receiver<SupervisorEvent>,
    what: &str,
    wanted: impl Fn(&SupervisorEvent) -> bool,
) -> SupervisorEvent {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(step(), async {
        loop {
            match events.recv().await {
                Ok(event) if wanted(&event) => return event,
                Ok(event) => seen.push(event),
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => {
                    std::future::pending::<()>().await;
                }
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("no {what} event within {:?}; saw {seen:#?}", step()))
}

async fn put_get(kv: &mut KvClient<Channel>, value: &str) -> Result<(), tonic::Status> {
    kv.put(pb::PutRequest {
        key: "supervised".into(),
        value: value.as_bytes().to_vec(),
    })
    .await?;
    let got = kv
        .get(pb::GetRequest {
            key: "supervised".into(),
        })
        .await?
        .into_inner()
        .value;
    assert!(got.starts_with(value.as_bytes()), "read back {got:?}");
    Ok(())
}

fn pid_of(plugin: &SupervisedPlugin) -> u32 {
    plugin.status().pid.expect("a serving plugin has a pid")
}

#[test]
fn a_hung_plugin_is_found_by_its_health_checks_and_replaced() {
    Harness::exclusive().run(async |h| {
        let supervisor = Supervisor::new();
        let policy = quick()
            .health_checks(Some(Duration::from_millis(100)), Duration::from_secs(2))
            .health_failures(2);
        let kv = supervisor.supervise("kv", policy, h.kv_host_recipe(FAKE.path(), &["kv"]));
        let mut events = kv.events();
        kv.wait_serving(step()).await.unwrap();
        let mut client = kv.dispense(KV).unwrap();
        put_get(&mut client, "before").await.unwrap();
        let hung = pid_of(&kv);
        h.track(hung);
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(hung as i32),
            nix::sys::signal::Signal::SIGSTOP,
        )
        .unwrap();
        let exited = next_event(&mut events, "exited", |e| {
            matches!(e, SupervisorEvent::Exited { .. })
        })
        .await;
        let SupervisorEvent::Exited { reason, .. } = &exited else {
            unreachable!()
        };
        assert!(
            reason.contains("health checks in a row failed"),
            "{exited:?}"
        );
        next_event(&mut events, "started", |e| {
            matches!(e, SupervisorEvent::Started { .. })
        })
        .await;
        // The same client, on the new process.
        put_get(&mut client, "after").await.unwrap();
        let replacement = pid_of(&kv);
        assert_ne!(replacement, hung);
        h.track(replacement);
        assert_eq!(kv.status().restarts, 1);
        assert!(supervisor.shutdown(step()).await, "stopped in time");
        assert_eq!(kv.status().state, PluginState::Stopped);
    });
}

#[test]
fn a_crash_loop_opens_the_circuit_until_a_reset() {
    Harness::exclusive().run(async |h| {
        // Fails at once until the file `healthy` exists in its directory.
        let script = format!(
            "if [ -e healthy ]; then exec '{}' kv; fi; echo broken >&2; exit 3",
            FAKE.path().display()
        );
        let recipe = h.kv_host_recipe("/bin/sh", &["-c", &script]);
        let supervisor = Supervisor::new();
        let policy = quick().circuit(3, Duration::from_secs(600));
        let kv = supervisor.supervise("flaky", policy, recipe);
        let mut events = kv.events();
        let opened = next_event(&mut events, "circuit_open", |e| {
            matches!(e, SupervisorEvent::CircuitOpen { .. })
        })
        .await;
        assert!(
            matches!(opened, SupervisorEvent::CircuitOpen { failures: 3, .. }),
            "{opened:?}"
        );
        let status = kv.status();
        assert_eq!(status.state, PluginState::CircuitOpen);
        assert_eq!(
            status.restarts, 2,
            "three starts: the first and two restarts"
        );
        assert!(
            status
                .last_error
                .as_deref()
                .unwrap_or_default()
                .contains("broken"),
            "{status:?}"
        );

        // Calls fail at once, saying why.
        let mut client = kv.dispense(KV).unwrap();
        let failed = put_get(&mut client, "x").await.unwrap_err();
        assert_eq!(failed.code(), tonic::Code::Unavailable);
        assert!(
            failed
                .message()
                .starts_with("plugin \"flaky\" is down: its circuit is open after 3 failures"),
            "{failed:?}"
        );
        let down = kv.wait_serving(step()).await.unwrap_err();
        assert!(matches!(down, Error::PluginDown { .. }), "{down:?}");

        // Fixed and reset: it serves again, the same client with it.
        std::fs::write(h.work.join("healthy"), "").unwrap();
        kv.reset();
        kv.wait_serving(step()).await.unwrap();
        put_get(&mut client, "healed").await.unwrap();
        h.track(pid_of(&kv));
        let status = kv.status();
        assert_eq!((status.calls_ok, status.calls_failed), (2, 1), "{status:?}");
        assert!(supervisor.shutdown(step()).await, "stopped in time");
    });
}

#[test]
fn a_plugin_that_never_answers_is_retried_and_calls_fail_fast() {
    Harness::exclusive().run(async |h| {
        let silent = h.kv_host_recipe("/bin/sh", &["-c", "exec sleep 300"]);
        let recipe = move || silent().start_timeout(Duration::from_millis(300));
        let supervisor = Supervisor::new();
        let policy = quick().when_down(WhenDown::FailFast);
        let kv = supervisor.supervise("silent", policy, recipe);
        let mut events = kv.events();
        for _ in 0..2 {
            let failed = next_event(&mut events, "start_failed", |e| {
                matches!(e, SupervisorEvent::StartFailed { .. })
            })
            .await;
            let SupervisorEvent::StartFailed { error, .. } = &failed else {
                unreachable!()
            };
            assert!(
                error.contains("timeout while waiting for plugin to start"),
                "{failed:?}"
            );
        }
        let mut client = kv.dispense(KV).unwrap();
        let status = put_get(&mut client, "x").await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert!(
            status.message().starts_with("plugin \"silent\" is down"),
            "{status:?}"
        );
        assert!(supervisor.shutdown(step()).await, "stopped in time");
    });
}

/// Calls made while the plugin restarts wait for it (the default) and
/// succeed on the new process.
#[test]
fn calls_made_while_the_plugin_is_down_wait_for_its_restart() {
    Harness::exclusive().run(async |h| {
        let supervisor = Supervisor::new();
        let policy = quick().initial_backoff(Duration::from_millis(300));
        let kv = supervisor.supervise("kv", policy, h.kv_host_recipe(FAKE.path(), &["kv"]));
        let mut events = kv.events();
        kv.wait_serving(step()).await.unwrap();
        let first = pid_of(&kv);
        h.track(first);
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(first as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        next_event(&mut events, "restarting", |e| {
            matches!(e, SupervisorEvent::Restarting { .. })
        })
        .await;
        // Down now, for the backoff at least: this call waits it out.
        let mut client = kv.dispense(KV).unwrap();
        put_get(&mut client, "waited").await.unwrap();
        let second = pid_of(&kv);
        assert_ne!(first, second);
        h.track(second);
        assert!(supervisor.shutdown(step()).await, "stopped in time");
    });
}

/// A reload starts the new plugin, moves calls to it and stops the old one
/// once its calls are done: a caller calling all along sees no failure.
#[test]
fn a_reload_replaces_the_plugin_without_failing_a_call() {
    Harness::exclusive().run(async |h| {
        let supervisor = Supervisor::new();
        let kv = supervisor.supervise("kv", quick(), h.kv_host_recipe(FAKE.path(), &["kv"]));
        let mut events = kv.events();
        kv.wait_serving(step()).await.unwrap();
        let old = pid_of(&kv);
        h.track(old);
        let calling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let caller = tokio::spawn({
            let (mut client, calling) = (kv.dispense(KV).unwrap(), calling.clone());
            async move {
                let mut calls = 0u32;
                while calling.load(std::sync::atomic::Ordering::Relaxed) {
                    put_get(&mut client, &format!("call {calls}")).await?;
                    calls += 1;
                }
                Ok::<u32, tonic::Status>(calls)
            }
        });
        // Some calls on the old process first.
        eventually_calls(&kv, 5).await;
        kv.reload(h.kv_host_recipe(FAKE.path(), &["kv"]), step())
            .await
            .unwrap();
        let reloaded = next_event(&mut events, "reloaded", |e| {
            matches!(e, SupervisorEvent::Reloaded { .. })
        })
        .await;
        let new = pid_of(&kv);
        assert!(
            matches!(reloaded, SupervisorEvent::Reloaded { pid: Some(p), previous_pid: Some(q), .. } if p == new && q == old),
            "{reloaded:?}"
        );
        h.track(new);
        let before = kv.status().calls_ok;
        eventually_calls(&kv, before + 5).await;
        calling.store(false, std::sync::atomic::Ordering::Relaxed);
        let calls = caller.await.unwrap().expect("no call failed across the reload");
        let status = kv.status();
        // Each round is a put and a get: every one of them answered.
        assert!(calls >= 5, "{calls} rounds");
        assert_eq!(status.calls_ok, 2 * u64::from(calls), "{status:?}");
        assert_eq!(status.calls_failed, 0, "{status:?}");
        assert_eq!(status.restarts, 0, "a reload is no restart");
        assert!(supervisor.shutdown(step()).await, "stopped in time");
    });
}

/// A reload to a plugin that cannot start is refused, saying why, and the
/// running plugin keeps serving.
#[test]
fn a_reload_to_a_broken_plugin_keeps_the_old_one() {
    Harness::exclusive().run(async |h| {
        let supervisor = Supervisor::new();
        let kv = supervisor.supervise("kv", quick(), h.kv_host_recipe(FAKE.path(), &["kv"]));
        kv.wait_serving(step()).await.unwrap();
        let serving = pid_of(&kv);
        h.track(serving);
        let broken = h.kv_host_recipe("/bin/sh", &["-c", "echo cannot start >&2; exit 3"]);
        let refused = kv.reload(broken, step()).await.unwrap_err();
        let Error::Reload { reason, .. } = &refused else {
            panic!("expected a refused reload, got {refused:?}");
        };
        assert!(
            reason.starts_with("the new plugin did not start"),
            "{refused}"
        );
        assert!(reason.contains("exit status: 3"), "{refused}");
        assert!(
            refused
                .to_string()
                .contains("the running plugin keeps serving"),
            "{refused}"
        );
        assert_eq!(pid_of(&kv), serving);
        let mut client = kv.dispense(KV).unwrap();
        put_get(&mut client, "still here").await.unwrap();
        assert!(supervisor.shutdown(step()).await, "stopped in time");
    });
}

/// Waits (a step at most) until the plugin has answered `calls` calls.
async fn eventually_calls(kv: &SupervisedPlugin, calls: u64) {
    let deadline = tokio::time::Instant::now() + step();
    while kv.status().calls_ok < calls {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", kv.status());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Calls `put_get` until the plugin's status reports CPU time (the kernel
/// counts it in ticks, so a fresh process may read zero), at most a step;
/// returns the calls made (two each).
async fn call_until_cpu_time(kv: &SupervisedPlugin) -> u64 {
    let mut client = kv.dispense(KV).unwrap();
    let deadline = tokio::time::Instant::now() + step();
    let mut calls = 0;
    loop {
        put_get(&mut client, "costly").await.unwrap();
        calls += 2;
        let usage = kv.status().usage.expect("a serving plugin's usage");
        if !usage.cpu_time.is_zero() {
            return calls;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no CPU time: {usage:?}"
        );
    }
}

/// Waits (a step at most) until `calls` calls are in the latency histogram,
/// then checks that it holds exactly those.
async fn latency_counts(
    kv: &SupervisedPlugin,
    calls: u64,
) -> goplug::host::supervisor::PluginStatus {
    let deadline = tokio::time::Instant::now() + step();
    while kv.status().latency.count < calls {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", kv.status());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let status = kv.status();
    let latency = &status.latency;
    assert_eq!(latency.count, calls, "{status:?}");
    assert_eq!(status.calls_ok, calls, "{status:?}");
    let bucketed: u64 = latency.buckets.iter().map(|(_, n)| n).sum();
    assert_eq!(bucketed + latency.overflow, calls, "{latency:?}");
    assert!(!latency.sum.is_zero(), "{latency:?}");
    let (p50, p99) = (
        latency.p50().expect("a median"),
        latency.p99().expect("a p99"),
    );
    assert!(p50 <= p99, "{latency:?}");
    status
}

/// The status reports what the plugin's process costs, read from its
/// `/proc` entry, and the latency of exactly the calls made.
#[test]
fn the_status_reports_the_plugins_memory_cpu_fds_and_call_latencies() {
    Harness::shared().run(async |h| {
        let supervisor = Supervisor::new();
        let kv = supervisor.supervise("kv", quick(), h.kv_host_recipe(FAKE.path(), &["kv"]));
        kv.wait_serving(step()).await.unwrap();
        let pid = pid_of(&kv);
        h.track(pid);
        let calls = call_until_cpu_time(&kv).await;
        let status = latency_counts(&kv, calls).await;
        let usage = status.usage.expect("a serving plugin's usage");
        assert!(usage.rss_bytes > 0, "{usage:?}");
        // stdin, stdout, stderr and the listening socket at least.
        assert!(usage.open_fds >= 4, "{usage:?}");
        // The same process's figures, read here independently.
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count() as u64;
        assert!(usage.open_fds.abs_diff(fds) <= 2, "{usage:?} vs {fds} fds");
        assert!(supervisor.shutdown(step()).await, "stopped in time");
        // Down, no process: no usage.
        assert_eq!(kv.status().usage, None);
    });
}

/// The snapshotter of the test process's `metrics` recorder, installed
/// once; tests tell their figures apart by the plugin's name.
fn recorder() -> &'static metrics_util::debugging::Snapshotter {
    static SNAPSHOTTER: std::sync::OnceLock<metrics_util::debugging::Snapshotter> =
        std::sync::OnceLock::new();
    SNAPSHOTTER.get_or_init(|| {
        let recorder = metrics_util::debugging::DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder.install().expect("the only metrics recorder here");
        snapshotter
    })
}

/// The recorder's figures now, as an exporter would see them (taking
/// them drains the histograms' samples).
type Figures = Vec<(
    metrics_util::CompositeKey,
    Option<metrics::Unit>,
    Option<metrics::SharedString>,
    metrics_util::debugging::DebugValue,
)>;

/// One of `plugin`'s figures in `figures`.
fn figure<'f>(
    figures: &'f Figures,
    name: &str,
    plugin: &str,
    outcome: Option<&str>,
) -> Option<&'f metrics_util::debugging::DebugValue> {
    figures.iter().find_map(|(key, _, _, value)| {
        let key = key.key();
        let label = |wanted: &str| {
            key.labels()
                .find(|l| l.key() == wanted)
                .map(|l| l.value().to_owned())
        };
        (key.name() == name
            && label("plugin").as_deref() == Some(plugin)
            && label("outcome").as_deref() == outcome)
            .then_some(value)
    })
}

/// A Go plugin gets the same figures, in its status and through the
/// `metrics` facade (goplug's `metrics` feature).
#[test]
fn a_go_plugins_figures_reach_its_status_and_the_metrics_facade() {
    use metrics_util::debugging::DebugValue;
    let go_plugin = goplug_test::go_bin("kv-plugin-go-grpc");
    recorder();
    Harness::shared().run(async |h| {
        let supervisor = Supervisor::new();
        let name = "kv-go-metrics";
        let kv = supervisor.supervise(name, quick(), h.kv_host_recipe(&go_plugin, &[]));
        let mut events = kv.events();
        kv.wait_serving(step()).await.unwrap();
        let first = pid_of(&kv);
        h.track(first);
        let calls = call_until_cpu_time(&kv).await;
        let status = latency_counts(&kv, calls).await;
        let usage = status.usage.expect("a serving plugin's usage");
        assert!(usage.rss_bytes > 0 && usage.open_fds >= 4, "{usage:?}");

        let figures: Figures = recorder().snapshot().into_vec();
        assert_eq!(
            figure(&figures, "goplug_plugin_calls_total", name, Some("ok")),
            Some(&DebugValue::Counter(calls))
        );
        match figure(&figures, "goplug_plugin_call_duration_seconds", name, None) {
            Some(DebugValue::Histogram(seconds)) => assert_eq!(seconds.len() as u64, calls),
            other => panic!("no call durations: {other:?}"),
        }
        match figure(&figures, "goplug_plugin_rss_bytes", name, None) {
            Some(DebugValue::Gauge(rss)) => assert!(rss.into_inner() > 0.0, "{rss}"),
            other => panic!("no RSS gauge: {other:?}"),
        }

        // A restart counts, and the new process serves.
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(first as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        next_event(&mut events, "restart", |e| {
            matches!(e, SupervisorEvent::Started { restarts: 1, .. })
        })
        .await;
        h.track(pid_of(&kv));
        assert_eq!(
            figure(
                &recorder().snapshot().into_vec(),
                "goplug_plugin_restarts_total",
                name,
                None
            ),
            Some(&DebugValue::Counter(1))
        );
        assert!(supervisor.shutdown(step()).await, "stopped in time");
    });
}

//! The supervisor under faults: a plugin that hangs (SIGSTOP) is found by
//! its health checks and replaced; a crash loop opens the circuit until a
//! reset; a plugin that never finishes its handshake is retried; calls
//! made through the supervised channel wait or fail fast as the policy
//! says; and the supervisor's shutdown is bounded and leaves nothing.

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

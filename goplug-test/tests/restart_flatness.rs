//! A thousand restarts of a supervised plugin leave the host flat: its
//! open fds, threads and resident memory after the last restart are where
//! they were after the first hundred. A test binary of its own, so the
//! process-wide figures are this test's alone.

use std::time::Duration;

use goplug::host::supervisor::{RestartPolicy, Supervisor, SupervisorEvent};
use goplug::host::{Channel, GrpcPlugin};
use goplug_example_kv::pb::{self, kv_client::KvClient};
use goplug_test::{FAKE, Harness, step};
use nix::sys::signal::{Signal, kill};
use tokio::sync::broadcast;

const KV: GrpcPlugin<KvClient<Channel>> = GrpcPlugin::new("kv");

const RESTARTS: u64 = 1000;
/// Restarts before the baseline: pools, caches and allocator arenas have
/// reached their working size by then.
const WARM_UP: u64 = 100;

/// Room for what a host holds in one moment but not another (a pidfd
/// being closed, a blocking thread parked); a leak per restart is
/// hundreds past it.
const FD_SLACK: usize = 8;
const THREAD_SLACK: usize = 8;
const RSS_SLACK_KIB: u64 = 24 * 1024;

#[derive(Debug, Clone, Copy)]
struct Footprint {
    fds: usize,
    threads: usize,
    rss_kib: u64,
}

fn footprint() -> Footprint {
    let fds = std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count();
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/self/status"))
    };
    Footprint {
        fds,
        threads: usize::try_from(field("Threads:")).expect("a thread count"),
        rss_kib: field("VmRSS:"),
    }
}

async fn started(events: &mut broadcast::Receiver<SupervisorEvent>, round: u64) -> u32 {
    let found = tokio::time::timeout(step(), async {
        loop {
            match events.recv().await {
                Ok(SupervisorEvent::Started { pid: Some(pid), .. }) => return pid,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("the supervisor stopped"),
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("restart {round} did not start within {:?}", step()))
}

async fn call(kv: &mut KvClient<Channel>, round: u64) {
    let value = format!("round {round}");
    kv.put(pb::PutRequest {
        key: "flat".into(),
        value: value.clone().into_bytes(),
    })
    .await
    .unwrap_or_else(|status| panic!("put after restart {round}: {status}"));
}

#[test]
fn a_thousand_restarts_leave_the_hosts_fds_threads_and_memory_flat() {
    Harness::exclusive().run_multi_thread(async |h| {
        let policy = RestartPolicy::default()
            .initial_backoff(Duration::from_millis(1))
            .max_backoff(Duration::from_millis(1))
            .multiplier(1)
            .jitter(0.0)
            .health_checks(None, Duration::from_secs(5))
            .circuit(usize::MAX, Duration::from_millis(1));
        let supervisor = Supervisor::new();
        let plugin = supervisor.supervise("flat", policy, h.kv_host_recipe(FAKE.path(), &["kv"]));
        let mut events = plugin.events();
        let mut kv = plugin.dispense(KV).expect("a gRPC plugin");
        let mut baseline = None;
        for round in 0..=RESTARTS {
            let pid = started(&mut events, round).await;
            call(&mut kv, round).await;
            if round == WARM_UP {
                baseline = Some(footprint());
            }
            if round == RESTARTS {
                break;
            }
            kill(
                nix::unistd::Pid::from_raw(i32::try_from(pid).expect("a pid")),
                Signal::SIGKILL,
            )
            .expect("the plugin runs");
        }
        let baseline = baseline.expect("measured after the warm-up");
        let last = footprint();
        let status = plugin.status();
        assert_eq!(status.restarts, RESTARTS, "{status:?}");
        assert!(
            last.fds <= baseline.fds + FD_SLACK,
            "fds grew: {baseline:?} after {WARM_UP} restarts, {last:?} after {RESTARTS}"
        );
        assert!(
            last.threads <= baseline.threads + THREAD_SLACK,
            "threads grew: {baseline:?} after {WARM_UP} restarts, {last:?} after {RESTARTS}"
        );
        assert!(
            last.rss_kib <= baseline.rss_kib + RSS_SLACK_KIB,
            "memory grew: {baseline:?} after {WARM_UP} restarts, {last:?} after {RESTARTS}"
        );
        eprintln!("footprint after {WARM_UP} restarts {baseline:?}, after {RESTARTS} {last:?}");
        assert!(supervisor.shutdown(step()).await, "shut down in time");
    });
}

//! Helpers for the reliability suite's tests (`research/reliability.md`
//! §5): hosts, runtimes and bounded awaits under a [`Ledger`], and the KV
//! calls the suite's plugin (`noisy-plugin`) answers.

use std::process::Command;
use std::time::Duration;

use goplug::host::Channel;
use goplug_example_kv::pb::{self, kv_client::KvClient};

use crate::Ledger;

/// A host for the KV plugin set (`kv`) launching `command` under a
/// reliability [`Ledger`]: its temp dir is the socket dir and the plugin's
/// `TMPDIR`, so anything either leaves behind fails the ledger.
pub fn ledger_host(ledger: &Ledger, mut command: Command) -> goplug::host::ClientBuilder {
    use goplug::host::{Client, PluginSet};
    use goplug_example_kv::HANDSHAKE;
    command.env("TMPDIR", ledger.temp_dir());
    Client::builder(HANDSHAKE)
        .plugins(PluginSet::new().grpc::<KvClient<Channel>>("kv"))
        .command(command)
        .unix_socket_dir(ledger.temp_dir())
        .start_timeout(Duration::from_secs(30))
}

/// Opens a [`Ledger`] for a test that will build its runtime with
/// [`runtime`]. The first tokio runtime in a process creates tokio's
/// process-wide signal pipe, which is never closed: one runtime is built
/// (and dropped) here first, once, so the pipe is part of every baseline.
pub fn open_ledger() -> Ledger {
    static SIGNAL_PIPE: std::sync::Once = std::sync::Once::new();
    SIGNAL_PIPE.call_once(|| {
        // A child too, so SIGCHLD handling is set up before the baseline.
        runtime().block_on(async {
            let _ = tokio::process::Command::new("true").status().await;
        });
    });
    Ledger::open()
}

/// Runs an async reliability test under a [`Ledger`] on a current-thread
/// runtime built after the ledger opens and dropped before it closes (see
/// [`open_ledger`]). The whole test is bounded (2 minutes), so no await
/// can hang it.
pub fn with_ledger(test: impl AsyncFnOnce(&mut Ledger)) {
    const BOUND: Duration = Duration::from_secs(120);
    let mut ledger = open_ledger();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        if tokio::time::timeout(BOUND, test(&mut ledger))
            .await
            .is_err()
        {
            panic!("the test did not finish within {BOUND:?}");
        }
    });
    drop(runtime);
    ledger.close();
}

/// A runtime for one reliability test (two workers, as the CI machine has
/// two cores), built after the test's [`Ledger`] is open and dropped before
/// it closes: libtest runs tests on parallel threads, and another test's
/// runtime must not count against this test's fds.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Awaits `future`, panicking with `what` after `limit`: every await in a
/// reliability test is bounded.
pub async fn within<T>(
    limit: Duration,
    what: &str,
    future: impl std::future::Future<Output = T>,
) -> T {
    tokio::time::timeout(limit, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: not done within {limit:?}"))
}

/// Open file descriptors of process `pid` (`"self"` for this one).
pub fn fd_count(pid: &str) -> Option<u64> {
    let entries = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    u64::try_from(entries.count()).ok()
}

/// `Put(key, value)` on the KV plugin.
///
/// # Errors
///
/// The call's status.
pub async fn put(
    kv: &mut KvClient<Channel>,
    key: &str,
    value: Vec<u8>,
) -> Result<(), tonic::Status> {
    let request = pb::PutRequest {
        key: key.to_owned(),
        value,
    };
    kv.put(request).await.map(drop)
}

/// `Get(key)` on the KV plugin.
///
/// # Errors
///
/// The call's status (`NotFound` for a key never put).
pub async fn get(kv: &mut KvClient<Channel>, key: &str) -> Result<Vec<u8>, tonic::Status> {
    let request = pb::GetRequest {
        key: key.to_owned(),
    };
    kv.get(request).await.map(|r| r.into_inner().value)
}

/// p50, p99 and max of `samples`, for a test's log (never asserted).
pub fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |q: f64| {
        let index = ((samples.len().saturating_sub(1)) as f64 * q).round() as usize;
        samples.get(index).copied().unwrap_or_default()
    };
    format!(
        "n={} p50={:?} p99={:?} max={:?}",
        samples.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    )
}

//! Calls on the KV plugin every test plugin serves, bounded awaits, and
//! latency summaries.

use std::time::Duration;

use goplug::host::{Channel, Client};
use goplug_example_kv::pb::{self, kv_client::KvClient};

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

/// The `kv` plugin of `client`.
///
/// # Panics
///
/// When the host has no `kv` plugin.
pub fn kv(client: &Client) -> KvClient<Channel> {
    client.dispense_named("kv").expect("the kv plugin")
}

/// `Put(key, value)` then `Get(key)`, the value as text.
///
/// # Panics
///
/// When either call fails.
pub async fn put_get(client: &Client, key: &str, value: &str) -> String {
    let mut kv = kv(client);
    put(&mut kv, key, value.as_bytes().to_vec())
        .await
        .expect("put");
    String::from_utf8(get(&mut kv, key).await.expect("get")).expect("text")
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

//! What a supervised plugin costs: its process's memory, CPU time and fds
//! read at snapshot time, and the latency of the calls through its channel,
//! as fixed buckets. With the `metrics` feature, the same figures also go
//! to the `metrics` crate's facade.

use std::time::Duration;

/// The first bucket's upper bound; each next one doubles it.
const FIRST_BOUND: Duration = Duration::from_micros(50);
/// Bounds from 50 µs doubling up to past 10 s; slower calls count in the
/// overflow.
const BUCKETS: usize = 19;

/// The bucket bounds, shortest first.
fn bounds() -> impl Iterator<Item = Duration> {
    (0..BUCKETS).map(|i| FIRST_BOUND * (1u32 << i))
}

/// What the plugin's current process costs, read from `/proc` when the
/// status was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProcessUsage {
    /// Resident memory.
    pub rss_bytes: u64,
    /// CPU time, user plus system, over all its threads.
    pub cpu_time: Duration,
    /// Open file descriptors.
    pub open_fds: u64,
}

impl ProcessUsage {
    /// `pid`'s usage now; `None` when the process has gone.
    pub(super) fn read(pid: u32) -> Option<Self> {
        crate::sys::proc::usage(pid).map(|usage| Self {
            rss_bytes: usage.rss_bytes,
            cpu_time: usage.cpu_time,
            open_fds: usage.open_fds,
        })
    }
}

/// The latency of the calls through a supervised channel (all of the
/// plugin's processes, failed calls included), as counts in fixed buckets:
/// upper bounds from 50 µs doubling to past 10 s, and an overflow.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LatencyHistogram {
    /// Each bucket's upper bound (inclusive) and the calls within it (not
    /// cumulative), shortest first.
    pub buckets: Vec<(Duration, u64)>,
    /// Calls slower than the last bound.
    pub overflow: u64,
    /// All calls counted.
    pub count: u64,
    /// Their total time.
    pub sum: Duration,
}

impl LatencyHistogram {
    /// An estimate of the `q` quantile (0.0 to 1.0): the upper bound of the
    /// bucket it falls in, so within a factor of two above the true value.
    /// `None` with no calls, or when it falls in the overflow.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.count == 0 {
            return None;
        }
        // The rank of the quantile's call, 1-based.
        let rank = (q.clamp(0.0, 1.0) * self.count as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (bound, calls) in &self.buckets {
            seen += calls;
            if seen >= rank {
                return Some(*bound);
            }
        }
        None
    }

    /// The median's estimate (see [`quantile`](Self::quantile)).
    pub fn p50(&self) -> Option<Duration> {
        self.quantile(0.5)
    }

    /// The 99th percentile's estimate (see [`quantile`](Self::quantile)).
    pub fn p99(&self) -> Option<Duration> {
        self.quantile(0.99)
    }

    /// The mean latency, `None` with no calls.
    pub fn mean(&self) -> Option<Duration> {
        let count = u32::try_from(self.count).ok().filter(|count| *count > 0)?;
        Some(self.sum / count)
    }
}

/// The live histogram in the record: a few additions per call.
#[derive(Debug)]
pub(super) struct Latencies {
    counts: [u64; BUCKETS + 1],
    count: u64,
    sum: Duration,
}

impl Latencies {
    pub(super) fn new() -> Self {
        Self {
            counts: [0; BUCKETS + 1],
            count: 0,
            sum: Duration::ZERO,
        }
    }

    pub(super) fn record(&mut self, elapsed: Duration) {
        // The first bound at or above it; past the last: the overflow.
        let bucket = bounds()
            .position(|bound| elapsed <= bound)
            .unwrap_or(BUCKETS);
        self.counts[bucket] += 1;
        self.count += 1;
        self.sum = self.sum.saturating_add(elapsed);
    }

    pub(super) fn snapshot(&self) -> LatencyHistogram {
        LatencyHistogram {
            buckets: bounds().zip(self.counts).collect(),
            overflow: self.counts[BUCKETS],
            count: self.count,
            sum: self.sum,
        }
    }
}

/// The plugin's figures through the `metrics` facade: handles registered
/// with the recorder installed when the plugin was supervised.
#[cfg(feature = "metrics")]
#[derive(Debug)]
pub(super) struct Facade {
    calls_ok: metrics::Counter,
    calls_failed: metrics::Counter,
    duration: metrics::Histogram,
    restarts: metrics::Counter,
    in_flight: metrics::Gauge,
    rss: metrics::Gauge,
    cpu: metrics::Gauge,
    fds: metrics::Gauge,
}

#[cfg(feature = "metrics")]
impl Facade {
    pub(super) fn new(plugin: &str) -> Self {
        let plugin = plugin.to_owned();
        let calls = |outcome: &'static str| metrics::counter!("goplug_plugin_calls_total", "plugin" => plugin.clone(), "outcome" => outcome);
        Self {
            calls_ok: calls("ok"),
            calls_failed: calls("error"),
            duration: metrics::histogram!("goplug_plugin_call_duration_seconds", "plugin" => plugin.clone()),
            restarts: metrics::counter!("goplug_plugin_restarts_total", "plugin" => plugin.clone()),
            in_flight: metrics::gauge!("goplug_plugin_calls_in_flight", "plugin" => plugin.clone()),
            rss: metrics::gauge!("goplug_plugin_rss_bytes", "plugin" => plugin.clone()),
            cpu: metrics::gauge!("goplug_plugin_cpu_seconds", "plugin" => plugin.clone()),
            fds: metrics::gauge!("goplug_plugin_open_fds", "plugin" => plugin),
        }
    }

    pub(super) fn call_started(&self) {
        self.in_flight.increment(1.0);
    }

    pub(super) fn call_finished(&self, ok: bool, elapsed: Duration) {
        self.in_flight.decrement(1.0);
        if ok {
            self.calls_ok.increment(1);
        } else {
            self.calls_failed.increment(1);
        }
        self.duration.record(elapsed.as_secs_f64());
    }

    pub(super) fn restarted(&self) {
        self.restarts.increment(1);
    }

    /// The current process's usage; zero while none runs.
    pub(super) fn usage(&self, usage: Option<&ProcessUsage>) {
        let (rss, cpu, fds) = usage.map_or((0.0, 0.0, 0.0), |usage| {
            (
                usage.rss_bytes as f64,
                usage.cpu_time.as_secs_f64(),
                usage.open_fds as f64,
            )
        });
        self.rss.set(rss);
        self.cpu.set(cpu);
        self.fds.set(fds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_land_in_the_bucket_of_their_bound() {
        let mut latencies = Latencies::new();
        let cases = [
            (Duration::from_micros(1), FIRST_BOUND),
            (FIRST_BOUND, FIRST_BOUND),
            (Duration::from_micros(51), Duration::from_micros(100)),
            (Duration::from_millis(3), Duration::from_micros(3200)),
            (Duration::from_secs(10), Duration::from_micros(50 << 18)),
        ];
        for (elapsed, bound) in cases {
            let mut one = Latencies::new();
            one.record(elapsed);
            let histogram = one.snapshot();
            let hit: Vec<_> = histogram.buckets.iter().filter(|(_, n)| *n == 1).collect();
            assert_eq!(hit, [&(bound, 1)], "{elapsed:?}");
            latencies.record(elapsed);
        }
        latencies.record(Duration::from_secs(60));
        let histogram = latencies.snapshot();
        assert_eq!(histogram.count, 6);
        assert_eq!(histogram.overflow, 1);
        assert_eq!(histogram.buckets.iter().map(|(_, n)| n).sum::<u64>(), 5);
        assert!(
            histogram
                .buckets
                .last()
                .is_some_and(|(bound, _)| *bound >= Duration::from_secs(10))
        );
    }

    #[test]
    fn quantiles_are_the_bounds_of_their_buckets() {
        let mut latencies = Latencies::new();
        assert_eq!(latencies.snapshot().p50(), None);
        for _ in 0..98 {
            latencies.record(Duration::from_micros(70));
        }
        latencies.record(Duration::from_millis(1));
        latencies.record(Duration::from_millis(1));
        let histogram = latencies.snapshot();
        assert_eq!(histogram.p50(), Some(Duration::from_micros(100)));
        assert_eq!(histogram.quantile(0.98), Some(Duration::from_micros(100)));
        assert_eq!(histogram.p99(), Some(Duration::from_micros(1600)));
        assert_eq!(histogram.quantile(1.0), Some(Duration::from_micros(1600)));
        latencies.record(Duration::from_secs(100));
        assert_eq!(latencies.snapshot().quantile(1.0), None);
    }
}

#[cfg(all(test, feature = "metrics"))]
mod facade_tests {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    use metrics_util::{CompositeKey, MetricKind};

    use super::*;

    /// Name, labels and value as an exporter would see them.
    fn seen(recorder: &DebuggingRecorder) -> Vec<(MetricKind, String, Vec<String>, DebugValue)> {
        let mut seen: Vec<_> = recorder
            .snapshotter()
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value): (CompositeKey, _, _, _)| {
                let (kind, key) = key.into_parts();
                let labels = key
                    .labels()
                    .map(|l| format!("{}={}", l.key(), l.value()))
                    .collect();
                (kind, key.name().to_owned(), labels, value)
            })
            .collect();
        seen.sort_by(|a, b| (&a.1, &a.2).cmp(&(&b.1, &b.2)));
        seen
    }

    #[test]
    fn calls_restarts_and_usage_reach_the_recorder_under_the_plugin_label() {
        let recorder = DebuggingRecorder::new();
        let facade = metrics::with_local_recorder(&recorder, || Facade::new("kv"));
        facade.call_started();
        facade.call_finished(true, Duration::from_millis(2));
        facade.call_started();
        facade.call_finished(false, Duration::from_millis(4));
        facade.call_started();
        facade.restarted();
        facade.usage(Some(&ProcessUsage {
            rss_bytes: 4096,
            cpu_time: Duration::from_millis(1500),
            open_fds: 9,
        }));
        let plugin = || vec!["plugin=kv".to_owned()];
        let calls = |outcome: &str| vec!["plugin=kv".to_owned(), format!("outcome={outcome}")];
        let float = |value: f64| DebugValue::Gauge(value.into());
        assert_eq!(
            seen(&recorder),
            vec![
                (
                    MetricKind::Histogram,
                    "goplug_plugin_call_duration_seconds".to_owned(),
                    plugin(),
                    DebugValue::Histogram(vec![0.002.into(), 0.004.into()]),
                ),
                (
                    MetricKind::Gauge,
                    "goplug_plugin_calls_in_flight".to_owned(),
                    plugin(),
                    float(1.0)
                ),
                (
                    MetricKind::Counter,
                    "goplug_plugin_calls_total".to_owned(),
                    calls("error"),
                    DebugValue::Counter(1)
                ),
                (
                    MetricKind::Counter,
                    "goplug_plugin_calls_total".to_owned(),
                    calls("ok"),
                    DebugValue::Counter(1)
                ),
                (
                    MetricKind::Gauge,
                    "goplug_plugin_cpu_seconds".to_owned(),
                    plugin(),
                    float(1.5)
                ),
                (
                    MetricKind::Gauge,
                    "goplug_plugin_open_fds".to_owned(),
                    plugin(),
                    float(9.0)
                ),
                (
                    MetricKind::Counter,
                    "goplug_plugin_restarts_total".to_owned(),
                    plugin(),
                    DebugValue::Counter(1)
                ),
                (
                    MetricKind::Gauge,
                    "goplug_plugin_rss_bytes".to_owned(),
                    plugin(),
                    float(4096.0)
                ),
            ]
        );
        // The process gone: its usage reads zero.
        facade.usage(None);
        let rss = seen(&recorder)
            .into_iter()
            .find(|m| m.1 == "goplug_plugin_rss_bytes");
        assert_eq!(rss.map(|m| m.3), Some(float(0.0)));
    }
}

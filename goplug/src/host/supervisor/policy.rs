//! How a supervised plugin is kept serving: restart backoff, the circuit
//! that stops restarting a plugin that keeps failing, health checks, and
//! what calls do while it is down. The backoff and circuit arithmetic is
//! pure, so it is tested by tables.

use std::collections::VecDeque;
use std::time::Duration;

/// What a call made through a supervised plugin's channel does while the
/// plugin is down (restarting, or its circuit open).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WhenDown {
    /// Wait for the plugin to serve again, up to the call's deadline
    /// (`Request::set_timeout`) or this bound when it has none, then fail
    /// with `Unavailable`.
    Wait(Duration),
    /// Fail at once with `Unavailable`, naming the plugin and its state.
    FailFast,
}

/// A supervised plugin's restart policy. Defaults follow Nomad's plugin
/// restarts: 5 s, then four times longer each time, at most 2 min, with
/// ±20 % jitter.
#[derive(Clone, Debug)]
pub struct RestartPolicy {
    pub(super) initial_backoff: Duration,
    pub(super) max_backoff: Duration,
    pub(super) multiplier: u32,
    pub(super) jitter: f64,
    pub(super) reset_after: Duration,
    pub(super) circuit_failures: usize,
    pub(super) circuit_window: Duration,
    pub(super) health_interval: Option<Duration>,
    pub(super) health_timeout: Duration,
    pub(super) health_failures: u32,
    pub(super) when_down: WhenDown,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(120),
            multiplier: 4,
            jitter: 0.2,
            reset_after: Duration::from_secs(120),
            circuit_failures: 10,
            circuit_window: Duration::from_secs(30 * 60),
            health_interval: Some(Duration::from_secs(1)),
            health_timeout: Duration::from_secs(5),
            health_failures: 3,
            when_down: WhenDown::Wait(Duration::from_secs(30)),
        }
    }
}

impl RestartPolicy {
    /// The first restart's delay (default 5 s).
    pub fn initial_backoff(mut self, delay: Duration) -> Self {
        self.initial_backoff = delay;
        self
    }

    /// The longest delay between restarts (default 2 min).
    pub fn max_backoff(mut self, delay: Duration) -> Self {
        self.max_backoff = delay;
        self
    }

    /// How much longer each next delay is (default 4; at least 1).
    pub fn multiplier(mut self, factor: u32) -> Self {
        self.multiplier = factor.max(1);
        self
    }

    /// The random spread of each delay, as a fraction (default 0.2: ±20 %;
    /// clamped to 0..=1), so plugins that failed together do not restart
    /// together.
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// How long a plugin must serve before its next failure starts again
    /// from the first delay (default 2 min).
    pub fn reset_after(mut self, serving: Duration) -> Self {
        self.reset_after = serving;
        self
    }

    /// Opens the circuit after `failures` failures within `window`: the
    /// plugin is no longer restarted until [`reset`] (default 10 in 30 min).
    ///
    /// [`reset`]: super::SupervisedPlugin::reset
    pub fn circuit(mut self, failures: usize, window: Duration) -> Self {
        self.circuit_failures = failures.max(1);
        self.circuit_window = window;
        self
    }

    /// Health-checks the plugin every `interval` (default 1 s), each check
    /// failing after `timeout` (default 5 s); `None` checks only for exits.
    pub fn health_checks(mut self, interval: Option<Duration>, timeout: Duration) -> Self {
        self.health_interval = interval;
        self.health_timeout = timeout;
        self
    }

    /// How many health checks in a row must fail before the plugin is
    /// taken for hung and restarted (default 3; at least 1).
    pub fn health_failures(mut self, in_a_row: u32) -> Self {
        self.health_failures = in_a_row.max(1);
        self
    }

    /// What calls do while the plugin is down (default: wait up to 30 s).
    pub fn when_down(mut self, when_down: WhenDown) -> Self {
        self.when_down = when_down;
        self
    }

    /// The delay before restart number `attempt` (0 for the first), before
    /// jitter.
    pub(super) fn backoff(&self, attempt: u32) -> Duration {
        let factor = self.multiplier.saturating_pow(attempt);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }

    /// [`backoff`](Self::backoff) spread by `unit` (a random number in
    /// `0..1`) within the jitter.
    pub(super) fn backoff_with_jitter(&self, attempt: u32, unit: f64) -> Duration {
        let base = self.backoff(attempt).as_secs_f64();
        let spread = base * self.jitter * (unit.clamp(0.0, 1.0) * 2.0 - 1.0);
        Duration::from_secs_f64((base + spread).max(0.0))
    }
}

/// The failures of the last window, to tell when the circuit opens.
#[derive(Debug, Default)]
pub(super) struct FailureWindow {
    failures: VecDeque<Duration>,
}

impl FailureWindow {
    /// Records a failure at `now` (time since the supervisor started) and
    /// answers whether the circuit opens.
    pub(super) fn record(&mut self, now: Duration, policy: &RestartPolicy) -> bool {
        self.failures.push_back(now);
        while let Some(first) = self.failures.front() {
            if now.saturating_sub(*first) > policy.circuit_window {
                self.failures.pop_front();
            } else {
                break;
            }
        }
        self.failures.len() >= policy.circuit_failures
    }

    /// Forgets every failure (the circuit is reset).
    pub(super) fn clear(&mut self) {
        self.failures.clear();
    }

    /// Failures within the window.
    pub(super) fn len(&self) -> usize {
        self.failures.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn backoff_grows_like_nomads_then_stays_at_the_ceiling() {
        let policy = RestartPolicy::default();
        let table = [(0, 5), (1, 20), (2, 80), (3, 120), (4, 120), (60, 120)];
        for (attempt, secs) in table {
            assert_eq!(policy.backoff(attempt), S(secs), "attempt {attempt}");
        }
        let fast = RestartPolicy::default()
            .initial_backoff(Duration::from_millis(100))
            .multiplier(2)
            .max_backoff(S(1));
        let table = [(0, 100), (1, 200), (2, 400), (3, 800), (4, 1000)];
        for (attempt, millis) in table {
            assert_eq!(fast.backoff(attempt), Duration::from_millis(millis));
        }
    }

    #[test]
    fn jitter_spreads_within_its_fraction() {
        let policy = RestartPolicy::default();
        let table = [(0.0, 4.0), (0.5, 5.0), (1.0, 6.0)];
        for (unit, secs) in table {
            let delay = policy.backoff_with_jitter(0, unit).as_secs_f64();
            assert!((delay - secs).abs() < 1e-9, "{unit}: {delay}");
        }
        let none = RestartPolicy::default().jitter(f64::NAN);
        assert_eq!(none.backoff_with_jitter(1, 0.9), S(20));
    }

    #[test]
    fn the_circuit_opens_at_n_failures_within_the_window() {
        let policy = RestartPolicy::default().circuit(3, S(60));
        let mut window = FailureWindow::default();
        let table = [
            (0, false),
            (10, false),
            (100, false),
            (130, false),
            (150, true),
        ];
        for (at, opens) in table {
            assert_eq!(window.record(S(at), &policy), opens, "failure at {at} s");
        }
        window.clear();
        assert_eq!(window.len(), 0);
        assert!(!window.record(S(151), &policy));
    }
}

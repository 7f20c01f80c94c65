//! goplug's reliability suite (`research/reliability.md` §5, T01–T38):
//! launch and handshake, runtime faults and lifecycle, stdio and logs,
//! transport abuse, load and soak. Every test runs under a
//! [`goplug_test::Harness::exclusive`]: alone in this process, its own
//! processes gone, no zombies, fds, threads and socket dir at baseline.
//!
//! One binary, so the suite links once; run one series with a filter
//! (`cargo test -p goplug-test --test reliability launch::`). The 2-minute
//! soak is ignored by default: `scripts/soak.sh` runs it.

mod launch;
mod lifecycle;
mod load;
mod stdio;
mod supervision;
mod transport;

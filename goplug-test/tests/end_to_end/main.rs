//! goplug end to end: Rust hosts and the crate's test plugins (and Go or
//! Python peers where a test compares behaviours): launch and handshake,
//! checksums, reattach and host lifecycles, the plugin side, stdio and
//! logs, TLS, the multiplexed broker, net/rpc and plugin versions. Every
//! test that starts a plugin takes a [`goplug_test::Harness::shared`]: its
//! checks cover only its own processes and sockets, so the tests run in
//! parallel.
//!
//! One binary, so these tests link once; run one group with a filter
//! (`cargo test -p goplug-test --test end_to_end checksum::`).

mod checksum;
mod first_hour;
mod host;
mod in_process;
mod lifecycle;
mod mux;
mod netrpc;
mod plugin;
mod stdio_logs;
mod tls;
mod version;

//! Stdout/stderr syncing (`GRPCStdio`) and hclog log forwarding, between
//! Rust and Go hosts and plugins: what the host records (level, message,
//! key/values) and the bytes that reach the sync writers.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use goplug::host::shell_command;
use goplug_test::{FAKE, Harness, PluginLogs, go_bin};
use serde_json::Value;
use tracing::Level;

fn in_dir(line: &str, dir: &Path) -> Command {
    let mut command = shell_command(line);
    command.current_dir(dir);
    command
}

async fn wait_for(path: &Path) {
    let started = Instant::now();
    while !path.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (10 s at most) until an event with `message` was recorded.
async fn logged(logs: &PluginLogs, message: &str) {
    let started = Instant::now();
    while !logs.events().iter().any(|(_, m, _)| m == message) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no event {message:?} in {:#?}",
            logs.events()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The recorded event with this message, as (level, fields).
fn event(logs: &PluginLogs, message: &str) -> (Level, String) {
    logs.events()
        .into_iter()
        .find(|(_, m, _)| m == message)
        .map(|(level, _, fields)| (level, fields))
        .unwrap_or_else(|| panic!("no event {message:?} in {:#?}", logs.events()))
}

/// hclog's key/values arrive as fields of their own, not in one text.
fn assert_kv(logs: &PluginLogs, message: &str) {
    let event = logs
        .record(message)
        .unwrap_or_else(|| panic!("no event {message:?} in {:#?}", logs.records()));
    assert_eq!(event.field("foo"), Some("bar"), "{message}: {event:?}");
    assert_eq!(event.field("n"), Some("12"), "{message}: {event:?}");
    assert_eq!(event.field("fields"), None, "{message}: {event:?}");
    assert_eq!(event.field("@module"), None, "{message}: {event:?}");
}

#[test]
fn plugin_logs_reach_the_rust_host_at_their_levels() {
    let logs = PluginLogs::default();
    Harness::shared().run_logged(logs.clone(), async |s| {
        let levels = [
            ("trace message", Level::TRACE),
            ("debug message", Level::DEBUG),
            ("info message", Level::INFO),
            ("warn message", Level::WARN),
            ("error message", Level::ERROR),
        ];

        // A Rust plugin, through goplug::log.
        let work = &s.work;
        let plugin = format!("GOPLUG_LOG=trace exec '{FAKE}' kv-logs");
        let client = s.kv_host(in_dir(&plugin, work)).start().await.unwrap();
        wait_for(&work.join("logs-done")).await;
        assert!(client.shutdown().await.graceful);
        for (message, level) in levels {
            let (got, _) = event(&logs, message);
            assert_eq!(got, level, "rust plugin: {message}");
            assert_kv(&logs, message);
            // hclog's @module is a field of its own, and the target's last
            // part, so `RUST_LOG=goplug::plugin::fake_plugin=..` selects it.
            let record = logs.record(message).unwrap();
            assert_eq!(record.module, "fake_plugin");
            assert_eq!(record.target, "goplug::plugin::fake_plugin");
        }

        // A Go plugin, through hclog: the same, plus go-plugin's text rules.
        let logs_before = logs.events().len();
        let plugin = format!("PROBE_LOG=1 exec '{}'", go_bin("probe-plugin").display());
        let client = s.kv_host(in_dir(&plugin, work)).start().await.unwrap();
        logged(&logs, "main.main()").await;
        assert!(client.shutdown().await.graceful);
        let go_events: Vec<_> = logs.records().into_iter().skip(logs_before).collect();
        for (message, level) in levels {
            let event = go_events
                .iter()
                .find(|event| event.message == message)
                .unwrap_or_else(|| panic!("go plugin: no {message:?} in {go_events:#?}"));
            assert_eq!(event.level, level, "go plugin: {message}");
            assert_eq!(event.field("foo"), Some("bar"), "go plugin: {event:?}");
            assert_eq!(event.field("n"), Some("12"), "go plugin: {event:?}");
        }
        for (message, level) in [
            // The level prefix is the event's level, not part of its message.
            ("plain text warning", Level::WARN),
            ("panic: pretend panic", Level::ERROR),
            ("goroutine 1 [running]:", Level::ERROR),
            ("main.main()", Level::ERROR),
        ] {
            assert_eq!(event(&logs, message).0, level, "go plugin: {message}");
        }
    });
}

/// A plugin inherits its host's environment; a `RUST_LOG` meant for the
/// host must not filter the plugin's logs away (the plugin reads
/// `GOPLUG_LOG`, default info, and the host filters what arrives).
#[test]
fn a_host_only_rust_log_does_not_silence_the_plugin() {
    let logs = PluginLogs::default();
    Harness::shared().run_logged(logs.clone(), async |s| {
        let work = &s.work;
        let plugin = format!("RUST_LOG=only_the_host=trace exec '{FAKE}' kv-logs");
        let client = s.kv_host(in_dir(&plugin, work)).start().await.unwrap();
        wait_for(&work.join("logs-done")).await;
        logged(&logs, "error message").await;
        assert!(client.shutdown().await.graceful);
        for (message, level) in [
            ("info message", Level::INFO),
            ("warn message", Level::WARN),
            ("error message", Level::ERROR),
        ] {
            assert_eq!(event(&logs, message).0, level);
        }
        assert!(
            !logs.events().iter().any(|(_, m, _)| m == "debug message"),
            "the plugin's default filter is info"
        );
    });
}

/// A host filter can pick plugin logs by the plugin's module: each
/// event's target is `goplug::plugin::<module>`.
#[test]
fn a_host_filter_selects_plugin_logs_by_module() {
    let logs = PluginLogs::default();
    let filter = "goplug::plugin::fake_plugin=warn,goplug::plugin::another_module=trace";
    Harness::shared().run_logged_filtered(logs.clone(), filter, async |s| {
        let work = &s.work;
        let plugin = format!("GOPLUG_LOG=trace exec '{FAKE}' kv-logs");
        let client = s.kv_host(in_dir(&plugin, work)).start().await.unwrap();
        wait_for(&work.join("logs-done")).await;
        logged(&logs, "error message").await;
        assert!(client.shutdown().await.graceful);
        let messages: Vec<String> = logs.records().into_iter().map(|e| e.message).collect();
        assert!(messages.iter().any(|m| m == "warn message"), "{messages:?}");
        for quiet in ["trace message", "debug message", "info message"] {
            assert!(
                !messages.iter().any(|m| m == quiet),
                "{quiet}: {messages:?}"
            );
        }
    });
}

#[tokio::test]
async fn stdout_reaches_the_rust_hosts_writers() {
    let s = Harness::shared();
    let work = &s.work;
    let out = work.join("synced-stdout");
    let err = work.join("synced-stderr");

    // Rust plugin: println! after the handshake.
    let client = s
        .kv_host(in_dir(&format!("exec '{FAKE}' kv-print"), work))
        .sync_stdout(tokio::fs::File::create(&out).await.unwrap())
        .start()
        .await
        .unwrap();
    wait_for(&work.join("print-done")).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(client.shutdown().await.graceful);
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "hello from the plugin's stdout\n"
    );

    // Go plugin: os.Stdout and os.Stderr, and 1 MiB under backpressure.
    let size = 1 << 20;
    let plugin = format!(
        "PROBE_STDOUT_TEXT=hello PROBE_STDERR_TEXT=oops PROBE_STDOUT_BYTES={size} exec '{}'",
        go_bin("probe-plugin").display()
    );
    let client = s
        .kv_host(in_dir(&plugin, work))
        .sync_stdout(tokio::fs::File::create(&out).await.unwrap())
        .sync_stderr(tokio::fs::File::create(&err).await.unwrap())
        .start()
        .await
        .unwrap();
    let expected_len = "hello\n".len() + size;
    let started = Instant::now();
    while std::fs::metadata(&out).map_or(0, |m| m.len() as usize) < expected_len {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "stdout stalled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(client.shutdown().await.graceful);
    let synced = std::fs::read(&out).unwrap();
    assert_eq!(&synced[..6], b"hello\n");
    let pattern = b"0123456789abcdef";
    assert!(
        synced[6..]
            .iter()
            .enumerate()
            .all(|(i, b)| *b == pattern[i % 16]),
        "stdout bytes were reordered or lost"
    );
    assert_eq!(synced.len(), expected_len);
    assert_eq!(std::fs::read_to_string(&err).unwrap(), "oops\n");
}

#[tokio::test]
async fn a_plugin_without_the_stdio_service_is_fine() {
    let s = Harness::shared();
    let work = &s.work;
    // Serves health only: StreamStdio is Unimplemented, as for old plugins.
    let client = s
        .kv_host(in_dir(&format!("exec '{FAKE}' no-controller"), work))
        .shutdown_grace(Duration::from_millis(200))
        .sync_stdout(tokio::io::sink())
        .start()
        .await
        .unwrap();
    client.ping().await.unwrap();
    assert!(!client.exited());
    client.shutdown().await;
}

#[test]
fn long_lines_and_invalid_utf8_on_stderr_are_handled() {
    let logs = PluginLogs::default();
    Harness::shared().run_logged(logs.clone(), async |s| {
        let work = &s.work;
        let raw = work.join("raw-stderr");
        // A 1 MiB line without a newline inside, then invalid UTF-8, then a
        // normal line; the plugin then starts normally.
        let script = format!(
            "head -c 1048576 /dev/zero | tr '\\0' a >&2; echo >&2; \
         printf '\\377\\376bad\\n' >&2; echo after >&2; exec '{FAKE}' kv"
        );
        let client = s
            .kv_host(in_dir(&script, work))
            .plugin_log_buffer_size(64 * 1024)
            .stderr(tokio::fs::File::create(&raw).await.unwrap())
            .start()
            .await
            .unwrap();
        assert!(client.shutdown().await.graceful);
        let copied = std::fs::read(&raw).unwrap();
        // The raw copy is byte-exact: the long line whole, one newline.
        assert!(copied.starts_with(&[b'a'; 1 << 20]));
        assert_eq!(&copied[1 << 20..(1 << 20) + 1], b"\n");
        assert!(copied.windows(6).any(|w| w == b"\xff\xfebad\n"));
        // The long line was logged in 16 verbatim debug pieces, not dropped.
        let pieces = logs
            .events()
            .iter()
            .filter(|(_, m, _)| m.chars().all(|c| c == 'a') && !m.is_empty())
            .count();
        assert_eq!(pieces, 16);
        assert!(
            logs.events()
                .iter()
                .any(|(l, m, _)| *l == Level::DEBUG && m == "after")
        );
    });
}

fn log_line<'a>(report: &'a Value, prefix: &str) -> &'a str {
    report["log"]
        .as_array()
        .and_then(|lines| {
            lines
                .iter()
                .filter_map(Value::as_str)
                .find(|l| l.starts_with(prefix))
        })
        .unwrap_or_else(|| panic!("no host log line starting {prefix:?} in {report:#}"))
}

#[test]
fn a_go_host_logs_a_rust_plugins_events_like_a_go_plugins() {
    let s = Harness::shared();
    let work = &s.work;
    for (name, plugin) in [
        (
            "go",
            format!("PROBE_LOG=1 exec '{}'", go_bin("probe-plugin").display()),
        ),
        ("rust", format!("GOPLUG_LOG=trace exec '{FAKE}' kv-logs")),
    ] {
        let report =
            goplug_test::probe_host(&plugin, &["-ping", "-log-all", "-wait", "700ms"], work);
        assert_eq!(report["ok"], true, "{name}: {report}");
        for prefix in [
            "[TRACE] plugin.sh: trace message:",
            "[DEBUG] plugin.sh: debug message:",
            "[INFO]  plugin.sh: info message:",
            "[WARN]  plugin.sh: warn message:",
            "[ERROR] plugin.sh: error message:",
        ] {
            let line = log_line(&report, prefix);
            assert!(
                line.contains("foo=bar") && line.contains("n=12"),
                "{name}: {line}"
            );
        }
    }
}

#[test]
fn a_go_host_receives_a_rust_plugins_stdout() {
    let s = Harness::shared();
    let work = &s.work;
    let out: PathBuf = work.join("go-synced-stdout");
    let out_flag = out.display().to_string();
    // One line, then 1 MiB under backpressure, byte-exact.
    let report = goplug_test::probe_host(
        &format!("exec '{FAKE}' kv-print"),
        &[
            "-ping",
            "-sync-stdout",
            &out_flag,
            "-wait-stdout-bytes",
            "31",
            "-wait",
            "100ms",
        ],
        work,
    );
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "hello from the plugin's stdout\n"
    );

    let size = 1024 * 1024;
    let report = goplug_test::probe_host(
        &format!("exec '{FAKE}' kv-chatty"),
        &[
            "-ping",
            "-sync-stdout",
            &out_flag,
            "-wait-stdout-bytes",
            &size.to_string(),
        ],
        work,
    );
    assert_eq!(report["ok"], true, "{report}");
    let synced = std::fs::read(&out).unwrap();
    assert_eq!(synced.len(), size, "{report}");
    let line = format!("{}\n", "x".repeat(1023));
    assert!(synced.chunks(1024).all(|chunk| chunk == line.as_bytes()));
}

#[tokio::test]
async fn a_hundred_megabytes_of_stdout_flow_through_in_bounded_memory() {
    struct Counting(std::sync::Arc<std::sync::atomic::AtomicUsize>);
    impl tokio::io::AsyncWrite for Counting {
        fn poll_write(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            self.0
                .fetch_add(buf.len(), std::sync::atomic::Ordering::Relaxed);
            std::task::Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }
    fn rss_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0)
    }
    let s = Harness::shared();
    let work = &s.work;
    let size: usize = 100 << 20;
    let plugin = format!(
        "PROBE_STDOUT_BYTES={size} exec '{}'",
        go_bin("probe-plugin").display()
    );
    let received = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let before = rss_kib();
    let client = s
        .kv_host(in_dir(&plugin, work))
        .sync_stdout(Counting(received.clone()))
        .start()
        .await
        .unwrap();
    let started = Instant::now();
    while received.load(std::sync::atomic::Ordering::Relaxed) < size {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "stalled at {received:?} bytes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(client.shutdown().await.graceful);
    assert_eq!(received.load(std::sync::atomic::Ordering::Relaxed), size);
    // The host streams it through; it never holds the 100 MiB.
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    assert!(grown_mib < 50, "host peak memory grew by {grown_mib} MiB");
}

#[tokio::test]
async fn a_plugin_dying_mid_stream_ends_the_stream_cleanly() {
    let s = Harness::shared();
    let work = &s.work;
    let out = work.join("partial");
    let plugin = format!(
        "PROBE_STDOUT_BYTES={} exec '{}'",
        100 << 20,
        go_bin("probe-plugin").display()
    );
    let client = s
        .kv_host(in_dir(&plugin, work))
        .sync_stdout(tokio::fs::File::create(&out).await.unwrap())
        .start()
        .await
        .unwrap();
    // Kill it once the stream is under way.
    let started = Instant::now();
    while std::fs::metadata(&out).map_or(0, |m| m.len()) < 1 << 20 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "stdout never started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(client.pid().expect("a local plugin has a pid") as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let stopping = Instant::now();
    let report = client.shutdown().await;
    assert!(stopping.elapsed() < Duration::from_secs(10), "{report:?}");
    assert!(!report.status.unwrap().success());
    // What arrived is an exact prefix of what was sent.
    let partial = std::fs::read(&out).unwrap();
    let pattern = b"0123456789abcdef";
    assert!(
        partial
            .iter()
            .enumerate()
            .all(|(i, b)| *b == pattern[i % 16])
    );
    assert!(partial.len() < 100 << 20);
}

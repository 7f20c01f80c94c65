//! Reliability suite, series C: stdio and logs
//! (`research/reliability.md` §5, T23–T27). Every test runs under a
//! [`Harness::exclusive`]: its processes gone, no zombies, fds and socket
//! dir at baseline. The log tests' subscriber is installed on every thread
//! of their runtime ([`Harness::run_logged`]).

use std::time::{Duration, Instant};

use goplug::host::{Channel, Checksum, Client, ClientBuilder};
use goplug_example_kv::pb::kv_client::KvClient;
use goplug_test::{
    Harness, NOISY, PluginLogs, get, percentiles, put, scaled, status_kib, step, within,
};
use tokio::task::JoinSet;
use tracing::Level;

/// §5's bound on a plugin write loop the host must never block (2 s), × 3.
fn never_blocked() -> Duration {
    scaled(Duration::from_secs(6))
}

/// Starts the noisy plugin with the host `configure` returns.
async fn start(
    h: &Harness,
    configure: impl FnOnce(ClientBuilder) -> ClientBuilder,
) -> (Client, KvClient<Channel>) {
    let host = configure(h.kv_host(h.plugin(&NOISY, "")));
    let client = within(step(), "plugin start", host.start())
        .await
        .expect("the plugin starts");
    h.track(client.pid().expect("a launched plugin has a pid"));
    let kv = client.dispense_named("kv").expect("the kv plugin");
    (client, kv)
}

/// Starts a plugin action (see `noisy-plugin`) and returns its reply.
async fn begin(kv: &mut KvClient<Channel>, action: &str) -> Vec<u8> {
    within(step(), action, get(kv, &format!("start:{action}")))
        .await
        .unwrap_or_else(|e| panic!("starting {action}: {e}"))
}

/// How long the plugin's write loop for `action` took, once it is done.
async fn finished(kv: &mut KvClient<Channel>, action: &str) -> Duration {
    let key = format!("done:{action}");
    let started = Instant::now();
    loop {
        match get(kv, &key).await {
            Ok(reply) => {
                let reply = String::from_utf8_lossy(&reply).into_owned();
                let millis: u64 = reply
                    .parse()
                    .unwrap_or_else(|_| panic!("{action}: {reply}"));
                return Duration::from_millis(millis);
            }
            Err(status) if status.code() == tonic::Code::NotFound => {}
            Err(status) => panic!("{action}: {status}"),
        }
        assert!(started.elapsed() < step(), "{action} never finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the host has logged `message`.
async fn logged(logs: &PluginLogs, message: &str) {
    let started = Instant::now();
    while !logs.events().iter().any(|(_, m, _)| m == message) {
        assert!(started.elapsed() < step(), "{message:?} never logged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Restarts this process's peak RSS (`VmHWM`) from its current RSS.
fn reset_peak_rss() {
    std::fs::write("/proc/self/clear_refs", "5").expect("resetting VmHWM");
}

fn peak_rss_kib() -> u64 {
    status_kib("self", "VmHWM").expect("VmHWM of this process")
}

/// T23: a 10 MiB stderr line without a newline is logged at debug in
/// 64 KiB pieces, never held whole; the hclog JSON lines after it keep their
/// levels, and the plugin's writes never wait on the host.
#[test]
fn t23_a_ten_mib_stderr_line_is_split_and_the_json_after_it_keeps_its_levels() {
    let logs = PluginLogs::keeping_message_bytes(64);
    Harness::exclusive().run_logged(logs.clone(), async |h| {
        let (client, mut kv) = start(h, |host| host).await;
        reset_peak_rss();
        let rss_before = peak_rss_kib();
        begin(&mut kv, "stderr-long-line").await;
        let writing = finished(&mut kv, "stderr-long-line").await;
        logged(&logs, "json three").await;
        let grown_kib = peak_rss_kib().saturating_sub(rss_before);
        eprintln!(
            "T23: the plugin wrote 10 MiB in {writing:?}; host peak RSS grew {grown_kib} KiB"
        );
        assert!(
            writing < never_blocked(),
            "the plugin's writes took {writing:?}"
        );
        let events = logs.events();
        let pieces: Vec<_> = events
            .iter()
            .filter(|(_, m, _)| !m.is_empty() && m.bytes().all(|b| b == b'a'))
            .collect();
        assert_eq!(pieces.len(), 160, "10 MiB in 64 KiB pieces");
        assert!(pieces.iter().all(|(level, _, _)| *level == Level::DEBUG));
        for (message, level) in [
            ("json one", Level::INFO),
            ("json two", Level::WARN),
            ("json three", Level::ERROR),
        ] {
            let found = events.iter().find(|(_, m, _)| m == message);
            assert_eq!(found.map(|e| e.0), Some(level), "{message}");
        }
        assert!(grown_kib < 1024, "host peak RSS grew by {grown_kib} KiB");
        assert!(within(step(), "shutdown", client.shutdown()).await.graceful);
    });
}

/// T24: a plugin floods stderr with short lines while serving 1,000
/// calls: the flood never blocks the plugin, every call succeeds, and the
/// host's memory stays bounded. `GOPLUG_FLOOD_MIB` sets the flood's size
/// (default 20 MiB; §5 says 100).
#[test]
fn t24_a_stderr_flood_neither_blocks_the_plugin_nor_fails_calls() {
    let flood_mib: usize = std::env::var("GOPLUG_FLOOD_MIB")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(20);
    Harness::exclusive().run(async |h| {
        let (client, mut kv) = start(h, |host| host).await;
        reset_peak_rss();
        let rss_before = peak_rss_kib();
        let flood = format!("stderr-flood:{}", flood_mib << 20);
        begin(&mut kv, &flood).await;
        let mut callers = JoinSet::new();
        for task in 0..10 {
            let mut kv = kv.clone();
            callers.spawn(async move {
                let mut latencies = Vec::new();
                for n in 0..50 {
                    let key = format!("t{task}-{n}");
                    let sent = Instant::now();
                    put(&mut kv, &key, key.clone().into_bytes()).await?;
                    let value = get(&mut kv, &key).await?;
                    latencies.push(sent.elapsed());
                    assert_eq!(value, key.as_bytes());
                }
                Ok::<_, tonic::Status>(latencies)
            });
        }
        let latencies: Vec<Duration> = within(step(), "1,000 calls", callers.join_all())
            .await
            .into_iter()
            .flat_map(|latencies| latencies.expect("every call succeeds"))
            .collect();
        assert_eq!(latencies.len(), 500, "500 put+get pairs");
        let writing = finished(&mut kv, "stderr-flood").await;
        let grown_kib = peak_rss_kib().saturating_sub(rss_before);
        eprintln!(
            "T24: {flood_mib} MiB of stderr in {writing:?}; put+get {}; host peak RSS grew {grown_kib} KiB",
            percentiles(latencies)
        );
        assert!(grown_kib < 16 * 1024, "host peak RSS grew by {grown_kib} KiB");
        assert!(within(step(), "shutdown", client.shutdown()).await.graceful);
    });
}

/// T25: a 1 MiB line and 50 MiB more written to the real stdout after
/// the handshake are drained and discarded by the host: the plugin is never
/// blocked and calls keep working. The same on the synced stdout (8 MiB:
/// it is backpressured by design, as go-plugin's, and slow in debug builds)
/// with no sink configured: consumed, and calls keep working.
#[test]
fn t25_stdout_floods_after_the_handshake_are_drained() {
    Harness::exclusive().run(async |h| {
        let (client, mut kv) = start(h, |host| host).await;
        for (action, more_mib, bound) in [
            ("stdout-raw", 50, never_blocked()),
            ("stdout-synced", 8, step()),
        ] {
            begin(&mut kv, &format!("{action}:{}", more_mib << 20)).await;
            let writing = finished(&mut kv, action).await;
            eprintln!("T25: {action}: {} MiB written in {writing:?}", more_mib + 1);
            assert!(writing < bound, "{action}: the writes took {writing:?}");
            put(&mut kv, "after", action.as_bytes().to_vec())
                .await
                .unwrap();
            assert_eq!(get(&mut kv, "after").await.unwrap(), action.as_bytes());
        }
        assert!(within(step(), "shutdown", client.shutdown()).await.graceful);
    });
}

/// Picks a logged message.
type Matcher = dyn Fn(&str) -> bool;

/// T26: log lines no parser should trust (invalid UTF-8, NUL, terminal
/// escapes, JSON nested 100,000 deep, a numeric `@level`) are logged as
/// text at debug; the host neither panics nor overflows its stack.
#[test]
fn t26_hostile_log_lines_are_logged_as_text_at_debug() {
    let logs = PluginLogs::default();
    Harness::exclusive().run_logged(logs.clone(), async |h| {
        // Room for the whole 200 KB nested line, so the JSON parser sees it.
        let (client, mut kv) = start(h, |host| host.plugin_log_buffer_size(1 << 20)).await;
        begin(&mut kv, "hostile").await;
        logged(&logs, "hostile-done").await;
        let events = logs.events();
        let level_of = |matches: &Matcher| {
            let found: Vec<_> = events.iter().filter(|(_, m, _)| matches(m)).collect();
            assert_eq!(found.len(), 1, "{found:?}");
            found[0].0
        };
        let cases: [(&str, &Matcher); 6] = [
            ("invalid UTF-8", &|m| {
                m.starts_with("invalid utf-8 \u{fffd}")
            }),
            ("NUL", &|m| m == "a NUL \0 inside"),
            ("ANSI escapes", &|m| m.starts_with("\x1b[31mred\x1b[0m")),
            ("100k nested [", &|m| {
                m.starts_with("{\"@level\":\"error\",\"@message\":\"deep\"") && m.len() > 200_000
            }),
            ("@level 7", &|m| m == "{\"@level\": 7}"),
            ("@level 7 with a message", &|m| m.contains("level seven")),
        ];
        for (case, matches) in cases {
            assert_eq!(level_of(matches), Level::DEBUG, "{case}");
        }
        assert_eq!(level_of(&|m| m == "hostile-done"), Level::WARN);
        client
            .ping()
            .await
            .expect("the host still talks to the plugin");
        assert!(within(step(), "shutdown", client.shutdown()).await.graceful);
    });
}

/// T27: a plugin writes 1 MiB to its synced stdout and exits on its own:
/// the host's sink holds exactly those bytes once `wait_exit` and then
/// `shutdown` return. Three times, since a loss would be a race.
#[test]
fn t27_synced_stdout_written_before_exit_is_not_lost() {
    Harness::exclusive().run(async |h| {
        let scratch = h.scratch("t27");
        for run in 0..3 {
            let sink = scratch.join(format!("stdout-{run}"));
            let file = tokio::fs::File::create(&sink).await.unwrap();
            let (client, mut kv) = start(h, |host| host.sync_stdout(file)).await;
            let sent = String::from_utf8(begin(&mut kv, "synced-exit").await).unwrap();
            assert!(client.wait_exit(step()).await, "the plugin never exited");
            let at_exit = std::fs::read(&sink).unwrap();
            let report = within(step(), "shutdown", client.shutdown()).await;
            assert!(report.status.is_some_and(|s| s.success()), "{report:?}");
            let at_shutdown = std::fs::read(&sink).unwrap();
            eprintln!(
                "T27 run {run}: {} bytes when wait_exit returned, {} when shutdown returned",
                at_exit.len(),
                at_shutdown.len()
            );
            for (when, received) in [("wait_exit", at_exit), ("shutdown", at_shutdown)] {
                assert_eq!(received.len(), 1 << 20, "run {run}, at {when}");
                let sum = Checksum::of_bytes(&received).to_string();
                assert_eq!(sum, sent, "run {run}, at {when}");
            }
        }
    });
}

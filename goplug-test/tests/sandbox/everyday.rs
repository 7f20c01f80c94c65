//! What go-plugin plugins do every day, under the default sandbox and
//! AutoMTLS: handshake, calls, logs, stdout and stderr through GRPCStdio,
//! and a graceful shutdown. (Broker callbacks both ways are in
//! examples/bidirectional's `a_sandboxed_plugin_still_calls_back_into_the_host`.)

use std::path::Path;
use std::time::Duration;

use goplug::host::Sandbox;
use goplug_test::{FAKE, Harness, PluginLogs, go_bin, scaled};

/// Waits until `check` holds, `what` naming it in the failure.
async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + scaled(Duration::from_secs(10));
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn a_sandboxed_go_plugin_logs_prints_answers_and_stops_gracefully() {
    let logs = PluginLogs::default();
    Harness::shared().run_logged(logs.clone(), async |s| {
        let (out, err) = (s.path("stdout"), s.path("stderr"));
        let mut command = s.command(go_bin("probe-plugin"));
        command.envs([
            ("PROBE_LOG", "1"),
            ("PROBE_STDOUT_TEXT", "hello"),
            ("PROBE_STDERR_TEXT", "oops"),
        ]);
        let client = s
            .kv_host(command)
            .auto_mtls(true)
            .sandbox(Sandbox::new())
            .sync_stdout(tokio::fs::File::create(&out).await.unwrap())
            .sync_stderr(tokio::fs::File::create(&err).await.unwrap())
            .start()
            .await
            .unwrap();
        assert!(client.tls_version().is_some());
        assert!(client.sandbox_report().is_some_and(|r| r.is_complete()));
        let value = goplug_test::put_get(&client, "k", "v").await;
        assert!(value.starts_with('v'), "{value}");
        until("the plugin's stdout and stderr", || {
            text(&out) == "hello\n" && text(&err) == "oops\n"
        })
        .await;
        until("the plugin's logs", || {
            logs.events().iter().any(|(_, m, _)| m == "main.main()")
        })
        .await;
        assert!(client.shutdown().await.graceful);
        s.assert_clean().await;
    });
}

#[test]
fn a_sandboxed_rust_plugin_logs_prints_answers_and_stops_gracefully() {
    let logs = PluginLogs::default();
    Harness::shared().run_logged(logs.clone(), async |s| {
        let out = s.path("stdout");
        for mode in ["kv-logs", "kv-print"] {
            let client = s
                .kv_host(s.plugin(&FAKE, mode))
                .auto_mtls(true)
                .sandbox(Sandbox::new())
                .sync_stdout(tokio::fs::File::create(&out).await.unwrap())
                .start()
                .await
                .unwrap();
            assert!(client.tls_version().is_some(), "{mode}");
            assert!(client.sandbox_report().is_some_and(|r| r.is_complete()));
            let value = goplug_test::put_get(&client, "k", "v").await;
            assert!(value.starts_with('v'), "{mode}: {value}");
            if mode == "kv-logs" {
                until("the plugin's logs", || {
                    logs.events().iter().any(|(_, m, _)| m == "error message")
                })
                .await;
            } else {
                until("the plugin's stdout", || {
                    text(&out) == "hello from the plugin's stdout\n"
                })
                .await;
            }
            assert!(client.shutdown().await.graceful, "{mode}");
        }
        s.assert_clean().await;
    });
}

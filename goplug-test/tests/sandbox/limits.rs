//! Resource limits: a plugin that hits one ends, and the host reads a
//! typed cause, never a hang.

use std::time::Duration;

use goplug::SandboxFeature;
use goplug::host::{Client, ExitCause, Sandbox, SandboxMode};
use goplug_test::Harness;

use super::{probes, start};

/// Fires `probe:<probe>`, which must not answer (the plugin dies), and
/// returns how the plugin ended.
async fn bomb(client: &Client, probe: &str) -> ExitCause {
    let mut kv = goplug_test::kv(client);
    let key = format!("probe:{probe}");
    let call = goplug_test::get(&mut kv, &key);
    let answer = tokio::time::timeout(goplug_test::scaled(Duration::from_secs(30)), call).await;
    assert!(
        !matches!(answer, Ok(Ok(_))),
        "probe {probe} answered: {answer:?}"
    );
    assert!(
        client.wait_exit(goplug_test::step()).await,
        "the plugin outlived probe {probe}"
    );
    client.exit_cause().expect("an exit status")
}

#[test]
fn a_memory_bomb_hits_the_address_space_limit() {
    Harness::shared().run(async |s| {
        for (name, command) in probes(s) {
            let sandbox = Sandbox::new().memory_limit(2 << 30);
            let client = start(s, command, Some(sandbox)).await;
            let cause = bomb(&client, "memory").await;
            // Rust aborts when an allocation fails; Go's runtime exits 2.
            let expected = if name == "rust" {
                ExitCause::Aborted
            } else {
                ExitCause::Exited(2)
            };
            assert_eq!(cause, expected, "{name}");
            client.shutdown().await;
        }
        s.assert_clean().await;
    });
}

#[test]
fn a_cpu_burner_hits_the_cpu_time_limit() {
    Harness::shared().run(async |s| {
        for (name, command) in probes(s) {
            let sandbox = Sandbox::new().cpu_time_limit(Duration::from_secs(1));
            let client = start(s, command, Some(sandbox)).await;
            let cause = bomb(&client, "burn").await;
            // Go ignores SIGXCPU, so the hard limit's SIGKILL ends it.
            let expected = if name == "rust" {
                ExitCause::CpuTimeLimit
            } else {
                ExitCause::Killed
            };
            assert_eq!(cause, expected, "{name}");
            client.shutdown().await;
        }
        s.assert_clean().await;
    });
}

#[test]
fn a_thread_bomb_hits_the_process_limit_or_root_is_told_it_cannot() {
    let root = nix::unistd::Uid::current().is_root();
    Harness::shared().run(async |s| {
        for (name, command) in probes(s) {
            if root {
                // The kernel never limits root's processes: a strict
                // sandbox refuses, a best-effort one says so.
                let strict = Sandbox::new().process_limit(64).mode(SandboxMode::Strict);
                let refused = s
                    .kv_host(s.command(goplug_test::go_bin("probe-plugin")))
                    .sandbox(strict)
                    .start()
                    .await
                    .expect_err("a strict process limit for root");
                assert!(
                    matches!(
                        refused,
                        goplug::Error::SandboxUnsupported {
                            feature: SandboxFeature::ProcessLimit,
                            ..
                        }
                    ),
                    "{refused}"
                );
                let client = start(s, command, Some(Sandbox::new().process_limit(64))).await;
                let report = client.sandbox_report().cloned().unwrap_or_default();
                assert!(
                    report.lacks(SandboxFeature::ProcessLimit),
                    "{name}: {report:?}"
                );
                client.shutdown().await;
                continue;
            }
            let sandbox = Sandbox::new().process_limit(64).user_namespace(true);
            let client = start(s, command, Some(sandbox)).await;
            if name == "rust" {
                let answer = super::probe(&client, "threads").await;
                assert_eq!(answer, "err:EAGAIN", "{name}");
            } else {
                // Go's runtime dies when it cannot start a thread.
                assert_eq!(
                    bomb(&client, "threads").await,
                    ExitCause::Exited(2),
                    "{name}"
                );
            }
            client.shutdown().await;
        }
        s.assert_clean().await;
    });
}

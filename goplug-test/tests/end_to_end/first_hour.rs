//! The mistakes of a first hour with goplug (issue 16), each answered by
//! an error that names the cause and the fix: these tests assert the text
//! a user sees.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use goplug::host::{Channel, Checksum, Client, PluginSet};
use goplug::{Error, HandshakeConfig, HandshakeError};
use goplug_example_kv::pb::{self, kv_client::KvClient};
use goplug_test::{FAKE, Harness, PluginLogs, step};
use tracing::Level;

/// A host for `command` with the KV plugin set and `handshake`.
fn host(
    s: &Harness,
    handshake: HandshakeConfig,
    mut command: Command,
) -> goplug::host::ClientBuilder {
    s.tag(&mut command);
    Client::builder(handshake)
        .plugins(PluginSet::new().grpc::<KvClient<Channel>>("kv"))
        .command(command)
        .unix_socket_dir(&s.sockets)
        .start_timeout(step())
}

#[tokio::test]
async fn a_wrong_cookie_value_is_a_handshake_mismatch_not_a_manual_run() {
    let s = Harness::shared();
    let secret = "wrong-cookie-7f3a";
    let wrong = HandshakeConfig::new(1, "BASIC_PLUGIN", secret);
    let err = host(&s, wrong, s.fake("kv")).start().await.unwrap_err();
    s.pid();
    let Error::ExitedBeforeHandshake { status, stderr } = &err else {
        panic!("expected an early exit, got {err:?}");
    };
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{err}");
    assert!(stderr.cookie_rejected(), "{stderr:?}");
    // The plugin names the variable, and does not claim it was run by hand.
    assert!(
        stderr.0.starts_with(
            "This plugin's magic cookie variable BASIC_PLUGIN is set, but not to this plugin's value: \
             the host's and this plugin's handshake configs (magic cookie) differ."
        ),
        "{stderr:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with(
            "plugin exited before we could connect (exit status: 1); the plugin rejected the magic cookie \
             (host and plugin handshake configs differ: check magic_cookie_key/value); plugin stderr:\n"
        ),
        "{text}"
    );
    // Neither value is shown: a cookie may be a secret.
    assert!(!text.contains(secret) && !text.contains("hello"), "{text}");
    s.assert_clean().await;
}

#[tokio::test]
async fn a_plugin_logging_to_stdout_is_told_to_log_to_stderr() {
    let s = Harness::shared();
    let err = s
        .kv_host(s.fake("kv-log-stdout"))
        .start()
        .await
        .unwrap_err();
    s.pid();
    let Error::Handshake(HandshakeError::StdoutLog { line, following }) = &err else {
        panic!("expected a log line on stdout, got {err:?}");
    };
    // Quoted without its colour codes, and the handshake that followed.
    assert_eq!(
        line,
        "2026-12-02T18:08:17.541481Z  INFO fake_plugin: plugin starting"
    );
    assert!(
        following
            .as_deref()
            .is_some_and(|l| l.starts_with("1|1|unix|")),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains(
            "The plugin writes its logs to stdout, which carries the handshake: \
             `tracing_subscriber::fmt()` writes to stdout by default; use `goplug::log::init()`, which writes to stderr"
        ),
        "{text}"
    );
    assert!(!text.contains("not printable UTF-8"), "{text}");
    s.assert_clean().await;
}

#[tokio::test]
async fn run_inside_a_runtime_says_to_await_serve() {
    let s = Harness::shared();
    let err = s
        .kv_host(s.fake("kv-in-runtime"))
        .start()
        .await
        .unwrap_err();
    s.pid();
    let Error::ExitedBeforeHandshake { status, stderr } = &err else {
        panic!("expected an early exit, got {err:?}");
    };
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{err}");
    assert!(
        stderr.0.contains(
            "goplug: `goplug::plugin::run` was called inside a tokio runtime, which cannot start another; \
             inside an async main (`#[tokio::main]`), use `goplug::plugin::serve(config).await` instead"
        ),
        "{err}"
    );
    assert!(!stderr.0.contains("panicked"), "{err}");
    s.assert_clean().await;
}

#[test]
fn an_empty_plugin_set_warns_and_unknown_services_are_named() {
    let logs = PluginLogs::default();
    Harness::shared().run_logged(logs.clone(), async |s| {
        let client = s.kv_host(s.fake("empty")).start().await.unwrap();
        s.pid();
        // goplug's own services answer; the KV service is not there.
        client.ping().await.unwrap();
        let mut kv: KvClient<Channel> = client.dispense_named("kv").unwrap();
        let status = kv
            .get(pb::GetRequest { key: "k".into() })
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unimplemented, "{status:?}");
        assert_eq!(status.message(), "unknown service proto.KV");
        drop(kv);
        assert!(client.shutdown().await.graceful);
        let warned = logs.events().into_iter().any(|(level, message, _)| {
            level == Level::WARN
                && message.starts_with("the plugin serves no plugin services: the plugin set of app protocol version 1 is empty")
        });
        assert!(warned, "{:#?}", logs.events());
    });
}

#[tokio::test]
async fn a_bare_name_resolves_in_path_only_with_or_without_a_checksum() {
    // cargo runs tests in the crate's directory: a file named like the
    // program there must not be taken for it.
    let name = "Cargo.toml";
    assert!(Path::new(name).is_file());
    let path = std::env::var_os("PATH").unwrap_or_default();
    if std::env::split_paths(&path).any(|dir| dir.is_relative()) {
        return; // PATH names the current directory: the file would be found.
    }
    let s = Harness::shared();
    let mut texts = Vec::new();
    for checksum in [None, Some(Checksum::of_bytes(b""))] {
        let mut builder = s.kv_host(Command::new(name));
        if let Some(checksum) = checksum {
            builder = builder.checksum(checksum);
        }
        let err = builder.start().await.unwrap_err();
        let Error::Spawn { error: source, .. } = &err else {
            panic!("checksum {checksum:?}: expected a spawn error, got {err:?}");
        };
        assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        let text = err.to_string();
        assert!(
            text.starts_with(
                "failed to start plugin \"Cargo.toml\": executable file not found in $PATH; \
                 a name without a slash is looked up in $PATH only, and $PATH is \""
            ),
            "{text}"
        );
        assert!(
            text.ends_with("for a file in the current directory, write \"./Cargo.toml\""),
            "{text}"
        );
        texts.push(text);
    }
    assert_eq!(texts[0], texts[1]);
    s.assert_clean().await;
}

/// Records the messages of `WARN` events.
#[derive(Clone, Default)]
struct Warnings(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Warnings {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        if *event.metadata().level() != Level::WARN {
            return;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        if let Ok(mut warnings) = self.0.lock() {
            warnings.push(message.0);
        }
    }
}

/// A plugin whose logger writes to stdout after the handshake loses its
/// logs (the host drops stdout without `sync_stdout`): the host says so.
#[tokio::test]
async fn log_lines_on_a_plugins_stdout_after_the_handshake_are_warned_about() {
    use tracing_subscriber::layer::SubscriberExt as _;
    let warnings = Warnings::default();
    // The stdio copy runs on this thread (a current-thread runtime).
    let _default =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(warnings.clone()));
    let s = Harness::shared();
    let client = s
        .kv_host(s.fake("kv-log-stdout-later"))
        .start()
        .await
        .unwrap();
    let expected = "the plugin writes log lines to stdout, where they are dropped";
    let started = std::time::Instant::now();
    loop {
        let found = warnings
            .0
            .lock()
            .unwrap()
            .iter()
            .any(|w| w.starts_with(expected));
        if found {
            break;
        }
        let seen = warnings.0.lock().unwrap().clone();
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no warning in {seen:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(client.shutdown().await.graceful);
    let count = warnings
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|w| w.starts_with(expected))
        .count();
    assert_eq!(count, 1, "warned once per plugin");
    s.assert_clean().await;
}

#[test]
fn a_checksum_on_a_shell_command_warns_that_the_shell_is_checked() {
    use tracing_subscriber::layer::SubscriberExt as _;
    let warnings = Warnings::default();
    // The host's start runs on this thread (a current-thread runtime).
    let _default =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(warnings.clone()));
    Harness::shared().run(async |s| {
        let err = s
            .kv_host(goplug::host::shell_command(format!("exec '{FAKE}' kv")))
            .checksum(Checksum::of_bytes(b"the plugin's bytes"))
            .start()
            .await
            .unwrap_err();
        // The shell's checksum was compared, and the plugin never ran.
        let Error::ChecksumMismatch { path, .. } = &err else {
            panic!("expected a checksum mismatch, got {err:?}");
        };
        assert_eq!(path.file_name().and_then(|n| n.to_str()), Some("sh"));
    });
    let warnings = warnings.0.lock().unwrap().clone();
    assert!(
        warnings.iter().any(|w| w.starts_with(
            "the checksum is checked against the shell binary \"sh\", not the script it runs with -c"
        )),
        "{warnings:#?}"
    );
}

/// M2h: a command that is no plugin (`true`) exits at once, silently and
/// successfully: the error asks whether it is a plugin at all.
#[tokio::test]
async fn a_command_that_is_no_plugin_is_asked_about() {
    let s = Harness::shared();
    let handshake = HandshakeConfig::new(1, "BASIC_PLUGIN", "hello");
    let err = host(&s, handshake, Command::new("true"))
        .start()
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, Error::ExitedBeforeHandshake { .. }),
        "{err:?}"
    );
    assert!(
        text.starts_with("plugin exited before we could connect (exit status: 0)")
            && text.contains("is the command a go-plugin plugin"),
        "{text}"
    );
    s.assert_clean().await;
}

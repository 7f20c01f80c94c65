//! A goplug plugin with modes, in the style of go-plugin's helper process.
//! The first argument picks the mode:
//!
//! - `kv`: the KV example plugin (versions from `FAKE_VERSIONS`, default 1).
//! - `kv-tcp`: the same over TCP on 127.0.0.1.
//! - `kv-chatty`: the KV plugin, plus a thread that writes 1 MiB to stdout
//!   and to stderr after the handshake, then creates the file `chatty-done`.
//! - `kv-logs`: the KV plugin logging one `tracing` event per level (with
//!   key/values), a text line and a Rust panic message, through
//!   `goplug::log::init()` (set `GOPLUG_LOG=trace` to see all levels).
//! - `kv-print`: the KV plugin printing a line on stdout after the
//!   handshake, then creating `print-done`.
//! - `no-controller`: a handshake and a gRPC server without
//!   `GRPCController`, so a host's shutdown request goes unanswered.
//! - `kv-debug`: the KV plugin in debug mode: prints its reattach config
//!   on stdout and serves until SIGINT/SIGTERM.
//! - `kv-orphan-child`: the KV plugin, after starting a `sleep` that is
//!   orphaned at once (reparented away from the plugin, still in its
//!   process group); its pid goes to the file `orphan.pid`.
//! - `kv-exit-file`: the KV plugin; once serving has ended (the host asked
//!   it to stop, it was not killed) it creates `served-to-the-end`.
//! - `kv-log-stdout`: the KV plugin after a coloured log line on stdout,
//!   the mistake of a plugin that logs with `tracing_subscriber::fmt()`.
//! - `kv-log-stdout-later`: the KV plugin writing that coloured log line
//!   to stdout after the handshake, where a host without `sync_stdout`
//!   drops it.
//! - `kv-in-runtime`: the KV plugin, calling `run` inside a tokio runtime,
//!   the mistake of an async `main`.
//! - `empty`: an empty plugin set, logging through `goplug::log::init()`.
//! - `pid-file PATH MODE...`: writes its pid to PATH, then runs MODE.
#![allow(clippy::print_stdout)] // printing the handshake by hand is the point of some modes

use std::process::ExitCode;

use goplug::plugin::{ServeConfig, Services, Transport};
use goplug_example_kv::{FileKv, HANDSHAKE, pb};

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("pid-file") && args.len() >= 2 {
        if let Err(e) = std::fs::write(&args[1], std::process::id().to_string()) {
            eprintln!("writing pid file: {e}");
            return ExitCode::FAILURE;
        }
        args.drain(..2);
    }
    match args.first().map(String::as_str) {
        Some("kv") => goplug::plugin::run(kv_config()),
        Some("kv-tcp") => goplug::plugin::run(kv_config().transport(Transport::Tcp)),
        Some("kv-chatty") => {
            std::thread::spawn(chatter);
            goplug::plugin::run(kv_config())
        }
        Some("kv-logs") => {
            goplug::log::init();
            std::thread::spawn(log_each_level);
            goplug::plugin::run(kv_config())
        }
        Some("kv-print") => {
            std::thread::spawn(|| {
                std::thread::sleep(std::time::Duration::from_millis(200));
                println!("hello from the plugin's stdout");
                let _ = std::fs::write("print-done", "");
            });
            goplug::plugin::run(kv_config())
        }
        Some("kv-debug") => goplug::plugin::run_debug(kv_config()),
        Some("kv-exit-file") => {
            let code = goplug::plugin::run(kv_config());
            // Reached only when serving ended on its own (a kill never gets here).
            let _ = std::fs::write("served-to-the-end", "");
            code
        }
        Some("kv-orphan-child") => {
            let spawned = std::process::Command::new("sh")
                .arg("-c")
                .arg("sleep 300 >/dev/null 2>&1 </dev/null & echo $! > orphan.pid")
                .status();
            if !spawned.is_ok_and(|s| s.success()) {
                eprintln!("fake-plugin: could not start the orphan");
                return ExitCode::FAILURE;
            }
            goplug::plugin::run(kv_config())
        }
        Some("kv-log-stdout") => {
            // The line `tracing_subscriber::fmt()` writes with colours (its
            // `ansi` feature is off in this workspace, so written by hand).
            println!(
                "\x1b[2m2026-12-02T18:08:17.541481Z\x1b[0m \x1b[32m INFO\x1b[0m \x1b[2mfake_plugin\x1b[0m\x1b[2m:\x1b[0m plugin starting"
            );
            goplug::plugin::run(kv_config())
        }
        Some("kv-log-stdout-later") => {
            std::thread::spawn(|| {
                std::thread::sleep(std::time::Duration::from_millis(200));
                println!(
                    "\x1b[2m2026-12-02T18:08:17.541481Z\x1b[0m \x1b[32m INFO\x1b[0m \x1b[2mfake_plugin\x1b[0m\x1b[2m:\x1b[0m handling a call"
                );
            });
            goplug::plugin::run(kv_config())
        }
        Some("kv-in-runtime") => match tokio::runtime::Runtime::new() {
            Ok(runtime) => runtime.block_on(async { goplug::plugin::run(kv_config()) }),
            Err(e) => {
                eprintln!("fake-plugin: no runtime: {e}");
                ExitCode::FAILURE
            }
        },
        Some("empty") => {
            goplug::log::init();
            goplug::plugin::run(ServeConfig::new(HANDSHAKE).plugins(Services::new()))
        }
        Some("no-controller") => no_controller(),
        other => {
            eprintln!("fake-plugin: unknown mode {other:?}");
            ExitCode::from(2)
        }
    }
}

/// `FAKE_VERSIONS`: app protocol versions (default 1); `FAKE_PROTOCOL=netrpc`
/// serves the KV over net/rpc instead of gRPC. `FAKE_TLS_MAX=1.2`
/// limits AutoMTLS to TLS 1.2; `FAKE_CURVE=p521` uses go-plugin's curve.
/// `FAKE_RUNTIME=current` runs on tokio's current-thread runtime.
/// `FAKE_TLS_CERT`/`FAKE_TLS_KEY` (PEM files) serve manual TLS, with
/// `FAKE_TLS_CLIENT_CA` requiring client certificates signed by that CA.
/// `FAKE_PLUGIN_VERSION` declares the plugin's semantic version.
fn kv_config() -> ServeConfig {
    let versions = std::env::var("FAKE_VERSIONS").unwrap_or_else(|_| "1".to_owned());
    let mut config = ServeConfig::new(HANDSHAKE).file_descriptor_set(pb::FILE_DESCRIPTOR_SET);
    if let Ok(version) = std::env::var("FAKE_PLUGIN_VERSION") {
        config = config.plugin_version(version);
    }
    if std::env::var("FAKE_RUNTIME").as_deref() == Ok("current") {
        config = config.runtime(goplug::plugin::Runtime::CurrentThread);
    }
    if std::env::var("FAKE_TLS_MAX").as_deref() == Ok("1.2") {
        config = config.max_tls_version(goplug::tls::TlsVersion::Tls12);
    }
    if std::env::var("FAKE_CURVE").as_deref() == Ok("p521") {
        config = config.cert_curve(goplug::tls::CertCurve::P521);
    }
    if let (Ok(cert), Ok(key)) = (
        std::env::var("FAKE_TLS_CERT"),
        std::env::var("FAKE_TLS_KEY"),
    ) {
        let client_ca = std::env::var("FAKE_TLS_CLIENT_CA").ok();
        config = config.tls(goplug_test::pki::server_config(
            &cert,
            &key,
            client_ca.as_deref(),
        ));
    }
    for version in versions
        .split(',')
        .filter_map(|v| v.trim().parse::<u32>().ok())
    {
        let set = if std::env::var("FAKE_PROTOCOL").as_deref() == Ok("netrpc") {
            Services::new().netrpc("kv", move |_| {
                goplug_example_kv::kv_netrpc_server(FileKv::versioned(version))
            })
        } else {
            Services::new().grpc(
                "kv",
                pb::kv_server::KvServer::new(FileKv::versioned(version)),
            )
        };
        config = config.version(version, set);
    }
    config
}

/// One event per level, with the key/values a host must show.
fn log_each_level() {
    std::thread::sleep(std::time::Duration::from_millis(200));
    tracing::trace!(foo = "bar", n = 12, "trace message");
    tracing::debug!(foo = "bar", n = 12, "debug message");
    tracing::info!(foo = "bar", n = 12, "info message");
    tracing::warn!(foo = "bar", n = 12, "warn message");
    tracing::error!(foo = "bar", n = 12, "error message");
    let _ = std::fs::write("logs-done", "");
}

/// Floods stdout and stderr once the handshake is out: a host that stops
/// reading either pipe would block this thread before `chatty-done` exists.
fn chatter() {
    use std::io::Write;
    std::thread::sleep(std::time::Duration::from_millis(200));
    let line = format!("{}\n", "x".repeat(1023));
    #[expect(clippy::disallowed_methods, reason = "flooding stdout is the point")]
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    for _ in 0..1024 {
        if stdout.write_all(line.as_bytes()).is_err() || stderr.write_all(line.as_bytes()).is_err()
        {
            return;
        }
    }
    let _ = stdout.flush();
    let _ = std::fs::write("chatty-done", "");
}

/// Serves health only, on a socket of its own, and never exits by itself.
fn no_controller() -> ExitCode {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::Builder::new()
            .prefix("fake")
            .tempdir_in(
                std::env::var_os("PLUGIN_UNIX_SOCKET_DIR")
                    .map_or_else(std::env::temp_dir, Into::into),
            )
            .expect("socket dir");
        let path = dir.path().join("s.sock");
        let listener = tokio::net::UnixListener::bind(&path).expect("bind");
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter
            .set_service_status("plugin", tonic_health::ServingStatus::Serving)
            .await;
        println!("1|1|unix|{}|grpc|", path.display());
        let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
        let _ = tonic::transport::Server::builder()
            .add_service(health)
            .serve_with_incoming(incoming)
            .await;
    });
    ExitCode::SUCCESS
}

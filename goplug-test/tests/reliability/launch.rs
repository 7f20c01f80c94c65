//! Reliability suite, series A: launch and handshake
//! (`research/reliability.md` §5, T01–T11): T01 no handshake, T02 exit
//! before the handshake, T03 malformed lines, T04 an endless line, T05
//! stdout noise, T06 a fragmented line, T07 a socket path too long, T08 a
//! plugin run by hand, T09 checksum failures, T10 a binary swapped after
//! its check, T11 binaries that cannot run. Every test runs under a
//! [`Harness::exclusive`]: its processes gone, no zombies, fds and socket
//! dir at baseline.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use goplug::handshake::PluginAddress;
use goplug::host::{Checksum, ClientBuilder};
use goplug::reattach::ReattachConfig;
use goplug::{Error, HandshakeError, Protocol};
use goplug_example_kv::HANDSHAKE;
use goplug_test::{FAULT, Harness, prompt};

/// The pid the plugin's script wrote, tracked: the plugin must be reaped
/// (gone, not a zombie) promptly.
async fn assert_reaped(h: &Harness) {
    goplug_test::process_gone(h.pid(), prompt()).await;
}

/// A host for `command` with a start timeout of `step()`.
fn host(h: &Harness, command: Command) -> ClientBuilder {
    h.kv_host(command)
}

/// T01: a plugin that never prints its handshake is killed at the start
/// timeout and reaped.
#[test]
fn t01_a_plugin_that_never_handshakes_times_out_and_is_reaped() {
    Harness::exclusive().run(async |h| {
        let started = Instant::now();
        let error = host(h, h.script("echo waiting >&2; exec sleep 60"))
            .start_timeout(Duration::from_millis(500))
            .start()
            .await
            .expect_err("no handshake");
        assert!(started.elapsed() < prompt(), "{:?}", started.elapsed());
        let Error::StartTimeout { timeout, stderr } = &error else {
            panic!("expected a start timeout, got {error:?}");
        };
        assert_eq!(*timeout, Duration::from_millis(500));
        assert!(stderr.0.contains("waiting"), "{stderr:?}");
        assert!(
            error
                .to_string()
                .starts_with("timeout while waiting for plugin to start"),
            "{error}"
        );
        assert_reaped(h).await;
    });
}

/// T02: a plugin that exits before its handshake is reported at once with
/// its exit code and the tail of its stderr, bounded however much it wrote.
#[test]
fn t02_an_early_exit_reports_the_code_and_a_bounded_stderr_tail() {
    Harness::exclusive().run(async |h| {
        let started = Instant::now();
        // 2000 lines of noise, then the line that matters.
        let body = "i=0; while [ $i -lt 2000 ]; do echo noise line $i >&2; i=$((i+1)); done; \
                echo boom >&2; exit 3";
        let error = host(h, h.script(body))
            .start_timeout(Duration::from_secs(10))
            .start()
            .await
            .expect_err("exits first");
        assert!(started.elapsed() < prompt(), "{:?}", started.elapsed());
        let Error::ExitedBeforeHandshake { status, stderr } = &error else {
            panic!("expected an early exit, got {error:?}");
        };
        assert_eq!(status.and_then(|s| s.code()), Some(3), "{error}");
        assert!(stderr.0.trim_end().ends_with("boom"), "{stderr:?}");
        assert!(stderr.0.len() <= 16 * 1024, "{} bytes", stderr.0.len());
        let text = error.to_string();
        assert!(
            text.starts_with("plugin exited before we could connect") && text.contains("boom"),
            "{text}"
        );
        assert_reaped(h).await;
    });
}

/// One malformed line of T03: the `printf` format that writes it, the
/// host's options, and the check of the error.
struct BadLine {
    printf: String,
    auto_mtls: bool,
    multiplex: bool,
    expected: fn(&HandshakeError) -> bool,
    /// Whether the error quotes the line (its first 20 bytes).
    quoted: bool,
}

fn bad(printf: &str, expected: fn(&HandshakeError) -> bool) -> BadLine {
    BadLine {
        printf: printf.to_owned(),
        auto_mtls: false,
        multiplex: false,
        expected,
        quoted: false,
    }
}

/// A [`bad`] line the error quotes.
fn quoted(printf: &str, expected: fn(&HandshakeError) -> bool) -> BadLine {
    BadLine {
        quoted: true,
        ..bad(printf, expected)
    }
}

fn invalid_address(error: &HandshakeError, why: &str) -> bool {
    matches!(error, HandshakeError::InvalidAddress { reason, .. } if reason.contains(why))
}

/// T03: each kind of malformed handshake line gets its own typed error,
/// promptly, and the plugin is killed and reaped; surrounding spaces and a
/// CRLF are accepted, as go-plugin trims the line.
#[test]
fn t03_malformed_handshake_lines_get_distinct_errors() {
    Harness::exclusive().run(async |h| t03(h).await);
}

async fn t03(h: &Harness) {
    use HandshakeError as H;
    let cases = vec![
        bad(
            "",
            |e| matches!(e, H::StdoutNoise { line, .. } if line.is_empty()),
        ),
        quoted("1|1|tcp", |e| {
            matches!(e, H::TooFewFields { fields: 3, .. })
        }),
        quoted(
            "x|1|unix|/p|grpc",
            |e| matches!(e, H::InvalidCoreVersion { value, .. } if value == "x"),
        ),
        quoted("2|1|unix|/p|grpc", |e| {
            matches!(e, H::CoreVersionMismatch { plugin: 2, .. })
        }),
        quoted("1|99|unix|/p|grpc", |e| {
            matches!(e, H::AppVersionMismatch { plugin: 99, .. })
        }),
        quoted(
            "1|1|udp|127.0.0.1:5|grpc",
            |e| matches!(e, H::UnknownNetwork { network, .. } if network == "udp"),
        ),
        bad("1|1|tcp|127.0.0.1:notaport|grpc", |e| {
            invalid_address(e, "host:port")
        }),
        // Our policy: go-plugin resolves a relative path against the host's cwd.
        bad("1|1|unix|relative|grpc", |e| {
            invalid_address(e, "not absolute")
        }),
        // Our policy: go-plugin supports local networks only, but would dial.
        quoted("1|1|tcp|10.1.2.3:1234|grpc", |e| {
            invalid_address(e, "loopback")
        }),
        quoted("1|1|unix|/p|netrpc", |e| {
            matches!(
                e,
                H::ProtocolNotAllowed {
                    protocol: Protocol::NetRpc,
                    ..
                }
            )
        }),
        BadLine {
            auto_mtls: true,
            ..bad(
                &format!("1|1|unix|/p|grpc|{}", "!".repeat(80)),
                |e| matches!(e, H::InvalidCertificate { reason, .. } if reason.contains("base64")),
            )
        },
        BadLine {
            auto_mtls: true,
            ..bad(
                &format!("1|1|unix|/p|grpc|{}", "A".repeat(80)),
                |e| matches!(e, H::InvalidCertificate { reason, .. } if !reason.contains("base64")),
            )
        },
        BadLine {
            multiplex: true,
            ..bad(
                "1|1|unix|/p|grpc||maybe",
                |e| matches!(e, H::InvalidMultiplex { value, .. } if value == "maybe"),
            )
        },
        quoted("1|1|unix|/p||", |e| matches!(e, H::UnknownProtocol { .. })),
        quoted("1|1|tcp|nowhere|grpc", |e| {
            matches!(e, H::InvalidAddress { .. })
        }),
        // A certificate the host did not ask for (no AutoMTLS).
        quoted(&format!("1|1|unix|/p|grpc|{}", "A".repeat(80)), |e| {
            matches!(e, H::UnexpectedCertificate { .. })
        }),
        quoted(
            "hello",
            |e| matches!(e, H::StdoutNoise { line, following: None } if line == "hello"),
        ),
        quoted("hello\\n1|1|unix|/p|grpc|", |e| {
            matches!(
                e,
                H::StdoutNoise {
                    following: Some(_),
                    ..
                }
            )
        }),
        bad("1|1|unix|/p\\000|grpc", |e| matches!(e, H::NotText { .. })),
        bad("1|1|unix|/p\\377|grpc", |e| matches!(e, H::NotText { .. })),
    ];
    let mut seen = Vec::new();
    for case in cases {
        let started = Instant::now();
        let body = format!("printf '{}\\n'; exec sleep 30", case.printf);
        let error = host(h, h.script(&body))
            .auto_mtls(case.auto_mtls)
            .grpc_broker_multiplex(case.multiplex)
            .start()
            .await
            .expect_err(&case.printf);
        assert!(
            started.elapsed() < prompt(),
            "{}: {:?}",
            case.printf,
            started.elapsed()
        );
        let Error::Handshake(handshake) = &error else {
            panic!("{}: not a handshake error: {error:?}", case.printf);
        };
        assert!((case.expected)(handshake), "{}: {error:?}", case.printf);
        if case.quoted {
            let first = case.printf.split("\\n").next().unwrap_or_default();
            assert!(
                error.to_string().contains(&first[..first.len().min(20)]),
                "{}: the error does not quote the line: {error}",
                case.printf
            );
        }
        seen.push(error.to_string());
        assert_reaped(h).await;
    }
    // Distinct: no two cases explain themselves with the same text.
    let mut texts = seen.clone();
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), seen.len(), "{seen:#?}");

    let client = tokio::time::timeout(
        Duration::from_secs(20),
        host(h, h.plugin(&FAULT, "padded-handshake"))
            .start_timeout(Duration::from_secs(10))
            .start(),
    )
    .await
    .expect("bounded")
    .expect("spaces and CRLF around the line are accepted");
    h.track(client.pid().expect("launched"));
    assert!(client.shutdown().await.graceful);
}

/// T04: 1 MiB without a newline is refused once the 16 KiB cap is read,
/// promptly and without the host buffering it.
#[test]
fn t04_an_endless_line_is_refused_at_the_cap_without_buffering_it() {
    Harness::exclusive().run(async |h| {
        let before = goplug_test::status_kib("self", "VmHWM").expect("VmHWM");
        let started = Instant::now();
        let error = host(
            h,
            h.script("head -c 1048576 /dev/zero | tr '\\0' x; exec sleep 30"),
        )
        .start_timeout(Duration::from_secs(10))
        .start()
        .await
        .expect_err("line too long");
        assert!(started.elapsed() < prompt(), "{:?}", started.elapsed());
        assert!(
            matches!(
                error,
                Error::Handshake(HandshakeError::LineTooLong { limit: 16384, .. })
            ),
            "{error:?}"
        );
        let grown = goplug_test::status_kib("self", "VmHWM")
            .expect("VmHWM")
            .saturating_sub(before);
        assert!(grown < 1024, "the host's peak memory grew by {grown} KiB");
        assert_reaped(h).await;
    });
}

/// T05: output before the handshake fails the start with go-plugin's
/// message, the noise quoted (truncated) and the handshake that followed.
#[test]
fn t05_stdout_noise_is_quoted_and_truncated() {
    Harness::exclusive().run(async |h| {
        let noise = "n".repeat(1000);
        let started = Instant::now();
        let error = host(
            h,
            h.script(&format!(
                "echo {noise}; echo '1|1|unix|/p|grpc|'; exec sleep 30"
            )),
        )
        .start()
        .await
        .expect_err("noise");
        assert!(started.elapsed() < prompt(), "{:?}", started.elapsed());
        let Error::Handshake(HandshakeError::StdoutNoise { line, following }) = &error else {
            panic!("expected stdout noise, got {error:?}");
        };
        assert!(
            line.starts_with("nnnn") && line.len() <= 256 + '…'.len_utf8(),
            "{line}"
        );
        assert_eq!(following.as_deref(), Some("1|1|unix|/p|grpc|"));
        assert!(
            error
                .to_string()
                .starts_with("Unrecognized remote plugin message: \"nnnn"),
            "{error}"
        );
        assert_reaped(h).await;
    });
}

/// T06: a handshake line written one byte every 10 ms is assembled, and
/// waiting for it costs the host next to no CPU (no busy loop).
#[test]
fn t06_a_fragmented_handshake_succeeds_without_spinning() {
    Harness::exclusive().run(async |h| {
        let cpu_before = goplug_test::cpu_time();
        let client = tokio::time::timeout(
            Duration::from_secs(20),
            host(h, h.plugin(&FAULT, "slow-handshake"))
                .start_timeout(Duration::from_secs(10))
                .start(),
        )
        .await
        .expect("bounded")
        .expect("a slow line is still a line");
        let cpu = goplug_test::cpu_time() - cpu_before;
        h.track(client.pid().expect("launched"));
        // The line has over 50 bytes: over half a second of trickling.
        assert!(
            client.start_duration() > Duration::from_millis(500),
            "{:?}",
            client.start_duration()
        );
        assert!(
            cpu < client.start_duration() / 4,
            "the host used {cpu:?} of CPU over a {:?} start",
            client.start_duration()
        );
        assert!(client.shutdown().await.graceful);
    });
}

/// T07: a socket directory too deep for a Unix socket path fails the start
/// with the plugin's own explanation (the path and its length), not as an
/// unrecognised handshake.
#[test]
fn t07_a_socket_path_too_long_is_explained() {
    Harness::exclusive().run(async |h| {
        let base = h.temp_dir().display().to_string().len();
        let deep = h.temp_dir().join("d".repeat(120 - base - 1));
        std::fs::create_dir(&deep).expect("the deep dir");
        assert_eq!(deep.display().to_string().len(), 120);
        let mut command = h.plugin(&FAULT, "serve");
        command.env("TMPDIR", &deep);
        let error = host(h, command)
            .unix_socket_dir(&deep)
            .start_timeout(Duration::from_secs(10))
            .start()
            .await
            .expect_err("path too long");
        let Error::ExitedBeforeHandshake { status, stderr } = &error else {
            panic!("expected the plugin to exit, got {error:?}");
        };
        assert_eq!(status.and_then(|s| s.code()), Some(1), "{error}");
        assert!(
            stderr.0.contains(&deep.display().to_string())
                && stderr.0.contains("bytes long, over the limit of 107"),
            "{error}"
        );
        std::fs::remove_dir(&deep).expect("the deep dir is empty again");
    });
}

/// T08: a plugin run by hand (no magic cookie) says so on stderr, exits 1,
/// and writes nothing on stdout, which a host would take for a handshake.
#[test]
fn t08_a_plugin_run_by_hand_exits_1_with_a_message_and_no_stdout() {
    Harness::exclusive().run(async |h| {
        let mut command = h.plugin(&FAULT, "serve");
        command.env_remove(HANDSHAKE.magic_cookie_key.as_ref());
        let output = goplug_test::run_with_timeout(&mut command, Duration::from_secs(10));
        assert_eq!(output.status.code(), Some(1), "{output:?}");
        assert!(output.stdout.is_empty(), "{output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.starts_with("This binary is a plugin"),
            "no human message: {stderr}"
        );
        assert_eq!(stderr, goplug::env::NOT_LAUNCHED_BY_HOST);
        // A wrong cookie value is refused too, but with a text that names
        // the variable (not the values): a host did launch it.
        let mut command = h.plugin(&FAULT, "serve");
        command.env(HANDSHAKE.magic_cookie_key.as_ref(), "not-the-cookie");
        let output = goplug_test::run_with_timeout(&mut command, Duration::from_secs(10));
        assert_eq!(output.status.code(), Some(1), "{output:?}");
        assert!(output.stdout.is_empty(), "{output:?}");
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            goplug::env::cookie_mismatch(HANDSHAKE.magic_cookie_key.as_ref())
        );
    });
}

/// T09: a plugin failing its checksum, or unreadable, or configured with
/// reattach, is never run (its first act would be to touch a marker).
#[test]
fn t09_a_plugin_that_fails_its_checksum_never_runs() {
    Harness::exclusive().run(async |h| {
        let dir = h.scratch("t09");
        let marker = dir.join("ran");
        let plugin = dir.join("plugin");
        std::fs::write(
            &plugin,
            format!("#!/bin/sh\ntouch '{}'\nexec sleep 30\n", marker.display()),
        )
        .expect("the plugin");
        std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let right = Checksum::of_file(&plugin).expect("its checksum");
        let wrong = Checksum::of_bytes(b"another plugin");
        let start = |program: &Path, checksum: Checksum| {
            host(h, Command::new(program)).checksum(checksum).start()
        };

        let error = start(&plugin, wrong).await.expect_err("wrong checksum");
        assert!(
            matches!(&error, Error::ChecksumMismatch { path, expected, actual }
            if path == &plugin && *expected == wrong && *actual == right),
            "{error:?}"
        );
        assert!(
            error.to_string().starts_with("checksums did not match"),
            "{error}"
        );
        // An empty checksum cannot even be configured.
        let empty = "".parse::<Checksum>().expect_err("empty checksum");
        assert!(
            matches!(Error::from(empty.clone()), Error::Config(_)),
            "{empty:?}"
        );
        let missing = dir.join("missing");
        let error = start(&missing, right).await.expect_err("missing file");
        assert!(
            matches!(&error, Error::ChecksumFile { path, error: source }
            if path == &missing && source.kind() == std::io::ErrorKind::NotFound),
            "{error:?}"
        );
        let error = start(&dir, right).await.expect_err("a directory");
        assert!(
            matches!(&error, Error::ChecksumFile { path, .. } if path == &dir),
            "{error:?}"
        );
        let error = host(h, Command::new(&plugin))
            .checksum(right)
            .reattach(ReattachConfig::new(
                Protocol::Grpc,
                1,
                PluginAddress::Unix(dir.join("s.sock")),
                std::process::id(),
            ))
            .start()
            .await
            .expect_err("checksum and reattach");
        assert!(matches!(error, Error::ChecksumAndReattach), "{error:?}");

        assert!(!marker.exists(), "a plugin ran");
        assert_eq!(h.own_processes(), Vec::new(), "a plugin runs");
        let _ = std::fs::remove_dir_all(&dir);
    });
}

/// T10: a binary replaced between its check and its launch does not run:
/// the verified bytes do.
#[test]
fn t10_a_binary_swapped_after_its_check_never_runs() {
    Harness::exclusive().run(async |h| {
        let dir = h.scratch("t10");
        let plugin = dir.join("plugin");
        // A small script (hashing a debug binary twice takes seconds).
        std::fs::write(&plugin, format!("#!/bin/sh\nexec '{FAULT}' serve\n")).expect("the plugin");
        std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let verified = Checksum::of_file(&plugin).expect("its checksum");
        let marker = dir.join("impostor-ran");
        let impostor = dir.join("impostor");
        std::fs::write(
            &impostor,
            format!("#!/bin/sh\ntouch '{}'\nexec sleep 30\n", marker.display()),
        )
        .expect("the impostor");
        std::fs::set_permissions(&impostor, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let mut command = Command::new(&plugin);
        command.env("TMPDIR", h.temp_dir());
        let client = tokio::time::timeout(
            Duration::from_secs(20),
            host(h, command)
                .start_timeout(Duration::from_secs(10))
                .checksum(verified)
                .on_checksum_verified(move |path| {
                    std::fs::rename(&impostor, path).expect("swap in the impostor");
                })
                .start(),
        )
        .await
        .expect("bounded")
        .expect("the verified plugin starts");
        h.track(client.pid().expect("launched"));
        assert_ne!(
            Checksum::of_file(&plugin).ok(),
            Some(verified),
            "not swapped"
        );
        client.ping().await.expect("the verified plugin answers");
        assert!(client.shutdown().await.graceful);
        assert!(!marker.exists(), "the swapped-in binary ran");
        let _ = std::fs::remove_dir_all(&dir);
    });
}

/// A 64-byte ELF header for `machine` (e.g. 183, aarch64): enough for the
/// kernel to refuse it for this one.
fn elf_header(machine: u16) -> Vec<u8> {
    let mut header = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
    header.resize(16, 0);
    header.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    header.extend_from_slice(&machine.to_le_bytes());
    header.extend_from_slice(&1u32.to_le_bytes());
    header.resize(64, 0);
    header
}

/// T11: binaries that cannot run (not executable, for another machine,
/// text without `#!`, a `#!` naming a missing interpreter) fail the start
/// with the path and what is wrong.
#[test]
fn t11_binaries_that_cannot_run_are_explained() {
    Harness::exclusive().run(async |h| {
        let dir = h.scratch("t11");
        let (foreign, foreign_name) = if cfg!(target_arch = "aarch64") {
            (62, "an ELF binary for x86_64")
        } else {
            (183, "an ELF binary for aarch64")
        };
        let cases: [(&str, Vec<u8>, u32, &str); 4] = [
            ("not-executable", elf_header(62), 0o644, "mode 0644"),
            ("foreign", elf_header(foreign), 0o755, foreign_name),
            (
                "no-interpreter",
                b"#!/nonexistent/sh\n".to_vec(),
                0o755,
                "interpreter of its #! line, /nonexistent/sh, was not found",
            ),
            (
                "text",
                b"this is not a program\n".to_vec(),
                0o755,
                "nor a script with a #! line",
            ),
        ];
        for (name, bytes, mode, diagnosis) in cases {
            let path: PathBuf = dir.join(name);
            std::fs::write(&path, bytes).expect("the binary");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
            let error = tokio::time::timeout(
                Duration::from_secs(10),
                host(h, Command::new(&path)).start(),
            )
            .await
            .expect("bounded")
            .expect_err(name);
            assert!(matches!(error, Error::Spawn { .. }), "{name}: {error:?}");
            let text = error.to_string();
            assert!(
                text.contains(&path.display().to_string()) && text.contains(diagnosis),
                "{name}: {text}"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    });
}

/// The harness itself: a plugin left unreaped and a leaked fd fail a
/// test. The test then reaps its child and closes its fd while it still
/// holds its turn, so it leaves nothing for the next test.
#[test]
fn the_harness_fails_a_test_that_leaves_a_zombie_and_an_fd() {
    let h = Harness::exclusive();
    let mut child = h.command("true").spawn().expect("spawn true");
    h.track(child.id());
    let file = std::fs::File::open("/dev/null").expect("open /dev/null");
    let left = h
        .check(Duration::from_millis(500))
        .expect_err("a zombie and an fd are left behind");
    assert!(left.contains("left behind"), "{left}");
    assert!(left.contains(&format!("pid: {}", child.id())), "{left}");
    assert!(left.contains("/dev/null"), "{left}");
    child.wait().expect("reap true");
    drop(file);
    h.close();
}

//! Plugins that outlive their host, and hosts that leave nothing behind:
//! reattach (test and normal mode, in all four pairings), host upgrades,
//! plugins dying with their host, process groups.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use goplug::host::{Checksum, Client, PluginSet};
use goplug::reattach::ReattachConfig;
use goplug::{Error, Protocol};
use goplug_example_kv::HANDSHAKE;
use goplug_test::{FAKE, Harness, go_bin, process_gone, put_get, read_pid, settle};

/// A plugin started by hand in debug mode; killed (SIGKILL) if still
/// running when dropped.
struct DebugPlugin {
    child: Child,
    config: ReattachConfig,
}

impl DebugPlugin {
    /// Starts `command` (a plugin in debug mode) and reads its reattach line.
    fn start(mut command: Command, sockets: &Path) -> Self {
        let mut child = command
            .env("PLUGIN_UNIX_SOCKET_DIR", sockets)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the debug plugin starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let Some(line) = goplug_test::first_line(stdout, Duration::from_secs(20)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the debug plugin printed no reattach config in 20 s");
        };
        let config = ReattachConfig::from_json(&line)
            .unwrap_or_else(|e| panic!("reattach line {line:?}: {e}"));
        Self { child, config }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then the exit status within 10 s.
    fn terminate(mut self) -> std::process::ExitStatus {
        goplug_test::signal(self.pid(), nix::sys::signal::Signal::SIGTERM);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the debug plugin ignored SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for DebugPlugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rust_debug_plugin(s: &Harness) -> Command {
    s.plugin(&FAKE, "kv-debug")
}

fn go_debug_plugin(s: &Harness) -> Command {
    let mut command = s.command(go_bin("kv-plugin-go-grpc"));
    command.env("KV_PLUGIN_DEBUG", "1");
    command
}

/// A host that reattaches (its command is never run).
fn host(s: &Harness) -> goplug::host::ClientBuilder {
    s.kv_host(Command::new("/nonexistent"))
        .start_timeout(Duration::from_secs(10))
}

async fn get(client: &Client, key: &str) -> String {
    let mut kv = goplug_test::kv(client);
    String::from_utf8(goplug_test::get(&mut kv, key).await.unwrap()).unwrap()
}

/// Unix sockets anywhere under `dir`.
fn sockets_under(dir: &Path) -> Vec<PathBuf> {
    use std::os::unix::fs::FileTypeExt;
    let mut found = Vec::new();
    let mut queue = vec![dir.to_path_buf()];
    while let Some(dir) = queue.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                queue.push(entry.path());
            } else if kind.is_socket() {
                found.push(entry.path());
            }
        }
    }
    found
}

#[tokio::test]
async fn rust_host_reattaches_to_debug_plugins_of_both_languages() {
    for (name, command) in [
        ("rust", rust_debug_plugin as fn(&Harness) -> Command),
        ("go", go_debug_plugin),
    ] {
        let s = Harness::shared();
        let mut plugin = DebugPlugin::start(command(&s), &s.sockets);
        assert!(plugin.config.test, "{name}: {:?}", plugin.config);
        assert_eq!(plugin.config.protocol, Protocol::Grpc, "{name}");
        assert_eq!(plugin.config.pid, plugin.pid(), "{name}");

        let client = host(&s)
            .reattach(plugin.config.clone())
            .start()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(client.negotiated_version(), 1, "{name}");
        assert_eq!(client.pid(), Some(plugin.pid()), "{name}");
        client.ping().await.unwrap();
        let value = put_get(&client, "k", name).await;
        assert!(value.starts_with(&format!("{name}\n")), "{name}: {value:?}");
        assert_eq!(client.reattach_config(), Some(plugin.config.clone()));

        // Test mode: the host lets go and the plugin runs on, as with
        // go-plugin's Kill.
        let report = client.shutdown().await;
        assert!(report.left_running, "{name}: {report:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            plugin.alive(),
            "{name}: the host stopped a test-mode plugin"
        );

        // A second host attaches to the same plugin.
        let again = host(&s)
            .reattach(plugin.config.clone())
            .start()
            .await
            .unwrap();
        assert!(get(&again, "k").await.starts_with(name), "{name}");
        drop(again);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            plugin.alive(),
            "{name}: dropping the client killed the plugin"
        );

        let status = plugin.terminate();
        assert!(status.success(), "{name}: {status}");
        assert_eq!(sockets_under(&s.sockets), Vec::<PathBuf>::new(), "{name}");
    }
}

#[tokio::test]
async fn go_host_reattaches_to_debug_plugins_of_both_languages() {
    let mut reports = Vec::new();
    for (name, command) in [
        ("rust", rust_debug_plugin as fn(&Harness) -> Command),
        ("go", go_debug_plugin),
    ] {
        let s = Harness::shared();
        let mut plugin = DebugPlugin::start(command(&s), &s.sockets);
        let output = goplug_test::run_with_timeout(
            Command::new(go_bin("probe-host"))
                .arg("-reattach")
                .arg(plugin.config.to_json())
                .args(["-ping", "-put", "k=v", "-get", "k"])
                .current_dir(&s.work),
            Duration::from_secs(60),
        );
        let report: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{name}: no JSON ({e}): {output:?}"));
        assert_eq!(report["ok"], true, "{name}: {report}");
        assert_eq!(report["reattached"], true, "{name}: {report}");
        assert_eq!(report["pid_alive_after_kill"], true, "{name}: {report}");
        assert!(plugin.alive(), "{name}");
        let value = report["get"].as_str().unwrap_or_default().to_owned();
        assert!(value.starts_with("v\n"), "{name}: {value:?}");
        reports.push((report["version"].clone(), report["protocol"].clone()));
        assert!(plugin.terminate().success(), "{name}");
        assert_eq!(sockets_under(&s.sockets), Vec::<PathBuf>::new(), "{name}");
    }
    // The Go host sees the Rust plugin as it sees the Go one.
    assert_eq!(reports[0], reports[1]);
}

#[tokio::test]
async fn normal_mode_reattach_stops_the_plugin_on_shutdown() {
    for (name, command) in [
        ("rust", rust_debug_plugin as fn(&Harness) -> Command),
        ("go", go_debug_plugin),
    ] {
        let s = Harness::shared();
        let mut plugin = DebugPlugin::start(command(&s), &s.sockets);
        let config = plugin.config.clone().test(false);
        let client = host(&s).reattach(config).start().await.unwrap();
        put_get(&client, "k", "v").await;
        let report = client.shutdown().await;
        assert!(report.graceful, "{name}: {report:?}");
        assert!(!report.left_running, "{name}: {report:?}");
        // Exited on the host's Shutdown request, cleanly.
        let status = plugin.child.wait().unwrap();
        assert!(status.success(), "{name}: {status}");
        assert!(!plugin.alive());
    }
}

#[tokio::test]
async fn a_failed_reattach_is_a_typed_error_and_signals_nothing() {
    let s = Harness::shared();
    // A live process that is not a plugin, at an address nobody serves.
    let mut bystander = s.command("sleep").arg("30").spawn().unwrap();
    let pid = bystander.id();
    let nowhere = goplug::handshake::PluginAddress::Unix(s.sockets.join("nothing.sock"));
    let config = ReattachConfig::new(Protocol::Grpc, 1, nowhere.clone(), pid);
    match host(&s).reattach(config.clone()).start().await {
        Err(Error::ReattachProcessNotFound {
            pid: got, address, ..
        }) => {
            assert_eq!(got, pid);
            assert_eq!(address, nowhere);
        }
        other => panic!("expected ReattachProcessNotFound, got {other:?}"),
    }
    let text = host(&s)
        .reattach(config.clone())
        .start()
        .await
        .unwrap_err()
        .to_string();
    // go-plugin's text starts the message.
    assert!(text.starts_with("reattachment process not found"), "{text}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        bystander.try_wait().unwrap().is_none(),
        "the bystander was signalled"
    );

    // A pid that exists no more.
    bystander.kill().unwrap();
    bystander.wait().unwrap();
    let gone = ReattachConfig::new(Protocol::Grpc, 1, nowhere, pid);
    let err = host(&s).reattach(gone).start().await.unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("no process has pid {pid}")),
        "{err}"
    );

    // Configurations go-plugin refuses too. Written after `reattach` they
    // do not compile (the reattach builder lacks them); before it, start
    // refuses them.
    let err = host(&s)
        .checksum(Checksum::of_bytes(b"anything"))
        .reattach(config.clone())
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ChecksumAndReattach), "{err:?}");
    assert_eq!(
        err.to_string(),
        "only one of Reattach or SecureConfig can be set"
    );
    let mut netrpc = config.clone();
    netrpc.protocol = Protocol::NetRpc;
    let err = host(&s).reattach(netrpc).start().await.unwrap_err();
    assert!(
        matches!(err, Error::ReattachProcessNotFound { .. }),
        "{err:?}"
    );
    let err = host(&s)
        .auto_mtls(true)
        .reattach(config.clone())
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    let err = host(&s)
        .grpc_broker_multiplex(true)
        .reattach(config.clone())
        .start()
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("not supported with Reattach"),
        "{err}"
    );
    // A plugin set given twice for one version is refused, not dropped.
    let err = host(&s)
        .plugins(goplug::host::PluginSet::new())
        .reattach(config)
        .start()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("was given twice"), "{err}");
}

/// Kills `host` (SIGKILL, no chance to clean up) and reaps it.
fn kill_host(mut host: Child) {
    host.kill().unwrap();
    host.wait().unwrap();
}

#[tokio::test]
async fn a_rust_plugin_exits_when_its_go_host_is_killed() {
    let s = Harness::shared();
    let plugin = format!("exec {FAKE} pid-file '{}' kv", s.pid_file().display());
    let host = Command::new(go_bin("probe-host"))
        .args(["-cmd", &plugin, "-ping", "-wait", "60s"])
        .env("PLUGIN_UNIX_SOCKET_DIR", &s.sockets)
        .current_dir(&s.work)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = read_pid(&s.pid_file());
    // Connected: the plugin's socket exists.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while sockets_under(&s.sockets).is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !sockets_under(&s.sockets).is_empty(),
        "the plugin never listened"
    );
    kill_host(host);
    // A Go plugin would run on as an orphan here; goplug's notices.
    process_gone(pid, settle()).await;
    assert_eq!(sockets_under(&s.sockets), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn only_plugins_launched_to_keep_running_can_be_detached() {
    let s = Harness::shared();
    let client = s.kv_host(s.fake("kv")).start().await.unwrap();
    let pid = client.pid().unwrap();
    let err = client.detach().unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    // The refused client was dropped: the plugin was killed with it.
    process_gone(pid, settle()).await;
    s.assert_clean().await;
}

#[tokio::test]
async fn children_that_left_the_plugin_die_with_its_process_group() {
    for graceful in [true, false] {
        let s = Harness::shared();
        let client = s
            .kv_host(s.fake("kv-orphan-child"))
            .runner(goplug::host::LocalRunner::new().own_process_group(true))
            .start()
            .await
            .unwrap();
        let orphan = read_pid(&s.path("orphan.pid"));
        assert!(std::path::Path::new(&format!("/proc/{orphan}")).exists());
        if graceful {
            let report = client.shutdown().await;
            assert!(report.graceful, "{report:?}");
        } else {
            drop(client);
        }
        process_gone(orphan, settle()).await;
        s.assert_clean().await;
    }
}

/// The default runner uses the command's program, arguments, environment
/// and working directory; `fork_exec(true)` forks so that the command's
/// other `CommandExt` settings (here `arg0`, also a `pre_exec` hook) apply.
#[tokio::test]
async fn fork_exec_applies_the_commands_own_settings() {
    use std::os::unix::process::CommandExt;
    for fork in [false, true] {
        let s = Harness::shared();
        let hook_ran = s.path(&format!("pre-exec-{fork}"));
        let mut command = s.fake("kv");
        command.arg0("goplug-renamed-plugin");
        let marker = std::ffi::CString::new(hook_ran.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: the hook only makes two system calls (open with O_CREAT,
        // close) with a path prepared before the fork; nothing allocates.
        #[expect(unsafe_code, reason = "a pre_exec hook, as a user would add")]
        unsafe {
            command.pre_exec(move || {
                let created = nix::fcntl::open(
                    marker.as_c_str(),
                    nix::fcntl::OFlag::O_CREAT | nix::fcntl::OFlag::O_WRONLY,
                    nix::sys::stat::Mode::S_IRUSR,
                );
                drop(created);
                Ok(())
            });
        }
        let client = s
            .kv_host(command)
            .runner(goplug::host::LocalRunner::new().fork_exec(fork))
            .start()
            .await
            .unwrap();
        let pid = client.pid().expect("a local plugin has a pid");
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        let arg0 = String::from_utf8_lossy(cmdline.split(|b| *b == 0).next().unwrap()).into_owned();
        if fork {
            assert_eq!(arg0, "goplug-renamed-plugin");
            assert!(hook_ran.exists(), "the pre_exec hook ran");
        } else {
            assert_ne!(arg0, "goplug-renamed-plugin");
            assert!(!hook_ran.exists(), "the pre_exec hook did not run");
        }
        assert!(client.shutdown().await.graceful);
        s.assert_clean().await;
    }
}

/// A runner as a container runtime would be: it starts the plugin through
/// the local runner but sees its socket under another path (`view`), which
/// the host must translate to reach it.
struct ViewRunner {
    view: PathBuf,
    started: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

#[derive(Debug)]
struct ViewPlugin {
    inner: Box<dyn goplug::host::RunningPlugin>,
    real: PathBuf,
    view: PathBuf,
}

impl goplug::host::Runner for ViewRunner {
    fn start(
        self: Box<Self>,
        launch: goplug::host::runner::Launch,
    ) -> goplug::host::runner::BoxFuture<'static, std::io::Result<goplug::host::runner::Started>>
    {
        Box::pin(async move {
            self.started
                .store(true, std::sync::atomic::Ordering::SeqCst);
            let real = launch.socket_dir.clone();
            let mut started = Box::new(goplug::host::LocalRunner::new())
                .start(launch)
                .await?;
            started.plugin = Box::new(ViewPlugin {
                inner: started.plugin,
                real,
                view: self.view,
            });
            Ok(started)
        })
    }
}

impl goplug::host::RunningPlugin for ViewPlugin {
    fn id(&self) -> String {
        self.inner.id()
    }
    fn pid(&self) -> Option<u32> {
        self.inner.pid()
    }
    fn wait(&self) -> goplug::host::runner::BoxFuture<'_, goplug::host::runner::PluginExit> {
        self.inner.wait()
    }
    fn kill(&self) {
        self.inner.kill();
    }
    fn plugin_to_host(
        &self,
        address: goplug::handshake::PluginAddress,
    ) -> goplug::handshake::PluginAddress {
        match address {
            goplug::handshake::PluginAddress::Unix(path) => match path.strip_prefix(&self.real) {
                Ok(rest) => goplug::handshake::PluginAddress::Unix(self.view.join(rest)),
                Err(_) => goplug::handshake::PluginAddress::Unix(path),
            },
            other => other,
        }
    }
}

#[tokio::test]
async fn a_custom_runner_starts_the_plugin_and_translates_its_address() {
    let s = Harness::shared();
    let view = s.work.join("view");
    let started = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The "container" path: a link that exists only once the host has
    // made the plugin's socket directory, which the runner learns at start.
    let client = s
        .kv_host(s.fake("kv"))
        .runner(LinkingRunner(ViewRunner {
            view: view.clone(),
            started: started.clone(),
        }))
        .start()
        .await
        .unwrap();
    assert!(started.load(std::sync::atomic::Ordering::SeqCst));
    match client.address() {
        goplug::handshake::PluginAddress::Unix(path) => {
            assert!(
                path.starts_with(&view),
                "not translated: {}",
                path.display()
            );
        }
        other => panic!("{other}"),
    }
    put_get(&client, "runner", "works").await;
    let report = client.shutdown().await;
    assert!(report.graceful, "{report:?}");
    s.assert_clean().await;
}

/// Makes `view` a link to the socket directory, then runs the inner runner.
struct LinkingRunner(ViewRunner);

impl goplug::host::Runner for LinkingRunner {
    fn start(
        self: Box<Self>,
        launch: goplug::host::runner::Launch,
    ) -> goplug::host::runner::BoxFuture<'static, std::io::Result<goplug::host::runner::Started>>
    {
        if let Err(e) = std::os::unix::fs::symlink(&launch.socket_dir, &self.0.view) {
            return Box::pin(async move { Err(e) });
        }
        Box::new(self.0).start(launch)
    }
}

struct FailingRunner;

impl goplug::host::Runner for FailingRunner {
    fn start(
        self: Box<Self>,
        _launch: goplug::host::runner::Launch,
    ) -> goplug::host::runner::BoxFuture<'static, std::io::Result<goplug::host::runner::Started>>
    {
        Box::pin(async { Err(std::io::Error::other("no container runtime here")) })
    }
}

struct HangingRunner;

impl goplug::host::Runner for HangingRunner {
    fn start(
        self: Box<Self>,
        _launch: goplug::host::runner::Launch,
    ) -> goplug::host::runner::BoxFuture<'static, std::io::Result<goplug::host::runner::Started>>
    {
        Box::pin(std::future::pending())
    }
}

#[tokio::test]
async fn runner_failures_are_typed_errors() {
    let s = Harness::shared();
    let err = s
        .kv_host(s.fake("kv"))
        .runner(FailingRunner)
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Spawn { .. }), "{err:?}");
    assert!(
        err.to_string().contains("no container runtime here"),
        "{err}"
    );

    let err = s
        .kv_host(s.fake("kv"))
        .runner(HangingRunner)
        .start_timeout(Duration::from_millis(300))
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::StartTimeout { .. }), "{err:?}");

    let err = s
        .kv_host(s.fake("kv"))
        .runner(FailingRunner)
        .keep_running(true)
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    s.assert_clean().await;
}

#[tokio::test]
async fn a_net_rpc_debug_plugin_is_reattached_too() {
    let s = Harness::shared();
    let mut command = rust_debug_plugin(&s);
    command.env("FAKE_PROTOCOL", "netrpc");
    let mut plugin = DebugPlugin::start(command, &s.sockets);
    assert_eq!(plugin.config.protocol, Protocol::NetRpc);
    let client = Client::builder(HANDSHAKE)
        .plugins(PluginSet::new().netrpc_with("kv", |rpc, _| goplug_example_kv::KvRpc::new(rpc)))
        .reattach(plugin.config.clone())
        .start()
        .await
        .unwrap();
    let kv: goplug_example_kv::KvRpc = client.dispense_named_async("kv").await.unwrap();
    kv.put("k", b"netrpc").await.unwrap();
    assert!(kv.get("k").await.unwrap().starts_with(b"netrpc\n"));
    assert!(client.shutdown().await.left_running);
    assert!(plugin.alive());
    assert!(plugin.terminate().success());
}

/// A version requirement applies to an attached plugin too: one that does
/// not meet it is let go (in test mode, only disconnected), and one that
/// does is kept.
#[tokio::test]
async fn a_reattached_plugin_is_held_to_the_version_requirement() {
    let s = Harness::shared();
    let mut command = rust_debug_plugin(&s);
    command.env("FAKE_PLUGIN_VERSION", "1.4.2");
    let mut plugin = DebugPlugin::start(command, &s.sockets);

    let err = host(&s)
        .reattach(plugin.config.clone())
        .require_version(">=99.0.0")
        .start()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::PluginVersionUnmet { version, .. } if version.to_string() == "1.4.2"),
        "{err:?}"
    );
    assert!(plugin.alive(), "the host stopped a test-mode plugin");

    // Given before `reattach`, it carries over.
    let client = host(&s)
        .require_version("~> 1.4")
        .reattach(plugin.config.clone())
        .start()
        .await
        .unwrap();
    assert_eq!(
        client
            .plugin_version()
            .await
            .unwrap()
            .map(ToString::to_string),
        Some("1.4.2".to_owned())
    );
    assert!(client.shutdown().await.left_running);
    let status = plugin.terminate();
    assert!(status.success(), "{status}");
}

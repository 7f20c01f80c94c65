//! Playing the host: the handshake from flags and presets, launching the
//! plugin with its output labelled on stderr, a progress line while it
//! starts, and start errors turned into one line that says what to do.

use std::borrow::Cow;
use std::io::Write as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use goplug::host::{Client, PluginSet};
use goplug::log::{LogLevel, StderrParser};
use goplug::{Error, HandshakeConfig, HandshakeError, Protocol};

use crate::error::CliError;
use crate::presets::Preset;
use crate::style::Style;

/// Everything needed to launch a plugin as a host would.
#[derive(Clone, Debug)]
pub(crate) struct HostConfig {
    pub(crate) program: String,
    pub(crate) args: Vec<String>,
    pub(crate) cookie_key: String,
    pub(crate) cookie_value: String,
    pub(crate) versions: Vec<u32>,
    pub(crate) protocols: Vec<Protocol>,
    pub(crate) auto_mtls: bool,
    pub(crate) start_timeout: Duration,
    /// Extra environment for the plugin (a preset's, then `--env`).
    pub(crate) env: Vec<(String, String)>,
    /// Where the plugin runs.
    pub(crate) current_dir: Option<std::path::PathBuf>,
    /// Copy the plugin's output to stderr, labelled.
    pub(crate) show_output: bool,
    /// `inspect --require-version`: the plugin's version must meet it.
    pub(crate) require_version: Option<goplug::host::VersionConstraint>,
    /// `--sandbox` and its `--allow-*` paths.
    pub(crate) sandbox: Option<goplug::host::Sandbox>,
}

/// The flags that shape the handshake, before the preset is applied.
#[derive(Clone, Debug, Default)]
pub(crate) struct HandshakeFlags {
    pub(crate) preset: Option<&'static Preset>,
    pub(crate) cookie_key: Option<String>,
    pub(crate) cookie_value: Option<String>,
    pub(crate) versions: Option<Vec<u32>>,
    pub(crate) protocols: Option<Vec<Protocol>>,
    pub(crate) auto_mtls: Option<bool>,
    pub(crate) env: Vec<String>,
}

impl HandshakeFlags {
    /// Applies the preset, then the flags over it.
    ///
    /// # Errors
    ///
    /// A usage error when no cookie is known or `--env` is malformed.
    pub(crate) fn resolve(
        self,
        program: String,
        args: Vec<String>,
        start_timeout: Duration,
    ) -> Result<HostConfig, CliError> {
        let preset = self.preset;
        let cookie_key = self
            .cookie_key
            .or_else(|| preset.map(|p| p.cookie_key.to_owned()));
        let cookie_value = self
            .cookie_value
            .or_else(|| preset.map(|p| p.cookie_value.to_owned()));
        let (cookie_key, cookie_value) = match (cookie_key, cookie_value) {
            (Some(key), Some(value)) if !key.is_empty() && !value.is_empty() => (key, value),
            (None, None) => {
                return Err(CliError::usage(
                    "no magic cookie: a plugin only starts with its host's cookie; pass --cookie-key and --cookie-value, or --preset terraform|vault|vault-database",
                ));
            }
            (Some(_), None) => {
                return Err(CliError::usage("--cookie-key needs --cookie-value"));
            }
            (None, Some(_)) => {
                return Err(CliError::usage("--cookie-value needs --cookie-key"));
            }
            _ => {
                return Err(CliError::usage(
                    "the magic cookie key and value may not be empty",
                ));
            }
        };
        let mut versions = self
            .versions
            .or_else(|| preset.map(|p| p.versions.to_vec()))
            .unwrap_or_else(|| vec![1]);
        versions.sort_unstable();
        versions.dedup();
        if versions.is_empty() {
            return Err(CliError::usage("--versions needs at least one version"));
        }
        let protocols = self
            .protocols
            .or_else(|| preset.map(|p| p.protocols.to_vec()))
            .unwrap_or_else(|| vec![Protocol::Grpc, Protocol::NetRpc]);
        let auto_mtls = self
            .auto_mtls
            .or_else(|| preset.map(|p| p.auto_mtls))
            .unwrap_or(false);
        let mut env: Vec<(String, String)> = preset
            .map(|p| {
                p.env
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        for pair in self.env {
            let Some((key, value)) = pair.split_once('=').filter(|(key, _)| !key.is_empty()) else {
                return Err(CliError::usage(format!(
                    "--env {pair:?} is not KEY=VALUE; write it as --env NAME=value"
                )));
            };
            env.push((key.to_owned(), value.to_owned()));
        }
        Ok(HostConfig {
            program,
            args,
            cookie_key,
            cookie_value,
            versions,
            protocols,
            auto_mtls,
            start_timeout,
            env,
            current_dir: None,
            show_output: true,
            require_version: None,
            sandbox: None,
        })
    }
}

impl HostConfig {
    /// The plugin's short name, for labels.
    pub(crate) fn label(&self) -> String {
        std::path::Path::new(&self.program).file_name().map_or_else(
            || self.program.clone(),
            |n| n.to_string_lossy().into_owned(),
        )
    }

    /// Launches the plugin and connects, with a progress line on a
    /// terminal; Ctrl-C stops it. On error the plugin is gone.
    ///
    /// # Errors
    ///
    /// A plugin error (exit 3) that says what to do, or a usage error for
    /// settings the library refuses.
    pub(crate) async fn start(&self) -> Result<Client, CliError> {
        let handshake = HandshakeConfig {
            protocol_version: self.versions[0],
            magic_cookie_key: Cow::Owned(self.cookie_key.clone()),
            magic_cookie_value: Cow::Owned(self.cookie_value.clone()),
        };
        let mut command = std::process::Command::new(&self.program);
        command.args(&self.args);
        // The host's environment first, then the preset's and `--env`, so
        // those win (go-plugin's order would let the host's win).
        command.envs(std::env::vars_os());
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(dir) = &self.current_dir {
            command.current_dir(dir);
        }
        let mut builder = Client::builder(handshake)
            .command(command)
            .skip_host_env(true)
            .allowed_protocols(self.protocols.iter().copied())
            .auto_mtls(self.auto_mtls)
            .start_timeout(self.start_timeout);
        for version in &self.versions {
            builder = builder.version(*version, PluginSet::new());
        }
        if let Some(constraint) = &self.require_version {
            builder = builder.require_version_constraint(constraint.clone());
        }
        if let Some(sandbox) = &self.sandbox {
            builder = builder.sandbox(sandbox.clone());
        }
        if self.show_output {
            let label = self.label();
            builder = builder
                .stderr(Labelled::new(label.clone(), Source::Log))
                .sync_stdout(Labelled::new(label.clone(), Source::Stdout))
                .sync_stderr(Labelled::new(label, Source::Stderr));
        }
        let progress = Progress::start(format!("starting {}", self.label()));
        let started = tokio::select! {
            started = builder.start() => started,
            () = interrupted() => {
                drop(progress);
                return Err(CliError::interrupted());
            }
        };
        drop(progress);
        started.map_err(|e| self.start_error(e))
    }

    /// Explains a failed start in one line, with what to do.
    fn start_error(&self, error: Error) -> CliError {
        let program = &self.program;
        let cookie_hint = format!(
            "it refused the magic cookie {}=…: it is a plugin of another host; pass that host's cookie with --cookie-key and --cookie-value, or a --preset",
            self.cookie_key
        );
        let refused_cookie = goplug::StderrTail::cookie_rejected;
        match error {
            Error::Spawn { error: source, .. } => {
                let hint = match source.kind() {
                    std::io::ErrorKind::NotFound => {
                        "check the path: PLUGIN is an executable file, or a command on PATH"
                    }
                    std::io::ErrorKind::PermissionDenied => {
                        "check the path, and make the file executable (chmod +x)"
                    }
                    _ if source.raw_os_error() == Some(8) => {
                        "it is not a program this system can run (for a script, add a #! line)"
                    }
                    _ => "check that PLUGIN is an executable plugin binary",
                };
                CliError::plugin(format!("cannot run {program}: {source}; {hint}"))
            }
            Error::StartTimeout { timeout, stderr } => {
                if refused_cookie(&stderr) {
                    return CliError::plugin(format!("{program} did not start: {cookie_hint}"));
                }
                CliError::plugin(format!(
                    "{program} printed no handshake within {}: it is not a go-plugin plugin, or it waits for something (see its output above); if it is only slow, raise --start-timeout",
                    human_duration(timeout)
                ))
            }
            Error::ExitedBeforeHandshake { status, stderr } => {
                if refused_cookie(&stderr) {
                    return CliError::plugin(format!("{program} exited: {cookie_hint}"));
                }
                let how = status.map_or_else(
                    || "closed its stdout".to_owned(),
                    |status| format!("exited ({status})"),
                );
                CliError::plugin(format!(
                    "{program} {how} before its handshake: it is not a go-plugin plugin, or it failed at start-up (its output is above); check the path and the plugin's arguments"
                ))
            }
            Error::Handshake(handshake) => self.handshake_error(handshake),
            Error::Tls { .. } | Error::Connect { .. } => CliError::plugin(format!(
                "{}; the plugin handshook but the connection failed: if it expects AutoMTLS pass --auto-mtls, if it does not, leave it off",
                first_line(&error.to_string())
            )),
            Error::Config(message) => CliError::usage(message),
            Error::Sandbox { .. } => CliError::usage(format!(
                "{error}; --allow-read and --allow-write take paths that exist"
            )),
            Error::SandboxUnsupported { .. } => CliError::plugin(error.to_string()),
            Error::PluginVersionUnmet {
                constraint,
                version,
            } => CliError::plugin(format!(
                "{program} is version {version}, which does not meet --require-version '{constraint}'"
            )),
            Error::PluginVersionMissing { constraint, reason } => CliError::plugin(format!(
                "{program} reports no version ({reason}), so it cannot meet --require-version '{constraint}'"
            )),
            other => CliError::plugin(first_line(&other.to_string())),
        }
    }

    fn handshake_error(&self, error: HandshakeError) -> CliError {
        let program = &self.program;
        match error {
            HandshakeError::StdoutNoise { line, .. } => CliError::plugin(format!(
                "{program} printed {line:?} instead of a go-plugin handshake line: it is not a go-plugin plugin, or it prints to stdout before it serves"
            )),
            HandshakeError::StdoutLog { line, .. } => CliError::plugin(format!(
                "{program} logged {line:?} on stdout, where its handshake line goes: a plugin logs to stderr (a goplug plugin with `goplug::log::init()`; `tracing_subscriber::fmt()` writes to stdout by default)"
            )),
            HandshakeError::AppVersionMismatch { plugin, host, .. } => CliError::plugin(format!(
                "the plugin speaks app protocol version {plugin}, and the host offered {}: pass --versions {plugin}",
                join(&host)
            )),
            HandshakeError::ProtocolNotAllowed { protocol, .. } => CliError::plugin(format!(
                "the plugin speaks {protocol}, which --protocols did not allow: pass --protocols grpc,netrpc"
            )),
            HandshakeError::MissingCertificate { .. } => CliError::plugin(
                "the plugin sent no certificate for AutoMTLS: it does not support it; pass --auto-mtls=false",
            ),
            HandshakeError::UnexpectedCertificate { .. } => CliError::plugin(
                "the plugin answered with a TLS certificate although AutoMTLS is off: it expects AutoMTLS; pass --auto-mtls",
            ),
            HandshakeError::CoreVersionMismatch { plugin, line } => CliError::plugin(format!(
                "{program} printed {line:?}, whose core version {plugin} is not go-plugin's 1: it speaks another plugin protocol (Packer plugins do), which goplug cannot host"
            )),
            other => CliError::plugin(format!(
                "{}: the plugin's handshake line is not go-plugin's",
                first_line(&other.to_string())
            )),
        }
    }
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM, so that either stops the
/// plugin cleanly instead of leaving it to the parent-death signal.
pub(crate) async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    let terminate = async {
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

fn join(versions: &[u32]) -> String {
    versions
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The first line of a multi-line message.
pub(crate) fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().trim().to_owned()
}

/// `1.5s`, `250ms`, `2m`.
pub(crate) fn human_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1000 {
        format!("{millis}ms")
    } else if millis.is_multiple_of(60_000) {
        format!("{}m", millis / 60_000)
    } else if millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}

/// Parses `10s`, `500ms`, `2m`, `1.5s` or plain seconds.
///
/// # Errors
///
/// A sentence for clap.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 10s, 500ms or 2m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => {
            return Err(format!(
                "{text:?}: use the unit ms, s or m (10s, 500ms, 2m)"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

/// Whether the progress line is on screen (then output clears it first).
static PROGRESS_SHOWN: AtomicBool = AtomicBool::new(false);

/// Writes one whole line to stderr, clearing the progress line first.
pub(crate) fn write_stderr_line(line: &str) {
    let mut stderr = std::io::stderr().lock();
    if PROGRESS_SHOWN.swap(false, Ordering::SeqCst) {
        let _ = stderr.write_all(b"\r\x1b[2K");
    }
    let _ = writeln!(stderr, "{line}");
}

/// A spinner on stderr (a terminal only) after a plugin takes a moment to
/// start; removed when dropped.
#[derive(Debug)]
pub(crate) struct Progress {
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    pub(crate) fn start(what: String) -> Self {
        use std::io::IsTerminal;
        if !std::io::stderr().is_terminal() {
            return Self { task: None };
        }
        let started = Instant::now();
        let task = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
            for frame in frames.iter().cycle() {
                {
                    let mut stderr = std::io::stderr().lock();
                    let _ = write!(
                        stderr,
                        "\r\x1b[2K{frame} {what}… {:.1}s",
                        started.elapsed().as_secs_f64()
                    );
                    let _ = stderr.flush();
                    PROGRESS_SHOWN.store(true, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Self { task: Some(task) }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        if PROGRESS_SHOWN.swap(false, Ordering::SeqCst) {
            let mut stderr = std::io::stderr().lock();
            let _ = stderr.write_all(b"\r\x1b[2K");
            let _ = stderr.flush();
        }
    }
}

/// Which of the plugin's outputs a [`Labelled`] writer carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// The stderr pipe: go-plugin's log channel (hclog JSON lines).
    Log,
    /// Stdout synced over `plugin.GRPCStdio` (or net/rpc's stdio streams).
    Stdout,
    /// Stderr synced over `plugin.GRPCStdio`.
    Stderr,
}

/// Copies a plugin's output to this process's stderr, one labelled line
/// at a time; hclog JSON lines are shown as text.
pub(crate) struct Labelled {
    label: String,
    source: Source,
    pending: Vec<u8>,
    parser: StderrParser,
    style: Style,
}

impl std::fmt::Debug for Labelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Labelled")
            .field("label", &self.label)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Labelled {
    pub(crate) fn new(label: String, source: Source) -> Self {
        Self {
            label,
            source,
            pending: Vec::new(),
            parser: StderrParser::new(),
            style: Style::stderr(),
        }
    }

    fn emit_complete_lines(&mut self) {
        while let Some(at) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=at).collect();
            self.emit(&line[..line.len() - 1]);
        }
    }

    fn emit(&mut self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let text = text.strip_suffix('\r').unwrap_or(&text);
        let line = self.format(text);
        write_stderr_line(&line);
    }

    fn format(&mut self, text: &str) -> String {
        let style = self.style;
        let tag = match self.source {
            Source::Log => format!("[{}]", self.label),
            Source::Stdout => format!("[{} stdout]", self.label),
            Source::Stderr => format!("[{} stderr]", self.label),
        };
        let tag = style.cyan(&tag);
        if self.source != Source::Log {
            return format!("{tag} {text}");
        }
        let record = self.parser.parse(text);
        if !record.structured {
            return format!("{tag} {text}");
        }
        let level = match record.level {
            LogLevel::Trace => style.dim("TRACE"),
            LogLevel::Debug => style.dim("DEBUG"),
            LogLevel::Info => style.green("INFO "),
            LogLevel::Warn => style.yellow("WARN "),
            LogLevel::Error => style.red("ERROR"),
        };
        let module = record
            .fields
            .iter()
            .find(|(key, _)| key == "@module")
            .map(|(_, module)| format!("{module}: "))
            .unwrap_or_default();
        let fields: Vec<String> = record
            .fields
            .iter()
            .filter(|(key, _)| !key.starts_with('@'))
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        let fields = if fields.is_empty() {
            String::new()
        } else {
            style.dim(&format!(": {}", fields.join(" ")))
        };
        format!("{tag} {level} {module}{}{fields}", record.message)
    }
}

impl tokio::io::AsyncWrite for Labelled {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        this.pending.extend_from_slice(buf);
        this.emit_complete_lines();
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if !this.pending.is_empty() {
            let rest = std::mem::take(&mut this.pending);
            this.emit(&rest);
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for Labelled {
    fn drop(&mut self) {
        // A last line without a newline is still shown.
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.emit(&rest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> HandshakeFlags {
        HandshakeFlags {
            cookie_key: Some("K".into()),
            cookie_value: Some("V".into()),
            ..HandshakeFlags::default()
        }
    }

    #[test]
    fn flags_override_presets() {
        let host = HandshakeFlags {
            preset: Some(&crate::presets::TERRAFORM),
            versions: Some(vec![6]),
            auto_mtls: Some(false),
            env: vec!["A=b=c".into()],
            ..HandshakeFlags::default()
        }
        .resolve("p".into(), vec![], Duration::from_secs(1))
        .unwrap();
        assert_eq!(host.cookie_key, "TF_PLUGIN_MAGIC_COOKIE");
        assert_eq!(host.versions, [6]);
        assert!(!host.auto_mtls);
        assert_eq!(host.protocols, [Protocol::Grpc]);
        assert_eq!(host.env, [("A".to_owned(), "b=c".to_owned())]);

        let plain = flags()
            .resolve("p".into(), vec![], Duration::from_secs(1))
            .unwrap();
        assert_eq!(plain.versions, [1]);
        assert_eq!(plain.protocols, [Protocol::Grpc, Protocol::NetRpc]);
        assert!(!plain.auto_mtls);
    }

    #[test]
    fn missing_or_half_cookies_are_usage_errors() {
        let none = HandshakeFlags::default().resolve("p".into(), vec![], Duration::ZERO);
        assert!(none.unwrap_err().message.contains("--preset"));
        let half = HandshakeFlags {
            cookie_key: Some("K".into()),
            ..HandshakeFlags::default()
        }
        .resolve("p".into(), vec![], Duration::ZERO);
        assert!(half.unwrap_err().message.contains("--cookie-value"));
        let bad_env = HandshakeFlags {
            env: vec!["novalue".into()],
            ..flags()
        }
        .resolve("p".into(), vec![], Duration::ZERO);
        assert!(bad_env.unwrap_err().message.contains("KEY=VALUE"));
    }

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5h").is_err());
        assert_eq!(human_duration(Duration::from_secs(10)), "10s");
        assert_eq!(human_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn log_lines_are_labelled_and_hclog_is_shown_as_text() {
        let mut log = Labelled::new("kv".into(), Source::Log);
        log.style = Style::stderr();
        let line = log.format(
            r#"{"@level":"debug","@message":"plugin address","@module":"plugin","@timestamp":"2026-01-02T03:04:05.000000Z","network":"unix"}"#,
        );
        assert!(line.contains("[kv]"), "{line}");
        assert!(line.contains("plugin: plugin address"), "{line}");
        assert!(line.contains("network=unix"), "{line}");
        assert!(log.format("plain text").ends_with("plain text"));
        let mut out = Labelled::new("kv".into(), Source::Stdout);
        assert!(out.format("hi").contains("[kv stdout]"));
        out.pending.clear();
    }
}

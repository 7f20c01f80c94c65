//! Running OpenTofu v1.6.3 against the provider: the binary (built once
//! by scripts/tofu.sh into a cache outside the repository), a fresh
//! working directory with a filesystem mirror, commands with deadlines.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The provider's source address in the test configurations.
pub const SOURCE: &str = "localhost/goplug/goplug";

/// How long one tofu command may take: generous, never a tight bound.
const COMMAND_DEADLINE: Duration = Duration::from_secs(300);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The tofu binary: `GOPLUG_TOFU` if set, else what scripts/tofu.sh
/// builds (once per test process; the script reuses its cache). Panics
/// with the reason when it cannot be built: the test must fail, not skip.
pub fn tofu() -> &'static Path {
    static TOFU: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let result = TOFU.get_or_init(|| {
        if let Some(path) = std::env::var_os("GOPLUG_TOFU").filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(path));
        }
        let output = Command::new("bash")
            .arg(repo_root().join("scripts/tofu.sh"))
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("running scripts/tofu.sh: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "scripts/tofu.sh could not build OpenTofu v1.6.3 ({}); its output is above",
                output.status
            ));
        }
        let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        Ok(PathBuf::from(path))
    });
    match result {
        Ok(path) => path,
        Err(reason) => panic!("OpenTofu is needed for this test: {reason}"),
    }
}

/// The provider binary cargo built for this test.
pub fn provider_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_terraform-provider-goplug"))
}

/// A fresh directory: `mirror/` with the provider, `cli.tfrc` naming it,
/// `work/` for the configuration, `tofu.log` for TF_LOG=trace.
pub struct Workspace {
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
}

impl Workspace {
    /// With the provider installed in a filesystem mirror.
    pub fn with_mirror() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let package = root.join("mirror").join(SOURCE).join("0.1.0/linux_amd64");
        std::fs::create_dir_all(&package).unwrap();
        // A copy: init links the mirror's directory, and a rebuilt binary
        // in target/ must not change the checksum it recorded.
        std::fs::copy(provider_binary(), package.join("terraform-provider-goplug")).unwrap();
        let mirror = root.join("mirror");
        std::fs::write(
            root.join("cli.tfrc"),
            format!(
                "provider_installation {{\n  filesystem_mirror {{\n    path    = {:?}\n    include = [\"localhost/goplug/*\"]\n  }}\n}}\n",
                mirror.display().to_string()
            ),
        )
        .unwrap();
        let mut workspace = Self::bare(dir);
        let cli = workspace.dir.path().join("cli.tfrc").display().to_string();
        workspace.env.push(("TF_CLI_CONFIG_FILE".into(), cli));
        workspace
    }

    /// Without a mirror (reattach mode); an empty CLI config so the
    /// user's own never applies.
    pub fn bare(dir: tempfile::TempDir) -> Self {
        let root = dir.path();
        std::fs::create_dir_all(root.join("work")).unwrap();
        std::fs::write(root.join("empty.tfrc"), "").unwrap();
        let env = vec![
            (
                "TF_CLI_CONFIG_FILE".into(),
                root.join("empty.tfrc").display().to_string(),
            ),
            ("TF_IN_AUTOMATION".into(), "1".into()),
            ("CHECKPOINT_DISABLE".into(), "1".into()),
            ("TF_LOG".into(), "trace".into()),
            (
                "TF_LOG_PATH".into(),
                root.join("tofu.log").display().to_string(),
            ),
            (
                "TF_DATA_DIR".into(),
                root.join("work/.terraform").display().to_string(),
            ),
        ];
        Self { dir, env }
    }

    pub fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// A file the provider manages (under the provider's root, `files/`).
    pub fn file(&self, name: &str) -> PathBuf {
        self.work().join("files").join(name)
    }

    pub fn write_config(&self, main_tf: &str) {
        std::fs::write(self.work().join("main.tf"), main_tf).unwrap();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tofu.log")).unwrap_or_default()
    }

    /// Runs `tofu args...` in `work/`; the exit code and the output.
    pub fn tofu(&self, args: &[&str]) -> (i32, String) {
        self.tofu_with(args, &[])
    }

    pub fn tofu_with(&self, args: &[&str], extra_env: &[(&str, &str)]) -> (i32, String) {
        let out = self.dir.path().join("out.txt");
        let file = std::fs::File::create(&out).unwrap();
        let mut command = Command::new(tofu());
        command
            .args(args)
            .arg("-no-color")
            .current_dir(self.work())
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .env_remove("TF_REATTACH_PROVIDERS");
        for (key, value) in &self.env {
            command.env(key, value);
        }
        for (key, value) in extra_env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("starting tofu");
        let status = wait_with_deadline(&mut child, COMMAND_DEADLINE)
            .unwrap_or_else(|| panic!("tofu {args:?} did not finish within {COMMAND_DEADLINE:?}"));
        let output = std::fs::read_to_string(&out).unwrap_or_default();
        (status.code().unwrap_or(-1), output)
    }

    /// Runs a command that must exit with `want`; shows its output otherwise.
    pub fn expect(&self, args: &[&str], want: i32) -> String {
        self.expect_with(args, &[], want)
    }

    pub fn expect_with(&self, args: &[&str], extra_env: &[(&str, &str)], want: i32) -> String {
        let (code, output) = self.tofu_with(args, extra_env);
        assert_eq!(
            code, want,
            "tofu {args:?} exited {code}, not {want}:\n{output}"
        );
        output
    }

    /// `tofu output -json` as a JSON map of name to value.
    pub fn outputs(&self, extra_env: &[(&str, &str)]) -> serde_json::Value {
        let output = self.expect_with(&["output", "-json"], extra_env, 0);
        let json: serde_json::Value = serde_json::from_str(&output)
            .unwrap_or_else(|e| panic!("tofu output -json is not JSON ({e}):\n{output}"));
        let mut values = serde_json::Map::new();
        for (name, output) in json.as_object().expect("an object of outputs") {
            values.insert(name.clone(), output["value"].clone());
        }
        serde_json::Value::Object(values)
    }
}

/// Waits for `child` to exit; kills it and returns None past `deadline`.
pub fn wait_with_deadline(child: &mut Child, deadline: Duration) -> Option<ExitStatus> {
    let until = Instant::now() + deadline;
    loop {
        if let Some(status) = child.try_wait().expect("waiting for a child") {
            return Some(status);
        }
        if Instant::now() >= until {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The provider started by hand with `-debug`: killed and reaped when
/// dropped.
pub struct DebugProvider {
    pub child: Child,
    /// The value of `TF_REATTACH_PROVIDERS` it printed.
    pub reattach: String,
}

impl DebugProvider {
    pub fn start(extra_env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(provider_binary());
        command
            .arg("-debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (key, value) in extra_env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("starting the provider");
        let stdout = child.stdout.take().expect("piped stdout");
        // A thread reads the announcement so a silent provider cannot hang
        // the test: the deadline below bounds the wait.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                text.push_str(&line);
                text.push('\n');
                if line.trim_start().starts_with("TF_REATTACH_PROVIDERS=") {
                    let _ = tx.send(Ok((line, text.clone())));
                    return;
                }
            }
            let _ = tx.send(Err(text));
        });
        let mut provider = Self {
            child,
            reattach: String::new(),
        };
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Ok((line, text))) => {
                assert!(
                    text.starts_with("Provider started. To attach Terraform CLI, set the TF_REATTACH_PROVIDERS environment variable with the following:"),
                    "the announcement differs from the Go SDKs':\n{text}"
                );
                let quoted = line.trim().trim_start_matches("TF_REATTACH_PROVIDERS=");
                provider.reattach = quoted.trim_matches('\'').to_owned();
            }
            Ok(Err(text)) => panic!("the provider printed no reattach line:\n{text}"),
            Err(_) => panic!("the provider printed no reattach line within 60 s"),
        }
        provider
    }

    /// Stops it as a developer would (Ctrl-C) and returns how it exited.
    pub fn interrupt(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        wait_with_deadline(&mut self.child, Duration::from_secs(60))
            .expect("the provider did not stop within 60 s of SIGINT")
    }
}

impl Drop for DebugProvider {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Hex SHA-256, as the provider computes it.
pub fn sha256(text: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

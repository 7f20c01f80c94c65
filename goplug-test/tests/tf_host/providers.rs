//! Builds the two Go providers once per machine (time) or per test process
//! (our framework provider, which Go's build cache makes cheap), and
//! panics with Go's output and the fix when a build fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use goplug_test::repo_root;

/// The release of HashiCorp's time provider the test drives: protocol 5,
/// terraform-plugin-framework v1.19.0.
pub(crate) const TIME_VERSION: &str = "v0.14.2";

/// A cold build downloads about sixty modules and compiles them on two
/// busy cores; this bounds a build that hangs, not a slow one.
const BUILD_TIMEOUT: Duration = Duration::from_secs(20 * 60);

/// Where built providers are kept across runs: `GOPLUG_TF_PROVIDER_CACHE`,
/// else `$XDG_CACHE_HOME/goplug/tf-providers`, else
/// `~/.cache/goplug/tf-providers`.
fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("GOPLUG_TF_PROVIDER_CACHE") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))
        .unwrap_or_else(|| repo_root().join("target"));
    base.join("goplug/tf-providers")
}

/// `terraform-provider-time` from the Go module proxy, built by
/// `go install` into the cache the first time and reused after.
pub(crate) fn time_provider() -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let dir = cache_dir().join(format!("time-{TIME_VERSION}"));
        let binary = dir.join("terraform-provider-time");
        if binary.is_file() {
            return Ok(binary);
        }
        // Into a fresh directory, then renamed: a concurrent or interrupted
        // run never leaves a half-written binary where the next one looks.
        std::fs::create_dir_all(cache_dir())
            .map_err(|e| format!("creating {}: {e}", cache_dir().display()))?;
        let staging = tempfile::tempdir_in(cache_dir())
            .map_err(|e| format!("creating a directory in {}: {e}", cache_dir().display()))?;
        let mut go = Command::new("go");
        go.arg("install")
            .arg("-trimpath")
            .arg(format!(
                "github.com/hashicorp/terraform-provider-time@{TIME_VERSION}"
            ))
            .env("GOBIN", staging.path())
            .env("CGO_ENABLED", "0")
            .current_dir(staging.path());
        run_go(
            go,
            "go install github.com/hashicorp/terraform-provider-time",
        )?;
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        std::fs::rename(staging.path().join("terraform-provider-time"), &binary)
            .or_else(|e| if binary.is_file() { Ok(()) } else { Err(e) })
            .map_err(|e| format!("moving the built provider to {}: {e}", binary.display()))?;
        Ok(binary)
    });
    built.clone().unwrap_or_else(|e| panic!("{e}"))
}

/// `interop/tfprovider-framework` (terraform-plugin-framework v1.19.0,
/// protocol 6), built into `target/tf-providers`.
pub(crate) fn framework_provider() -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let out = repo_root().join("target/tf-providers");
        std::fs::create_dir_all(&out).map_err(|e| format!("creating {}: {e}", out.display()))?;
        let binary = out.join("terraform-provider-fwdemo");
        let mut go = Command::new("go");
        go.args(["build", "-o"])
            .arg(&binary)
            .arg(".")
            .env("CGO_ENABLED", "0")
            .current_dir(repo_root().join("interop/tfprovider-framework"));
        run_go(go, "go build in interop/tfprovider-framework")?;
        Ok(binary)
    });
    built.clone().unwrap_or_else(|e| panic!("{e}"))
}

/// Runs a Go build within [`BUILD_TIMEOUT`]; the error carries Go's output.
fn run_go(mut go: Command, what: &str) -> Result<(), String> {
    let log = tempfile::tempfile().map_err(|e| format!("{what}: a log file: {e}"))?;
    let mut child = go
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| format!("{what}: {e}"))?)
        .stderr(log.try_clone().map_err(|e| format!("{what}: {e}"))?)
        .spawn()
        .map_err(|e| format!("{what}: cannot run go: {e} (install Go 1.26.8 or newer)"))?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > BUILD_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{what}: still building after {BUILD_TIMEOUT:?}: check access to the Go module proxy (GOPROXY) and disk space\n{}",
                    read_log(&log)
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => return Err(format!("{what}: waiting for go: {e}")),
        }
    };
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({status}): check access to the Go module proxy (GOPROXY) and the Go version (the time provider needs 1.26.8 or newer)\n{}",
            read_log(&log)
        ))
    }
}

fn read_log(mut log: &std::fs::File) -> String {
    use std::io::{Read, Seek};
    let mut text = String::new();
    let _ = log.rewind();
    let _ = log.read_to_string(&mut text);
    text
}

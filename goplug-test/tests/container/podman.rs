//! A Podman API service of the test's own: its own storage, run root,
//! temp dir, configuration and socket, stopped (and checked stopped) at
//! the end. Podman runs here only with runc, cgroupfs and no default
//! ulimits (crun fails on a hybrid cgroup layout; setting RLIMIT_NOFILE is
//! not permitted in CI's containers).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::ListContainersOptionsBuilder;
use goplug_test::{eventually, repo_root, scaled, step};

const CONTAINERS_CONF: &str = "[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\n";

/// A running `podman system service`.
#[derive(Debug)]
pub(crate) struct Podman {
    dir: tempfile::TempDir,
    service: Option<Child>,
    /// The API socket.
    pub(crate) socket: PathBuf,
}

/// Podman's path, or a failure saying how to get it.
fn podman_binary() -> PathBuf {
    for tool in ["podman", "runc"] {
        let found = std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()));
        assert!(
            found,
            "`{tool}` is not installed: the container runner's tests run plugins in Podman with runc (Debian: apt-get install podman runc; .ci/run installs them)"
        );
    }
    PathBuf::from("podman")
}

impl Podman {
    /// Starts the service and waits until it answers.
    pub(crate) fn start() -> Self {
        let program = podman_binary();
        // A short path: the API socket's must fit in sockaddr_un.
        let dir = tempfile::Builder::new()
            .prefix("goplug-podman-")
            .tempdir_in("/tmp")
            .expect("a temp dir");
        for sub in ["root", "runroot", "tmp"] {
            std::fs::create_dir(dir.path().join(sub)).expect("a podman dir");
        }
        std::fs::write(dir.path().join("containers.conf"), CONTAINERS_CONF)
            .expect("containers.conf");
        let socket = dir.path().join("api.sock");
        let log = std::fs::File::create(dir.path().join("service.log")).expect("the service log");
        let mut podman = Self {
            dir,
            service: None,
            socket,
        };
        let mut command = podman.command_of(&program);
        command
            .args(["system", "service", "--time=0"])
            .arg(format!("unix://{}", podman.socket.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        podman.service = Some(command.spawn().expect("starting podman system service"));
        let socket = podman.socket.clone();
        // Generous: on a loaded machine a service's start has taken 30 s.
        eventually(
            scaled(Duration::from_secs(120)),
            "the podman service answers",
            || {
                std::os::unix::net::UnixStream::connect(&socket)
                    .map(drop)
                    .map_err(|e| format!("{}: {e}; {}", socket.display(), podman.log()))
            },
        );
        podman
    }

    /// A `podman` command on this service's storage and configuration.
    pub(crate) fn command(&self) -> Command {
        self.command_of(Path::new("podman"))
    }

    fn command_of(&self, program: &Path) -> Command {
        let path = |sub: &str| self.dir.path().join(sub);
        let mut command = Command::new(program);
        command
            .env("CONTAINERS_CONF", path("containers.conf"))
            .env("TMPDIR", path("tmp"))
            .arg("--root")
            .arg(path("root"))
            .arg("--runroot")
            .arg(path("runroot"))
            .arg("--tmpdir")
            .arg(path("tmp"))
            .args(["--cgroup-manager", "cgroupfs", "--runtime", "runc"]);
        command
    }

    /// The `unix://` endpoint of the API.
    pub(crate) fn endpoint(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    fn log(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("service.log")).unwrap_or_default();
        format!("service log: {}", text.trim())
    }

    /// Builds an image `FROM scratch` with `files` (path in the image,
    /// file on the host) `/plugin` as its entrypoint and `/data` as its working directory; returns its id
    /// (`sha256:...`).
    pub(crate) fn build_image(&self, tag: &str, files: &[(String, PathBuf)]) -> String {
        let context = self.dir.path().join(format!("build-{tag}"));
        let mut containerfile = String::from("FROM scratch\n");
        for (i, (inside, host)) in files.iter().enumerate() {
            let staged = format!("f{i}");
            std::fs::copy(host, context_file(&context, &staged)).unwrap_or_else(|e| {
                panic!("copying {} into the build context: {e}", host.display())
            });
            containerfile.push_str(&format!("COPY {staged} {inside}\n"));
        }
        // The KV plugins write their files in their working directory; an
        // empty image's root is not writable without CAP_DAC_OVERRIDE.
        containerfile.push_str("WORKDIR /data\nENTRYPOINT [\"/plugin\"]\n");
        std::fs::write(context.join("Containerfile"), containerfile).expect("a Containerfile");
        let output = self
            .command()
            .args(["build", "--quiet", "--tag", tag])
            .arg(&context)
            .output()
            .expect("running podman build");
        assert!(
            output.status.success(),
            "podman build {tag}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let id = String::from_utf8_lossy(&output.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_owned();
        assert_eq!(id.len(), 64, "podman build printed no image id: {id:?}");
        format!("sha256:{id}")
    }

    /// Every container of the service, running or not, as the Docker API
    /// lists them. Podman reports some states Docker has not (`stopped`,
    /// between the exit and the cleanup), which bollard cannot read, and
    /// fails a listing that meets a removal: either is reported as one
    /// container.
    pub(crate) async fn containers(&self) -> Vec<String> {
        let docker = Docker::connect_with_unix(
            &self.socket.to_string_lossy(),
            30,
            bollard::API_DEFAULT_VERSION,
        )
        .expect("a client of the podman service");
        let options = ListContainersOptionsBuilder::new().all(true).build();
        match docker.list_containers(Some(options)).await {
            Ok(list) => list
                .into_iter()
                .map(|c| format!("{:?} {:?} {:?}", c.id, c.names, c.state))
                .collect(),
            Err(bollard::errors::Error::JsonDataError { message, .. }) => {
                vec![format!("a container bollard cannot describe: {message}")]
            }
            // Podman fails a listing that meets a container being removed.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 500,
                message,
            }) if message.contains("container not known") => {
                vec![format!("a container being removed: {message}")]
            }
            Err(e) => panic!("listing containers: {e}"),
        }
    }

    /// Stops the service and checks it is gone.
    pub(crate) fn stop(mut self) {
        let mut service = self.service.take().expect("the service");
        let pid = nix::unistd::Pid::from_raw(service.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let mut status = None;
        eventually(step(), "the podman service exits on SIGTERM", || {
            status = service.try_wait().map_err(|e| e.to_string())?;
            status.map(drop).ok_or_else(|| "still running".to_owned())
        });
        assert!(
            std::os::unix::net::UnixStream::connect(&self.socket).is_err(),
            "the service's socket still answers"
        );
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        if let Some(mut service) = self.service.take() {
            let _ = service.kill();
            let _ = service.wait();
        }
        // Image layers stay mounted nowhere once the service is gone;
        // podman's storage has read-only files its own removal handles.
        let _ = self
            .command()
            .args(["system", "reset", "--force"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn context_file(context: &Path, name: &str) -> PathBuf {
    std::fs::create_dir_all(context).expect("a build context");
    context.join(name)
}

/// A Go program of interop/go/cmd as a static binary (`CGO_ENABLED=0`),
/// built once per run.
pub(crate) fn static_go_plugin(name: &'static str) -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let out = repo_root().join("target/interop-go-static");
        // `go build -o` writes several programs only into a directory that exists.
        std::fs::create_dir_all(&out).map_err(|e| format!("creating {}: {e}", out.display()))?;
        let output = Command::new("go")
            .args(["build", "-o"])
            .arg(&out)
            .args(["./cmd/kv-plugin-go-grpc", "./cmd/bidirectional-plugin-go"])
            .env("CGO_ENABLED", "0")
            .current_dir(repo_root().join("interop/go"))
            .output()
            .map_err(|e| format!("running `go build`: {e} (is Go installed?)"))?;
        if !output.status.success() {
            return Err(format!(
                "CGO_ENABLED=0 go build in interop/go: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(out)
    });
    match dir {
        Ok(dir) => dir.join(name),
        Err(e) => panic!("{e}"),
    }
}

/// The files a dynamically linked `binary` needs in an empty image: the
/// binary as `/plugin`, and each library `ldd` names at its own path.
pub(crate) fn with_libraries(binary: &Path) -> Vec<(String, PathBuf)> {
    let output = Command::new("ldd")
        .arg(binary)
        .output()
        .expect("running ldd");
    assert!(output.status.success(), "ldd {}", binary.display());
    let mut files = vec![("/plugin".to_owned(), binary.to_path_buf())];
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` or
        // `/lib64/ld-linux-x86-64.so.2 (0x...)`; the vDSO has no file.
        let path = line
            .split("=>")
            .last()
            .and_then(|rest| rest.split_whitespace().next())
            .filter(|path| path.starts_with('/'));
        if let Some(path) = path {
            files.push((path.to_owned(), PathBuf::from(path)));
        }
    }
    files
}

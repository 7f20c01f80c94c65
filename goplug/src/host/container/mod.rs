//! Plugins as OCI containers on a container engine that serves the Docker
//! Engine API (Docker, or Podman's `podman system service`): what Vault
//! and Grafana do with go-plugin's runner interface and
//! `go-secure-stdlib/plugincontainer`.
//!
//! ```no_run
//! # async fn example() -> goplug::Result<()> {
//! use goplug::HandshakeConfig;
//! use goplug::host::{Client, ContainerRunner};
//!
//! const HANDSHAKE: HandshakeConfig = HandshakeConfig::new(1, "BASIC_PLUGIN", "hello");
//! let runner = ContainerRunner::new(
//!     "sha256:0eaeb70e5f60818c9aefa76c398de5e1db88bbd77d40b6d946f303fccfc70003",
//! )
//! .engine("unix:///run/podman/podman.sock");
//! let client = Client::builder(HANDSHAKE)
//!     // Names the plugin in logs; the image's entrypoint runs.
//!     .command(std::process::Command::new("kv-plugin"))
//!     .runner(runner)
//!     .start()
//!     .await?;
//! let report = client.shutdown().await;
//! # let _ = report; Ok(()) }
//! ```

mod engine;
mod image;
mod running;

use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{AttachContainerOptionsBuilder, StartContainerOptions};

use self::engine::Engine;
use self::image::Pin;
use self::running::{ContainerPlugin, Created, OUTPUT_BUFFER, SocketDirs};
use super::runner::{BoxFuture, Launch, Runner, Started};
use crate::error::Error;
use crate::protocol::env;

/// Where the host's socket directory is mounted in the container (the path
/// go-secure-stdlib's plugincontainer uses).
pub const CONTAINER_SOCKET_DIR: &str = "/tmp/go-plugin-container";

/// The engine endpoint when neither the runner nor `DOCKER_HOST` names one.
pub const DEFAULT_ENGINE: &str = "unix:///var/run/docker.sock";

/// Runs the plugin as a container (requires the `container` feature).
///
/// For each launch the runner checks that the image is in the engine's
/// store (it never pulls) and carries the pinned digest, creates a
/// container from it with the host's socket directory bind-mounted at
/// [`CONTAINER_SOCKET_DIR`] (and `PLUGIN_UNIX_SOCKET_DIR` saying so), the
/// launch's own variables as its environment (go-plugin's and those set
/// on the command, never the host's), all capabilities dropped,
/// `no-new-privileges`, no network unless [`network`](Self::network) says
/// otherwise, and no restart policy. It attaches to the container's output
/// before starting it: the handshake is read from its stdout, its stderr
/// is the plugin's log. Socket paths are translated between the two sides
/// of the mount. At shutdown, and on every failed or cancelled start, the
/// container is killed and removed; its exit code is the exit status the
/// host reports.
///
/// The image's entrypoint runs; the arguments of the host's command, if
/// any, replace the image's `CMD`. The command's program only names the
/// plugin in logs.
#[derive(Clone, Debug)]
pub struct ContainerRunner {
    image: String,
    allow_unpinned: bool,
    endpoint: Option<String>,
    runtime: Option<String>,
    network: String,
    user: Option<String>,
    labels: Vec<(String, String)>,
    memory_bytes: Option<i64>,
    nano_cpus: Option<i64>,
}

impl ContainerRunner {
    /// A runner for `image`, pinned by digest: its image id
    /// (`sha256:<hex>`, as `docker images --no-trunc -q` prints it) or a
    /// name with a manifest digest (`name@sha256:<hex>`). A name or tag
    /// alone is refused unless [`allow_unpinned`](Self::allow_unpinned).
    pub fn new(image: impl Into<String>) -> Self {
        Self {
            image: image.into(),
            allow_unpinned: false,
            endpoint: None,
            runtime: None,
            network: "none".to_owned(),
            user: None,
            labels: Vec::new(),
            memory_bytes: None,
            nano_cpus: None,
        }
    }

    /// The engine's socket: `unix:///path` or `/path` (`DOCKER_HOST` style;
    /// only local sockets, the socket directory being shared). Default:
    /// `DOCKER_HOST` when it names a Unix socket, else [`DEFAULT_ENGINE`].
    #[must_use]
    pub fn engine(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Accepts an image named by a tag alone, whose content can change
    /// under the same name. Off by default.
    #[must_use]
    pub fn allow_unpinned(mut self, allow: bool) -> Self {
        self.allow_unpinned = allow;
        self
    }

    /// The OCI runtime, such as `runsc` for gVisor (configure it with
    /// `--host-uds=create` so the host can dial the plugin's socket).
    /// Default: the engine's. Podman's service ignores a per-container
    /// runtime in the Docker API; configure it in `containers.conf` there.
    #[must_use]
    pub fn runtime(mut self, runtime: impl Into<String>) -> Self {
        self.runtime = Some(runtime.into());
        self
    }

    /// The container's network mode (`bridge`, `host`, a network's name).
    /// Default `none`: the plugin talks to the host over its socket only.
    #[must_use]
    pub fn network(mut self, mode: impl Into<String>) -> Self {
        self.network = mode.into();
        self
    }

    /// The user the plugin runs as (`uid`, `uid:gid`, a name of the image).
    /// It must be able to create its socket in the mounted directory.
    /// Default: the image's.
    #[must_use]
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Adds a label to the container, besides the `goplug.*` ones.
    #[must_use]
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.push((key.into(), value.into()));
        self
    }

    /// Limits the container's memory to `bytes`.
    #[must_use]
    pub fn memory_bytes(mut self, bytes: u64) -> Self {
        self.memory_bytes = Some(i64::try_from(bytes).unwrap_or(i64::MAX));
        self
    }

    /// Limits the container's CPU time to `cpus` processors (`0.5`: half
    /// of one).
    #[must_use]
    pub fn cpus(mut self, cpus: f64) -> Self {
        // Saturating float-to-int conversion is what is wanted here.
        #[allow(clippy::cast_possible_truncation)]
        let nanos = (cpus * 1e9) as i64;
        self.nano_cpus = Some(nanos.max(0));
        self
    }

    fn endpoint(&self) -> String {
        self.endpoint.clone().unwrap_or_else(|| {
            std::env::var("DOCKER_HOST")
                .ok()
                .filter(|host| host.starts_with("unix://"))
                .unwrap_or_else(|| DEFAULT_ENGINE.to_owned())
        })
    }
}

impl Runner for ContainerRunner {
    fn start(self: Box<Self>, launch: Launch) -> BoxFuture<'static, io::Result<Started>> {
        Box::pin(async move { start(*self, launch).await.map_err(io::Error::other) })
    }
}

async fn start(runner: ContainerRunner, launch: Launch) -> Result<Started, Error> {
    let pin =
        image::pin_of(&runner.image).map_err(|e| Error::Config(format!("container image: {e}")))?;
    if pin == Pin::Unpinned && !runner.allow_unpinned {
        return Err(Error::Config(format!(
            "container image {:?} is not pinned by digest: name it by its image id (sha256:...) or name@sha256:..., or allow unpinned images on the runner",
            runner.image
        )));
    }
    let engine = Engine::connect(&runner.endpoint())?;
    let image_id = find_image(&engine, &runner.image, &pin).await?;
    let dirs = SocketDirs {
        host: launch.socket_dir.clone(),
        container: PathBuf::from(CONTAINER_SOCKET_DIR),
    };
    let body = create_body(&runner, &launch, &image_id, &dirs)?;
    let name = container_name(&launch.program);
    let response = running::create(&engine, &name, body).await.map_err(|e| {
        engine.error(
            &format!("creating a container of image {}", runner.image),
            e,
        )
    })?;
    for warning in &response.warnings {
        tracing::warn!(
            container = response.id,
            "the container engine warns: {warning}"
        );
    }
    // From here on, a failed or cancelled start removes the container.
    let created = Created::new(engine, response.id);
    let engine = &created.engine;
    // Attached before it starts, so no output is missed.
    let attach = AttachContainerOptionsBuilder::new()
        .stream(true)
        .stdout(true)
        .stderr(true)
        .build();
    let attached = engine
        .docker
        .attach_container(&created.id, Some(attach))
        .await
        .map_err(|e| engine.error("attaching to the container's output", e))?;
    engine
        .docker
        .start_container(&created.id, None::<StartContainerOptions>)
        .await
        .map_err(|e| engine.error("starting the container", e))?;
    let (stdout_writer, stdout) = tokio::io::duplex(OUTPUT_BUFFER);
    let (stderr_writer, stderr) = tokio::io::duplex(OUTPUT_BUFFER);
    let pump = tokio::spawn(running::pump(attached.output, stdout_writer, stderr_writer));
    tracing::debug!(
        container = created.id,
        image = runner.image,
        "plugin container started"
    );
    let plugin = ContainerPlugin::new(created, runner.image, runner.runtime, dirs, pump);
    Ok(Started::new(
        Box::new(stdout),
        Box::new(stderr),
        Box::new(plugin),
    ))
}

/// The id of the pinned image in the engine's store.
async fn find_image(engine: &Engine, image: &str, pin: &Pin) -> Result<String, Error> {
    let found = engine.docker.inspect_image(image).await.map_err(|e| {
        if engine::not_found(&e) {
            Error::Container {
                endpoint: engine.endpoint.clone(),
                reason: format!(
                    "image {image} is not in the engine's image store (goplug never pulls): pull, load or build it there first"
                ),
                error: Some(Box::new(e)),
            }
        } else {
            engine.error(&format!("looking up image {image}"), e)
        }
    })?;
    let id = found.id.unwrap_or_default();
    if !image::matches(pin, &id, found.repo_digests.as_deref().unwrap_or_default()) {
        return Err(Error::Container {
            endpoint: engine.endpoint.clone(),
            reason: format!(
                "image {image} resolved to {id}, which does not carry the pinned digest"
            ),
            error: None,
        });
    }
    Ok(id)
}

fn create_body(
    runner: &ContainerRunner,
    launch: &Launch,
    image_id: &str,
    dirs: &SocketDirs,
) -> Result<ContainerCreateBody, Error> {
    let mut labels: HashMap<String, String> = runner.labels.iter().cloned().collect();
    labels.insert("goplug.plugin".to_owned(), plugin_name(&launch.program));
    labels.insert("goplug.host-pid".to_owned(), std::process::id().to_string());
    let args: Vec<String> = launch
        .command
        .get_args()
        .map(|arg| text(arg, "an argument of the plugin's command").map(str::to_owned))
        .collect::<Result<_, _>>()?;
    let bind = format!(
        "{}:{}:rw",
        text(dirs.host.as_os_str(), "the socket directory's path")?,
        CONTAINER_SOCKET_DIR
    );
    Ok(ContainerCreateBody {
        image: Some(image_id.to_owned()),
        env: Some(container_env(&launch.env)?),
        cmd: (!args.is_empty()).then_some(args),
        user: runner.user.clone(),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        open_stdin: Some(false),
        tty: Some(false),
        labels: Some(labels),
        host_config: Some(HostConfig {
            binds: Some(vec![bind]),
            network_mode: Some(runner.network.clone()),
            runtime: runner.runtime.clone(),
            cap_drop: Some(vec!["ALL".to_owned()]),
            security_opt: Some(vec!["no-new-privileges".to_owned()]),
            memory: runner.memory_bytes,
            nano_cpus: runner.nano_cpus,
            ..HostConfig::default()
        }),
        ..ContainerCreateBody::default()
    })
}

/// The launch's own variables with the socket directory as the container
/// sees it, as `KEY=value` strings.
fn container_env(vars: &[(OsString, OsString)]) -> Result<Vec<String>, Error> {
    let mut out = Vec::with_capacity(vars.len() + 1);
    for (key, value) in vars {
        if key == env::PLUGIN_UNIX_SOCKET_DIR {
            continue;
        }
        out.push(format!(
            "{}={}",
            text(key, "an environment variable's name")?,
            text(value, "an environment variable's value")?
        ));
    }
    out.push(format!(
        "{}={CONTAINER_SOCKET_DIR}",
        env::PLUGIN_UNIX_SOCKET_DIR
    ));
    Ok(out)
}

fn text<'a>(value: &'a std::ffi::OsStr, what: &str) -> Result<&'a str, Error> {
    value.to_str().ok_or_else(|| {
        Error::Config(format!(
            "{what} is not UTF-8 ({value:?}): the container engine's API takes text only"
        ))
    })
}

/// A fresh container name, `goplug-<plugin>-<random>`, with only the
/// characters engines accept.
fn container_name(program: &Path) -> String {
    let plugin: String = plugin_name(program)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    format!("goplug-{plugin}-{:016x}", fastrand::u64(..))
}

fn plugin_name(program: &Path) -> String {
    program
        .file_name()
        .unwrap_or(program.as_os_str())
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::env::PLUGIN_UNIX_SOCKET_DIR;

    #[test]
    fn the_container_sees_its_own_socket_dir_and_only_the_launch_variables() {
        let vars = vec![
            (OsString::from("BASIC_PLUGIN"), OsString::from("hello")),
            (
                OsString::from(PLUGIN_UNIX_SOCKET_DIR),
                OsString::from("/tmp/goplug-x"),
            ),
            (OsString::from("PLUGIN_MIN_PORT"), OsString::from("10000")),
        ];
        assert_eq!(
            container_env(&vars).unwrap(),
            [
                "BASIC_PLUGIN=hello".to_owned(),
                "PLUGIN_MIN_PORT=10000".to_owned(),
                format!("{PLUGIN_UNIX_SOCKET_DIR}=/tmp/go-plugin-container"),
            ]
        );
        use std::os::unix::ffi::OsStringExt as _;
        assert!(
            container_name(Path::new("/opt/plugins/kv plugin@1"))
                .starts_with("goplug-kv-plugin-1-")
        );
        let bad = vec![(OsString::from("K"), OsString::from_vec(vec![0xff]))];
        assert!(
            container_env(&bad)
                .unwrap_err()
                .to_string()
                .contains("not UTF-8")
        );
    }
}

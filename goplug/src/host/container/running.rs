//! A plugin running in a container: its exit, its removal, its output and
//! the translation of socket paths between the container and the host.

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bollard::container::LogOutput;
use bollard::errors::Error as EngineError;
use bollard::models::{ContainerCreateBody, ContainerCreateResponse};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, KillContainerOptionsBuilder, RemoveContainerOptionsBuilder,
    WaitContainerOptionsBuilder,
};
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::task::JoinHandle;

use super::engine::{self, Engine, REQUEST_TIMEOUT};
use crate::host::runner::{BoxFuture, PluginExit, RunningPlugin};
use crate::protocol::handshake::PluginAddress;

/// Pause between removals the engine refused while the container changed
/// state.
const REMOVE_RETRY: std::time::Duration = std::time::Duration::from_millis(100);

/// Bytes of the plugin's output buffered between the engine and the host.
pub(super) const OUTPUT_BUFFER: usize = 64 * 1024;

/// Creates the container `name` from `body`. The request runs on a task of
/// its own: when the start is cancelled meanwhile, that task removes the
/// container once the engine has made it (a removal racing the creation
/// leaves Podman with a container its store does not know).
pub(super) async fn create(
    engine: &Engine,
    name: &str,
    body: ContainerCreateBody,
) -> Result<ContainerCreateResponse, EngineError> {
    let (answer, answered) = tokio::sync::oneshot::channel();
    let creator = engine.clone();
    let options = CreateContainerOptionsBuilder::new().name(name).build();
    tokio::spawn(async move {
        let created = creator.docker.create_container(Some(options), body).await;
        if let Err(Ok(orphan)) = answer.send(created) {
            remove(&creator, &orphan.id, None).await;
        }
    });
    answered.await.unwrap_or_else(|_| {
        Err(EngineError::IOError {
            err: std::io::Error::other("the container creation task ended without an answer"),
        })
    })
}

/// A created container, removed (force) when this is dropped unless it was
/// handed over: a start that fails or is cancelled leaves no container.
#[derive(Debug)]
pub(super) struct Created {
    pub(super) engine: Engine,
    pub(super) id: String,
    armed: bool,
}

impl Created {
    pub(super) fn new(engine: Engine, id: String) -> Self {
        Self {
            engine,
            id,
            armed: true,
        }
    }

    fn hand_over(mut self) -> (Engine, String) {
        self.armed = false;
        (self.engine.clone(), std::mem::take(&mut self.id))
    }
}

impl Drop for Created {
    fn drop(&mut self) {
        if self.armed {
            spawn_remove(&self.engine, &self.id, None);
        }
    }
}

/// Where the plugin's sockets are, inside and outside the container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct SocketDirs {
    pub(super) host: PathBuf,
    pub(super) container: PathBuf,
}

impl SocketDirs {
    /// `address` (a path the plugin sees) as the host sees it.
    pub(super) fn to_host(&self, address: PluginAddress) -> PluginAddress {
        Self::moved(address, &self.container, &self.host)
    }

    /// `address` (a path the host sees) as the plugin sees it.
    pub(super) fn to_container(&self, address: PluginAddress) -> PluginAddress {
        Self::moved(address, &self.host, &self.container)
    }

    fn moved(address: PluginAddress, from: &Path, to: &Path) -> PluginAddress {
        match address {
            PluginAddress::Unix(path) => match path.strip_prefix(from) {
                Ok(rest) if !rest.as_os_str().is_empty() => PluginAddress::Unix(to.join(rest)),
                _ => {
                    // Only the shared directory is visible on both sides.
                    tracing::warn!(
                        path = %path.display(),
                        shared = %from.display(),
                        "a socket outside the shared socket directory cannot be reached across the container boundary (a go-plugin plugin older than 1.5 ignores PLUGIN_UNIX_SOCKET_DIR)"
                    );
                    PluginAddress::Unix(path)
                }
            },
            // TCP addresses are left alone: the container's network decides.
            tcp @ PluginAddress::Tcp(_) => tcp,
        }
    }
}

/// A plugin the engine runs.
#[derive(Debug)]
pub(super) struct ContainerPlugin {
    engine: Engine,
    id: String,
    image: String,
    runtime: Option<String>,
    dirs: SocketDirs,
    removed: Arc<AtomicBool>,
    pump: JoinHandle<()>,
}

impl ContainerPlugin {
    pub(super) fn new(
        created: Created,
        image: String,
        runtime: Option<String>,
        dirs: SocketDirs,
        pump: JoinHandle<()>,
    ) -> Self {
        let (engine, id) = created.hand_over();
        Self {
            engine,
            id,
            image,
            runtime,
            dirs,
            removed: Arc::default(),
            pump,
        }
    }
}

impl RunningPlugin for ContainerPlugin {
    fn id(&self) -> String {
        self.id.chars().take(12).collect()
    }

    fn wait(&self) -> BoxFuture<'_, PluginExit> {
        Box::pin(async move {
            let options = WaitContainerOptionsBuilder::new()
                .condition("not-running")
                .build();
            loop {
                let mut waited = self
                    .engine
                    .docker
                    .wait_container(&self.id, Some(options.clone()));
                return match waited.next().await {
                    Some(Ok(response)) => exited(response.status_code),
                    // bollard reports a non-zero exit code as an error.
                    Some(Err(EngineError::DockerContainerWaitError { code, .. })) => exited(code),
                    // The request timeout covers the answer's head only, but
                    // an engine may hold it back until the container exits.
                    Some(Err(EngineError::RequestTimeoutError)) => continue,
                    Some(Err(e)) => {
                        tracing::warn!(
                            container = self.id(),
                            "waiting for the plugin's container failed: {}",
                            self.engine.error("waiting for the container", e)
                        );
                        PluginExit::Gone
                    }
                    None => PluginExit::Gone,
                };
            }
        })
    }

    fn kill(&self) {
        let engine = self.engine.clone();
        let id = self.id.clone();
        spawn_on_runtime(async move {
            let options = KillContainerOptionsBuilder::new().signal("KILL").build();
            let killed = tokio::time::timeout(
                REQUEST_TIMEOUT,
                engine.docker.kill_container(&id, Some(options)),
            )
            .await;
            match killed {
                Ok(Err(e)) if !engine::not_running(&e) => tracing::warn!(
                    "killing the plugin's container {id}: {}",
                    engine.error("killing the container", e)
                ),
                Err(_) => tracing::warn!("killing the plugin's container {id}: no answer"),
                _ => {}
            }
        });
    }

    fn cleanup(&self) {
        if !self.removed.load(Ordering::Acquire) {
            spawn_remove(&self.engine, &self.id, Some(self.removed.clone()));
        }
    }

    fn release(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if !self.removed.load(Ordering::Acquire) {
                remove(&self.engine, &self.id, Some(&self.removed)).await;
            }
        })
    }

    fn diagnose(&self) -> Option<String> {
        Some(format!(
            "container {} of image {} (runtime {}): a binary that is not static may lack its libraries in the image (exit code 127), one built for another machine fails with exit code 1 or 126",
            self.id(),
            self.image,
            self.runtime.as_deref().unwrap_or("the engine's default"),
        ))
    }

    fn plugin_to_host(&self, address: PluginAddress) -> PluginAddress {
        self.dirs.to_host(address)
    }

    fn host_to_plugin(&self, address: PluginAddress) -> PluginAddress {
        self.dirs.to_container(address)
    }
}

impl Drop for ContainerPlugin {
    fn drop(&mut self) {
        self.pump.abort();
    }
}

/// A container's exit code as an exit status. Engines report a signal's
/// death as 128 + the signal number, which is kept as an exit code.
fn exited(code: i64) -> PluginExit {
    use std::os::unix::process::ExitStatusExt as _;
    let code = i32::try_from(code.clamp(0, 255)).unwrap_or(255);
    PluginExit::Exited(ExitStatus::from_raw(code << 8))
}

/// Removes the container (killing it if it runs), bounded; sets `removed`
/// once it is gone. An engine may refuse while the container is between
/// states (Podman: 500 "container state improper" while a kill lands, 409
/// while another removal runs): that is retried until it is gone.
async fn remove(engine: &Engine, id: &str, removed: Option<&AtomicBool>) {
    let options = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    let deadline = tokio::time::Instant::now() + REQUEST_TIMEOUT;
    loop {
        let done = tokio::time::timeout_at(
            deadline,
            engine.docker.remove_container(id, Some(options.clone())),
        )
        .await;
        match done {
            Ok(Ok(())) => break,
            Ok(Err(e)) if engine::not_found(&e) => break,
            Ok(Err(e)) if engine::in_transition(&e) && tokio::time::Instant::now() < deadline => {
                tracing::debug!("removing the plugin's container {id}, retrying: {e}");
                tokio::time::sleep(REMOVE_RETRY).await;
            }
            Ok(Err(e)) => {
                tracing::warn!(
                    "removing the plugin's container {id}: {}",
                    engine.error("removing the container", e)
                );
                return;
            }
            Err(_) => {
                tracing::warn!(
                    "removing the plugin's container {id}: not done within {REQUEST_TIMEOUT:?}"
                );
                return;
            }
        }
    }
    if let Some(removed) = removed {
        removed.store(true, Ordering::Release);
    }
}

fn spawn_remove(engine: &Engine, id: &str, removed: Option<Arc<AtomicBool>>) {
    let engine = engine.clone();
    let id = id.to_owned();
    spawn_on_runtime(async move { remove(&engine, &id, removed.as_deref()).await });
}

/// Runs `task` on the current runtime; without one (a drop after the
/// runtime is gone) the container outlives the host, as a crashed host's
/// does, and is found by its `goplug.*` labels.
fn spawn_on_runtime(task: impl Future<Output = ()> + Send + 'static) {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn(task);
        }
        Err(_) => tracing::warn!(
            "no async runtime to stop the plugin's container on: remove it by its goplug.* labels"
        ),
    }
}

/// Copies the engine's multiplexed output to the plugin's stdout and
/// stderr pipes until it ends (the container exited or was removed). A
/// pipe whose reader is gone is no longer written; the other goes on.
pub(super) async fn pump(
    mut output: impl Stream<Item = Result<LogOutput, EngineError>> + Unpin,
    stdout: DuplexStream,
    stderr: DuplexStream,
) {
    let mut stdout = Some(stdout);
    let mut stderr = Some(stderr);
    while let Some(item) = output.next().await {
        let (pipe, message) = match item {
            Ok(LogOutput::StdOut { message }) => (&mut stdout, message),
            Ok(LogOutput::StdErr { message } | LogOutput::Console { message }) => {
                (&mut stderr, message)
            }
            Ok(LogOutput::StdIn { .. }) => continue,
            Err(e) => {
                tracing::debug!("the plugin container's output stream ended: {e}");
                break;
            }
        };
        if let Some(writer) = pipe
            && write(writer, &message).await.is_err()
        {
            *pipe = None;
        }
    }
}

async fn write(writer: &mut (impl AsyncWrite + Unpin), bytes: &[u8]) -> std::io::Result<()> {
    writer.write_all(bytes).await?;
    writer.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_paths_cross_the_boundary_both_ways() {
        let dirs = SocketDirs {
            host: PathBuf::from("/tmp/goplug-abc"),
            container: PathBuf::from("/tmp/go-plugin-container"),
        };
        let unix = |p: &str| PluginAddress::Unix(PathBuf::from(p));
        let tcp = PluginAddress::Tcp("127.0.0.1:1234".parse().unwrap());
        let to_host = [
            (
                unix("/tmp/go-plugin-container/plugin123"),
                unix("/tmp/goplug-abc/plugin123"),
            ),
            // Outside the shared directory: left as it is.
            (unix("/tmp/plugin123"), unix("/tmp/plugin123")),
            (
                unix("/tmp/go-plugin-container"),
                unix("/tmp/go-plugin-container"),
            ),
            (
                unix("/tmp/go-plugin-containerx/p"),
                unix("/tmp/go-plugin-containerx/p"),
            ),
            (tcp.clone(), tcp.clone()),
        ];
        for (plugin, host) in to_host {
            assert_eq!(dirs.to_host(plugin.clone()), host, "{plugin}");
        }
        let to_container = [
            (
                unix("/tmp/goplug-abc/broker-1"),
                unix("/tmp/go-plugin-container/broker-1"),
            ),
            (unix("/run/host.sock"), unix("/run/host.sock")),
            (tcp.clone(), tcp),
        ];
        for (host, plugin) in to_container {
            assert_eq!(dirs.to_container(host.clone()), plugin, "{host}");
        }
    }

    #[test]
    fn exit_codes_become_statuses() {
        for (code, want) in [
            (0, Some(0)),
            (3, Some(3)),
            (137, Some(137)),
            (-1, Some(0)),
            (300, Some(255)),
        ] {
            let PluginExit::Exited(status) = exited(code) else {
                panic!("{code}: not an exit");
            };
            assert_eq!(status.code(), want, "{code}");
        }
    }

    #[tokio::test]
    async fn output_is_split_and_a_closed_pipe_does_not_stop_the_other() {
        use tokio::io::AsyncReadExt as _;
        let items = vec![
            Ok(LogOutput::StdOut {
                message: "1|1|unix|/s|grpc|\n".into(),
            }),
            Ok(LogOutput::StdErr {
                message: "log one\n".into(),
            }),
            Ok(LogOutput::StdOut {
                message: "more stdout".into(),
            }),
            Ok(LogOutput::StdErr {
                message: "log two\n".into(),
            }),
        ];
        let (out_writer, out_reader) = tokio::io::duplex(OUTPUT_BUFFER);
        let (err_writer, mut err_reader) = tokio::io::duplex(OUTPUT_BUFFER);
        drop(out_reader);
        pump(futures_util::stream::iter(items), out_writer, err_writer).await;
        let mut logs = String::new();
        err_reader.read_to_string(&mut logs).await.unwrap();
        assert_eq!(logs, "log one\nlog two\n");
    }
}

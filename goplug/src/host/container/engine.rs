//! The container engine a runner talks to, and its errors as goplug's.

use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as EngineError;

use crate::error::Error;

/// Longest wait for one request to the engine (not for a container's exit).
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A Docker Engine API endpoint on a Unix socket.
#[derive(Clone, Debug)]
pub(super) struct Engine {
    pub(super) docker: Docker,
    /// The socket's path, for messages.
    pub(super) endpoint: String,
}

impl Engine {
    /// Connects (lazily: the first request dials) to the socket at
    /// `endpoint`, a path or a `unix://` URL.
    pub(super) fn connect(endpoint: &str) -> Result<Self, Error> {
        let path = unix_path(endpoint)?;
        let docker = Docker::connect_with_unix(
            &path,
            REQUEST_TIMEOUT.as_secs(),
            bollard::API_DEFAULT_VERSION,
        )
        .map_err(|e| error(&path, "connecting", e))?;
        Ok(Self {
            docker,
            endpoint: path,
        })
    }

    /// `e` as goplug's error, naming what was being done.
    pub(super) fn error(&self, doing: &str, e: EngineError) -> Error {
        error(&self.endpoint, doing, e)
    }
}

/// The socket path of a `unix://` URL or a plain path; other schemes are
/// refused: the runner shares a directory with the container, so the
/// engine must run on this machine.
pub(super) fn unix_path(endpoint: &str) -> Result<String, Error> {
    let path = endpoint.strip_prefix("unix://").unwrap_or(endpoint);
    if path.starts_with('/') {
        Ok(path.to_owned())
    } else {
        Err(Error::Config(format!(
            "container engine endpoint {endpoint:?}: only a local Unix socket (unix:///path or /path) can be used, as the plugin's socket directory is shared with the container"
        )))
    }
}

/// Whether `e` is the engine answering 404 (no such image or container).
pub(super) fn not_found(e: &EngineError) -> bool {
    matches!(
        e,
        EngineError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Whether `e` is the engine saying there is nothing to kill: the
/// container is gone (404) or not running (Docker: 409; Podman: 500
/// "container state improper").
pub(super) fn not_running(e: &EngineError) -> bool {
    match e {
        EngineError::DockerResponseServerError {
            status_code: 404 | 409,
            ..
        } => true,
        EngineError::DockerResponseServerError {
            status_code: 500,
            message,
        } => message.contains("state improper"),
        _ => false,
    }
}

/// Whether `e` is the engine refusing a removal while the container is
/// between states: Podman answers 500 when the kill of a force removal
/// meets a container that has just stopped, and 409 while another removal
/// of it runs.
pub(super) fn in_transition(e: &EngineError) -> bool {
    matches!(
        e,
        EngineError::DockerResponseServerError {
            status_code: 409 | 500,
            ..
        }
    )
}

fn error(endpoint: &str, doing: &str, e: EngineError) -> Error {
    let reason = match &e {
        EngineError::DockerResponseServerError {
            status_code,
            message,
        } => format!(
            "{doing}: the engine answered {status_code}: {}",
            message.trim()
        ),
        EngineError::SocketNotFoundError(path) => format!(
            "{doing}: no engine socket at {path}: start the engine there (dockerd, or `podman system service unix://{path}`) or give the runner its socket"
        ),
        EngineError::RequestTimeoutError => {
            format!("{doing}: the engine did not answer within {REQUEST_TIMEOUT:?}")
        }
        EngineError::JsonDataError { .. } | EngineError::JsonSerdeError { .. } => {
            format!("{doing}: the engine's answer was not understood: {e}")
        }
        _ => format!("{doing}: the engine is not reachable ({e}): is it running?"),
    };
    Error::Container {
        endpoint: endpoint.to_owned(),
        reason,
        error: Some(Box::new(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_sockets_are_endpoints() {
        assert_eq!(
            unix_path("unix:///run/podman/podman.sock").unwrap(),
            "/run/podman/podman.sock"
        );
        assert_eq!(
            unix_path("/var/run/docker.sock").unwrap(),
            "/var/run/docker.sock"
        );
        for remote in [
            "tcp://10.0.0.1:2375",
            "ssh://host",
            "docker.sock",
            "unix://relative",
        ] {
            let e = unix_path(remote).unwrap_err().to_string();
            assert!(e.contains("only a local Unix socket"), "{remote}: {e}");
        }
    }

    #[test]
    fn a_missing_socket_is_named_with_the_fix() {
        let e = Engine::connect("unix:///nonexistent/goplug-test.sock").unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("container engine at /nonexistent/goplug-test.sock"),
            "{text}"
        );
        assert!(text.contains("podman system service"), "{text}");
        assert!(e.cause().is_some_and(|c| c.is::<EngineError>()), "{e:?}");
    }
}

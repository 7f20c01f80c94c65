//! The plugin's listener: a Unix socket in a private directory (go-plugin's
//! default everywhere but Windows) or TCP on 127.0.0.1 within the host's
//! port range.

#[cfg(feature = "plugin")]
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::net::{TcpListener, UnixListener};

use crate::error::{Error, Result};
use crate::protocol::PluginAddress;
#[cfg(feature = "plugin")]
use crate::protocol::env;
#[cfg(feature = "plugin")]
use crate::sys::group::resolve_group;
use crate::sys::group::{Gid, GroupShareError, share_with_group};

/// `sun_path` holds 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

#[cfg(feature = "plugin")]
/// How a plugin listens for its host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transport {
    /// A Unix socket in a private directory under `PLUGIN_UNIX_SOCKET_DIR`
    /// (or `TMPDIR`). go-plugin's choice on every OS but Windows.
    #[default]
    Unix,
    /// TCP on 127.0.0.1, on the first free port of
    /// `PLUGIN_MIN_PORT..=PLUGIN_MAX_PORT` (`0..0` lets the OS choose).
    /// go-plugin's choice on Windows.
    Tcp,
}

/// A bound listener. For Unix sockets it owns the private directory, which
/// is removed (with the socket) when this is dropped.
#[derive(Debug)]
pub(crate) enum BoundListener {
    Unix {
        listener: UnixListener,
        path: PathBuf,
        dir: tempfile::TempDir,
    },
    #[cfg_attr(
        not(feature = "plugin"),
        expect(dead_code, reason = "only plugins listen on TCP")
    )]
    Tcp(TcpListener),
}

impl BoundListener {
    #[cfg(feature = "plugin")]
    pub(crate) async fn bind(transport: Transport) -> Result<Self> {
        match transport {
            Transport::Unix => bind_unix(),
            Transport::Tcp => bind_tcp().await,
        }
    }

    pub(crate) fn address(&self) -> Result<PluginAddress> {
        match self {
            Self::Unix { path, .. } => Ok(PluginAddress::Unix(path.clone())),
            Self::Tcp(listener) => {
                listener
                    .local_addr()
                    .map(PluginAddress::Tcp)
                    .map_err(|source| Error::Io {
                        context: "reading the listener's address",
                        error: source,
                    })
            }
        }
    }
}

#[cfg(feature = "plugin")]
/// Where a plugin puts its sockets: `PLUGIN_UNIX_SOCKET_DIR` (or the temp
/// dir), shared with `PLUGIN_UNIX_SOCKET_GROUP` when that is set.
pub(crate) fn socket_location() -> Result<(PathBuf, Option<Gid>)> {
    let base = std::env::var_os(env::PLUGIN_UNIX_SOCKET_DIR)
        .filter(|dir| !dir.is_empty())
        .map_or_else(std::env::temp_dir, PathBuf::from);
    let group = std::env::var(env::PLUGIN_UNIX_SOCKET_GROUP)
        .ok()
        .filter(|g| !g.is_empty())
        .map(|g| resolve_group(&g))
        .transpose()?;
    Ok((base, group))
}

#[cfg(feature = "plugin")]
fn bind_unix() -> Result<BoundListener> {
    let (base, group) = socket_location()?;
    bind_unix_in(&base, group)
}

/// A Unix socket in a new private directory under `base`.
pub(crate) fn bind_unix_in(base: &Path, group: Option<Gid>) -> Result<BoundListener> {
    // Owner only, unless PLUGIN_UNIX_SOCKET_GROUP opens it below.
    let dir = tempfile::Builder::new()
        .prefix("plugin")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(base)
        .map_err(|e| {
            Error::listen(
                format!("creating a socket directory in {}", base.display()),
                Some(e.into()),
            )
        })?;
    let path = dir.path().join("plugin.sock");
    let len = path.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(Error::SocketPathTooLong {
            path,
            len,
            limit: MAX_SOCKET_PATH,
        });
    }
    let listener = UnixListener::bind(&path)
        .map_err(|e| Error::listen(format!("binding {}", path.display()), Some(e.into())))?;
    if let Some(gid) = group {
        share(dir.path(), 0o770, gid)?;
        share(&path, 0o660, gid)?;
    }
    Ok(BoundListener::Unix {
        listener,
        path,
        dir,
    })
}

#[cfg(feature = "plugin")]
/// Parses `PLUGIN_MIN_PORT`/`PLUGIN_MAX_PORT` as go-plugin does: unset or
/// empty is 0.
fn port_from_env(name: &str) -> Result<u16> {
    match std::env::var(name) {
        Err(_) => Ok(0),
        Ok(v) if v.is_empty() => Ok(0),
        Ok(v) => v.parse::<u16>().map_err(|e| {
            Error::listen(
                format!("couldn't get value from {name}: {v:?}"),
                Some(e.into()),
            )
        }),
    }
}

#[cfg(feature = "plugin")]
async fn bind_tcp() -> Result<BoundListener> {
    let min = port_from_env(env::PLUGIN_MIN_PORT)?;
    let max = port_from_env(env::PLUGIN_MAX_PORT)?;
    if min > max {
        return Err(Error::listen(
            format!(
                "{} ({min}) must be less than or equal to {} ({max})",
                env::PLUGIN_MIN_PORT,
                env::PLUGIN_MAX_PORT
            ),
            None,
        ));
    }
    for port in min..=max {
        let addr = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port);
        if let Ok(listener) = TcpListener::bind(addr).await {
            return Ok(BoundListener::Tcp(listener));
        }
    }
    Err(Error::listen(
        format!("couldn't bind plugin TCP listener on 127.0.0.1 in ports {min}..={max}"),
        None,
    ))
}

/// Opens `path` to the socket group, with go-plugin's messages.
fn share(path: &Path, mode: u32, gid: Gid) -> Result<()> {
    share_with_group(path, mode, gid).map_err(|e| {
        let (doing, error) = match e {
            GroupShareError::Chown(e) => (
                format!("chown {} to gid {gid}", path.display()),
                std::io::Error::from(e),
            ),
            GroupShareError::Chmod(e) => (format!("chmod {} {mode:o}", path.display()), e),
        };
        Error::listen(doing, Some(error.into()))
    })
}

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

/// A bound listener. A Unix socket is removed (with its private directory,
/// when it has one) when this is dropped.
#[derive(Debug)]
pub(crate) enum BoundListener {
    Unix {
        listener: UnixListener,
        path: PathBuf,
        cleanup: SocketCleanup,
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

/// What is removed once a Unix listener is done.
#[derive(Debug)]
pub(crate) enum SocketCleanup {
    /// The socket, in a directory private to this host and plugin.
    Socket(tempfile::TempPath),
    /// The private directory made for the socket in a shared one.
    Directory(tempfile::TempDir),
}

impl SocketCleanup {
    pub(crate) fn close(self) -> std::io::Result<()> {
        match self {
            Self::Socket(path) => path.close(),
            Self::Directory(dir) => dir.close(),
        }
    }
}

/// The directory sockets go in, the group they are shared with, and
/// whether the directory is private to this host and plugin.
#[derive(Clone, Debug)]
pub(crate) struct SocketBase {
    pub(crate) dir: PathBuf,
    pub(crate) group: Option<Gid>,
    /// A host's directory for this plugin (`PLUGIN_UNIX_SOCKET_DIR`):
    /// sockets go straight in it, as go-plugin's do. The shared temp dir
    /// gets a private directory per socket instead.
    pub(crate) private: bool,
}

#[cfg(feature = "plugin")]
/// Where a plugin puts its sockets: `PLUGIN_UNIX_SOCKET_DIR` (or the temp
/// dir), shared with `PLUGIN_UNIX_SOCKET_GROUP` when that is set.
pub(crate) fn socket_location() -> Result<SocketBase> {
    let given = std::env::var_os(env::PLUGIN_UNIX_SOCKET_DIR).filter(|dir| !dir.is_empty());
    let private = given.is_some();
    let dir = given.map_or_else(std::env::temp_dir, PathBuf::from);
    let group = std::env::var(env::PLUGIN_UNIX_SOCKET_GROUP)
        .ok()
        .filter(|g| !g.is_empty())
        .map(|g| resolve_group(&g))
        .transpose()?;
    Ok(SocketBase {
        dir,
        group,
        private,
    })
}

#[cfg(feature = "plugin")]
fn bind_unix() -> Result<BoundListener> {
    bind_unix_in(&socket_location()?)
}

/// A Unix socket named `plugin*` in `base`: straight in it when it is
/// private, else in a new private directory under it.
pub(crate) fn bind_unix_in(base: &SocketBase) -> Result<BoundListener> {
    if base.private {
        return bind_in_private_dir(base);
    }
    // Owner only, unless PLUGIN_UNIX_SOCKET_GROUP opens it below.
    let dir = tempfile::Builder::new()
        .prefix("plugin")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(&base.dir)
        .map_err(|e| {
            Error::listen(
                format!("creating a socket directory in {}", base.dir.display()),
                Some(e.into()),
            )
        })?;
    let path = dir.path().join("plugin.sock");
    check_length(&path)?;
    let listener = UnixListener::bind(&path)
        .map_err(|e| Error::listen(format!("binding {}", path.display()), Some(e.into())))?;
    if let Some(gid) = base.group {
        share(dir.path(), 0o770, gid)?;
        share(&path, 0o660, gid)?;
    }
    Ok(BoundListener::Unix {
        listener,
        path,
        cleanup: SocketCleanup::Directory(dir),
    })
}

/// Binds a new, randomly named socket in a private directory: bind
/// creates the file, so a name taken meanwhile is just tried again.
fn bind_in_private_dir(base: &SocketBase) -> Result<BoundListener> {
    // The longest name tempfile makes: prefix and six random characters.
    check_length(&base.dir.join("plugin000000"))?;
    let socket = tempfile::Builder::new()
        .prefix("plugin")
        .rand_bytes(6)
        .make_in(&base.dir, |path| {
            UnixListener::bind(path).map_err(|e| match e.kind() {
                // Another socket by that name: tempfile tries another name.
                std::io::ErrorKind::AddrInUse => {
                    std::io::Error::new(std::io::ErrorKind::AlreadyExists, e)
                }
                _ => e,
            })
        })
        .map_err(|e| {
            Error::listen(
                format!("binding a socket in {}", base.dir.display()),
                Some(e.into()),
            )
        })?;
    let (listener, temp_path) = socket.into_parts();
    let path = temp_path.to_path_buf();
    if let Some(gid) = base.group {
        share(&path, 0o660, gid)?;
    }
    Ok(BoundListener::Unix {
        listener,
        path,
        cleanup: SocketCleanup::Socket(temp_path),
    })
}

fn check_length(path: &Path) -> Result<()> {
    let len = path.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(Error::SocketPathTooLong {
            path: path.to_path_buf(),
            len,
            limit: MAX_SOCKET_PATH,
        });
    }
    Ok(())
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

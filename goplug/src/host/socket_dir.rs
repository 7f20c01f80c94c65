//! The host's private directory for each plugin's sockets: go-plugin
//! plugins (>= 1.5) put their sockets there, so none is left behind even
//! when the plugin is killed.

use crate::error::{Error, Result};
use crate::sys::group::GroupShareError;

/// The host's private directory for the plugin's sockets: one this host
/// made, or one it took over from the host that launched the plugin.
/// Removed when dropped, unless kept.
#[derive(Debug)]
pub(super) struct SocketDir(Option<std::path::PathBuf>);

impl Drop for SocketDir {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take()
            && let Err(e) = remove(&dir)
        {
            tracing::debug!("removing the plugin's socket directory: {e}");
        }
    }
}

/// Removes `dir`. The plugin has usually removed its sockets already, so
/// one `rmdir` does: it needs no descriptor, so it works even when the
/// host ran out of them (which may be why the plugin failed to start).
fn remove(dir: &std::path::Path) -> std::io::Result<()> {
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(_) => std::fs::remove_dir_all(dir),
    }
}

impl SocketDir {
    pub(super) fn create(base: Option<&std::path::Path>, group: Option<&str>) -> Result<Self> {
        let base = base.map_or_else(std::env::temp_dir, std::path::Path::to_path_buf);
        let dir = tempfile::Builder::new()
            .prefix("goplug-")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir_in(&base)
            .map_err(|source| Error::Io {
                context: "creating the plugin's socket directory",
                error: source,
            })?;
        let dir = Self(Some(dir.keep()));
        if let Some(group) = group {
            share_with_group(dir.path(), group)?;
        }
        Ok(dir)
    }

    /// Takes over the directory of a plugin another host launched.
    pub(super) fn adopt(dir: std::path::PathBuf) -> Self {
        Self(Some(dir))
    }

    pub(super) fn path(&self) -> &std::path::Path {
        self.0.as_deref().unwrap_or(std::path::Path::new(""))
    }

    /// Leaves the directory in place for a plugin that outlives the host.
    pub(super) fn keep(mut self) {
        self.0.take();
    }

    pub(super) fn remove(self) {
        drop(self);
    }
}

/// Lets `group` into the socket directory (mode 0770), as go-plugin's host does.
fn share_with_group(dir: &std::path::Path, group: &str) -> Result<()> {
    let gid = crate::sys::group::resolve_group(group)?;
    crate::sys::group::share_with_group(dir, 0o770, gid).map_err(|e| match e {
        GroupShareError::Chown(e) => {
            Error::Config(format!("chown {} to group {group}: {e}", dir.display()))
        }
        GroupShareError::Chmod(source) => Error::Io {
            context: "making the socket directory group-accessible",
            error: source,
        },
    })
}

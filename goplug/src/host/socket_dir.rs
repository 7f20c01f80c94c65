//! The host's private directory for each plugin's sockets: go-plugin
//! plugins (>= 1.5) put their sockets there, so none is left behind even
//! when the plugin is killed.

use crate::error::{Error, Result};
use crate::sys::group::GroupShareError;

/// The host's private directory for the plugin's sockets.
#[derive(Debug)]
pub(super) struct SocketDir(Option<Owned>);

/// A directory this host made, or one it took over from the host that
/// launched the plugin.
#[derive(Debug)]
enum Owned {
    Made(tempfile::TempDir),
    Adopted(std::path::PathBuf),
}

impl Owned {
    fn path(&self) -> &std::path::Path {
        match self {
            Self::Made(dir) => dir.path(),
            Self::Adopted(dir) => dir,
        }
    }

    fn close(self) -> std::io::Result<()> {
        match self {
            Self::Made(dir) => dir.close(),
            Self::Adopted(dir) => std::fs::remove_dir_all(dir),
        }
    }
}

impl Drop for SocketDir {
    fn drop(&mut self) {
        // A made directory removes itself when dropped.
        if let Some(Owned::Adopted(dir)) = self.0.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
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
        if let Some(group) = group {
            share_with_group(dir.path(), group)?;
        }
        Ok(Self(Some(Owned::Made(dir))))
    }

    /// Takes over the directory of a plugin another host launched.
    pub(super) fn adopt(dir: std::path::PathBuf) -> Self {
        Self(Some(Owned::Adopted(dir)))
    }

    pub(super) fn path(&self) -> &std::path::Path {
        self.0
            .as_ref()
            .map_or(std::path::Path::new(""), Owned::path)
    }

    /// Leaves the directory in place for a plugin that outlives the host.
    pub(super) fn keep(mut self) {
        if let Some(Owned::Made(dir)) = self.0.take() {
            let _ = dir.keep();
        }
    }

    pub(super) fn remove(mut self) {
        if let Some(Err(e)) = self.0.take().map(Owned::close) {
            tracing::debug!("removing the plugin's socket directory: {e}");
        }
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

//! `PLUGIN_UNIX_SOCKET_GROUP`: the group both sides let into their socket
//! directories. The only place goplug uses nix.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

pub(crate) use nix::unistd::Gid;

use crate::error::{Error, Result};
use crate::protocol::env;

/// A group by number or name, as go-plugin resolves it.
pub(crate) fn resolve_group(group: &str) -> Result<Gid> {
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(Gid::from_raw(gid));
    }
    match nix::unistd::Group::from_name(group) {
        Ok(Some(g)) => Ok(g.gid),
        Ok(None) => Err(Error::listen(
            format!(
                "{} names group {group:?}, which does not exist",
                env::PLUGIN_UNIX_SOCKET_GROUP
            ),
            None,
        )),
        Err(e) => Err(Error::listen(
            format!("looking up group {group:?}"),
            Some(std::io::Error::from(e).into()),
        )),
    }
}

/// Hands `path` to group `gid` with permissions `mode`. The error says
/// which of the two steps failed.
pub(crate) fn share_with_group(path: &Path, mode: u32, gid: Gid) -> Result<(), GroupShareError> {
    nix::unistd::chown(path, None, Some(gid)).map_err(GroupShareError::Chown)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(GroupShareError::Chmod)
}

/// Which step of [`share_with_group`] failed.
#[derive(Debug)]
pub(crate) enum GroupShareError {
    Chown(nix::Error),
    Chmod(std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_and_numbers_resolve() {
        assert_eq!(resolve_group("0").unwrap().as_raw(), 0);
        assert_eq!(resolve_group("root").unwrap().as_raw(), 0);
        assert!(matches!(
            resolve_group("no-such-group-goplug"),
            Err(Error::Listen { .. })
        ));
    }
}

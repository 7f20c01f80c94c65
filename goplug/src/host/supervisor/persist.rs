//! The supervisor's state directory: one reattach ticket per serving
//! plugin, so a new host process can adopt plugins an earlier one left
//! running (after a crash, a kill or an upgrade of the host).

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::host::ReattachTicket;

/// Where tickets live; the directory is the host's alone (mode 0700), each
/// ticket too (0600): they hold AutoMTLS private keys.
#[derive(Debug)]
pub(super) struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    /// Opens `dir`, creating it (mode 0700) if it is missing.
    pub(super) fn open(dir: PathBuf) -> Result<Self> {
        let io_error =
            |context: &'static str| move |error: std::io::Error| Error::Io { context, error };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(io_error("creating the supervisor's state directory"))?;
        let metadata = std::fs::metadata(&dir)
            .map_err(io_error("reading the supervisor's state directory"))?;
        let mode = std::os::unix::fs::PermissionsExt::mode(&metadata.permissions());
        if mode & 0o077 != 0 {
            return Err(Error::Config(format!(
                "the supervisor's state directory {} is open to other users (mode {:o}); \
                 it holds private keys: make it 0700",
                dir.display(),
                mode & 0o777
            )));
        }
        Ok(Self { dir })
    }

    /// A file name for any plugin name: safe characters are kept, every
    /// other byte is written as `%XX`.
    fn path(&self, name: &str) -> PathBuf {
        let mut file = String::with_capacity(name.len() + 7);
        for byte in name.bytes() {
            if byte.is_ascii_alphanumeric()
                || matches!(byte, b'-' | b'_' | b'.') && !file.is_empty()
            {
                file.push(char::from(byte));
            } else {
                file.push_str(&format!("%{byte:02X}"));
            }
        }
        file.push_str(".ticket");
        self.dir.join(file)
    }

    /// The ticket a previous host left for `name`. A ticket that cannot be
    /// read is removed, with a warning: the plugin is started afresh.
    pub(super) fn load(&self, name: &str) -> Option<ReattachTicket> {
        let path = self.path(name);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
            Err(error) => {
                tracing::warn!(plugin = name, path = %path.display(), %error, "cannot read the plugin's reattach ticket; starting it afresh");
                return None;
            }
        };
        match ReattachTicket::from_json(&text) {
            Ok(ticket) => Some(ticket),
            Err(error) => {
                tracing::warn!(plugin = name, path = %path.display(), %error, "removing an unreadable reattach ticket; starting the plugin afresh");
                remove_file(&path);
                None
            }
        }
    }

    /// Writes `name`'s ticket, replacing any earlier one at once (written
    /// aside, then renamed).
    pub(super) fn save(&self, name: &str, ticket: &ReattachTicket) {
        let path = self.path(name);
        let aside = path.with_extension("ticket.new");
        let written = (|| {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&aside)?;
            file.write_all(ticket.to_json().as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&aside, &path)
        })();
        if let Err(error) = written {
            remove_file(&aside);
            tracing::warn!(plugin = name, path = %path.display(), %error, "cannot write the plugin's reattach ticket: a restarted host will not adopt it");
        }
    }

    /// Forgets `name`'s ticket: its plugin is gone or stopped.
    pub(super) fn remove(&self, name: &str) {
        remove_file(&self.path(name));
    }
}

fn remove_file(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot remove a reattach ticket")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_names_become_file_names_that_stay_in_the_directory() {
        let state = StateDir {
            dir: PathBuf::from("/state"),
        };
        let cases = [
            ("kv", "/state/kv.ticket"),
            ("kv-2.v1_x", "/state/kv-2.v1_x.ticket"),
            ("../etc/passwd", "/state/%2E.%2Fetc%2Fpasswd.ticket"),
            (".hidden", "/state/%2Ehidden.ticket"),
            ("a/b", "/state/a%2Fb.ticket"),
            ("", "/state/.ticket"),
            ("ü", "/state/%C3%BC.ticket"),
        ];
        for (name, expected) in cases {
            assert_eq!(state.path(name), PathBuf::from(expected), "{name:?}");
        }
    }

    #[test]
    fn a_state_directory_open_to_others_is_refused() {
        let base = tempfile::tempdir().expect("tempdir");
        let dir = base.path().join("state");
        StateDir::open(dir.clone()).expect("created");
        let mode = std::fs::metadata(&dir).expect("exists").permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o700
        );
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let error = StateDir::open(dir).expect_err("refused").to_string();
        assert!(error.contains("make it 0700"), "{error}");
    }
}

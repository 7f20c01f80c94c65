//! Checksum verification of the plugin binary (go-plugin's `SecureConfig`),
//! without the window between check and exec that go-plugin documents: the
//! file is opened once, hashed through that descriptor, and the very same
//! descriptor is executed (`/proc/self/fd/N`), so replacing the file after
//! the check cannot change what runs.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::program::{not_in_path, resolve_program};
use crate::error::{Error, Result};
use crate::protocol::Checksum;

impl Checksum {
    /// The SHA-256 of the file at `path`.
    ///
    /// # Errors
    ///
    /// [`Error::ChecksumFile`] when the file cannot be read.
    pub fn of_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let mut file = File::open(path).map_err(|source| Error::ChecksumFile {
            path: path.to_path_buf(),
            error: source,
        })?;
        hash(&mut file).map_err(|source| Error::ChecksumFile {
            path: path.to_path_buf(),
            error: source,
        })
    }
}

fn hash(reader: &mut impl Read) -> std::io::Result<Checksum> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            return Ok(Checksum::from_bytes(hasher.finalize().into()));
        }
        hasher.update(&buffer[..n]);
    }
}

/// A verified binary: its open descriptor and a command that executes it.
#[derive(Debug)]
pub(crate) struct Verified {
    file: File,
    command: std::process::Command,
    /// The program's own name, `argv[0]` of `/proc/self/fd/N`.
    arg0: std::ffi::OsString,
    /// The descriptor stays open across exec (a script), through a
    /// `pre_exec` hook on `command`.
    keeps_descriptor_open: bool,
}

/// A verified command, ready to spawn.
#[derive(Debug)]
pub(crate) struct VerifiedParts {
    pub(crate) command: std::process::Command,
    /// Must stay open until the plugin is spawned.
    pub(crate) file: File,
    pub(crate) arg0: std::ffi::OsString,
    pub(crate) needs_fork: bool,
}

impl Verified {
    pub(crate) fn into_parts(self) -> VerifiedParts {
        VerifiedParts {
            command: self.command,
            file: self.file,
            arg0: self.arg0,
            needs_fork: self.keeps_descriptor_open,
        }
    }
}

/// Resolves the command's program, hashes it through one descriptor, and
/// returns a command that executes that descriptor.
pub(crate) fn verify(command: &std::process::Command, expected: &Checksum) -> Result<Verified> {
    let program = command.get_program();
    let path = resolve_program(program).ok_or_else(|| not_in_path(Path::new(program)))?;
    let checksum_error = |source| Error::ChecksumFile {
        path: path.clone(),
        error: source,
    };
    // O_CLOEXEC (std's default): other children spawned meanwhile don't get it.
    let mut file = File::open(&path).map_err(checksum_error)?;
    let meta = file.metadata().map_err(checksum_error)?;
    if !meta.is_file() {
        return Err(checksum_error(std::io::Error::other("not a regular file")));
    }
    let actual = hash(&mut file).map_err(checksum_error)?;
    if !actual.matches(expected) {
        return Err(Error::ChecksumMismatch {
            path,
            expected: *expected,
            actual,
        });
    }

    // Executing /proc/self/fd/N runs the inode that was hashed. The kernel
    // resolves the path before it closes O_CLOEXEC descriptors, so this
    // works for binaries; a `#!` script's interpreter opens the path later,
    // so its descriptor must survive the exec (see below).
    let fd = file.as_raw_fd();
    let mut verified = std::process::Command::new(format!("/proc/self/fd/{fd}"));
    verified
        .arg0(command.get_program())
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => verified.env(key, value),
            None => verified.env_remove(key),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        verified.current_dir(dir);
    }
    let keeps_descriptor_open = is_script(&file);
    if keeps_descriptor_open {
        keep_open_across_exec(&mut verified, fd);
    }
    Ok(Verified {
        file,
        command: verified,
        arg0: command.get_program().to_owned(),
        keeps_descriptor_open,
    })
}

fn is_script(file: &File) -> bool {
    use std::os::unix::fs::FileExt;
    let mut magic = [0u8; 2];
    file.read_exact_at(&mut magic, 0)
        .is_ok_and(|()| &magic == b"#!")
}

#[expect(
    unsafe_code,
    reason = "pre_exec is the only way to clear FD_CLOEXEC in the child alone"
)]
fn keep_open_across_exec(command: &mut std::process::Command, fd: i32) {
    // SAFETY: the closure runs in the forked child before exec and only
    // makes one fcntl system call, which is async-signal-safe; it allocates
    // nothing and touches no locks.
    unsafe {
        command.pre_exec(move || {
            let fd = rustix::fd::BorrowedFd::borrow_raw(fd);
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty()).map_err(std::io::Error::from)
        });
    }
}

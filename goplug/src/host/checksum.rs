//! Checksum verification of the plugin binary (go-plugin's `SecureConfig`),
//! without the window between check and exec that go-plugin documents: the
//! file is opened once, hashed through that descriptor, and the very same
//! descriptor is executed (`/proc/self/fd/N`), so replacing the file after
//! the check cannot change what runs.

use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The SHA-256 of a plugin binary, as a host pins it.
///
/// ```
/// use goplug::host::Checksum;
/// let sum: Checksum = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".parse()?;
/// assert_eq!(sum, Checksum::of_bytes(b""));
/// # Ok::<(), goplug::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Checksum([u8; 32]);

impl Checksum {
    /// A checksum from its 32 bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The SHA-256 of `bytes`.
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// The SHA-256 of the file at `path`.
    ///
    /// # Errors
    ///
    /// [`Error::ChecksumFile`] when the file cannot be read.
    pub fn of_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let mut file = File::open(path).map_err(|source| Error::ChecksumFile {
            path: path.to_path_buf(),
            source,
        })?;
        hash(&mut file).map_err(|source| Error::ChecksumFile {
            path: path.to_path_buf(),
            source,
        })
    }

    /// The 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Compares in constant time.
    fn matches(&self, other: &Self) -> bool {
        self.0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Checksum({self})")
    }
}

impl std::str::FromStr for Checksum {
    type Err = Error;

    /// Parses 64 hex digits (the output of `sha256sum`), optionally prefixed
    /// with `sha256:`.
    fn from_str(text: &str) -> Result<Self> {
        let hex = text.trim();
        let hex = hex.strip_prefix("sha256:").unwrap_or(hex);
        let invalid = || {
            Error::Config(format!(
                "{text:?} is not a SHA-256 checksum (64 hex digits)"
            ))
        };
        if hex.len() != 64 || !hex.is_ascii() {
            return Err(invalid());
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| invalid())?;
        }
        Ok(Self(bytes))
    }
}

fn hash(reader: &mut impl Read) -> std::io::Result<Checksum> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            return Ok(Checksum(hasher.finalize().into()));
        }
        hasher.update(&buffer[..n]);
    }
}

/// A verified binary: its open descriptor and a command that executes it.
#[derive(Debug)]
pub(crate) struct Verified {
    file: File,
    command: std::process::Command,
}

impl Verified {
    /// The command, and the file that must stay open until it is spawned.
    pub(crate) fn into_parts(self) -> (std::process::Command, File) {
        (self.command, self.file)
    }
}

/// Resolves the command's program, hashes it through one descriptor, and
/// returns a command that executes that descriptor.
pub(crate) fn verify(command: &std::process::Command, expected: &Checksum) -> Result<Verified> {
    let path = resolve_program(command.get_program());
    let checksum_error = |source| Error::ChecksumFile {
        path: path.clone(),
        source,
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
    if is_script(&file) {
        keep_open_across_exec(&mut verified, fd);
    }
    Ok(Verified {
        file,
        command: verified,
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

/// Finds the program as `execvp` would: a name with a slash is a path,
/// anything else is looked up in `PATH`.
pub(crate) fn resolve_program(program: &std::ffi::OsStr) -> PathBuf {
    let candidate = PathBuf::from(program);
    if candidate.components().count() > 1 || program.to_string_lossy().contains('/') {
        return candidate;
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/bin:/bin"));
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|full| full.is_file())
        .unwrap_or(candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_hex() {
        let text = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let sum: Checksum = text.parse().unwrap();
        assert_eq!(sum.to_string(), text);
        assert_eq!(sum, Checksum::of_bytes(b""));
        assert_eq!(format!("sha256:{text}").parse::<Checksum>().unwrap(), sum);
        for bad in [
            "",
            "xyz",
            &text[..63],
            &format!("{text}00"),
            &text.replace('e', "g"),
        ] {
            assert!(bad.parse::<Checksum>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn comparison_is_exact() {
        let a = Checksum::of_bytes(b"a");
        let mut bytes = *a.as_bytes();
        bytes[31] ^= 1;
        assert!(a.matches(&a));
        assert!(!a.matches(&Checksum::from_bytes(bytes)));
    }

    #[test]
    fn programs_resolve_like_execvp() {
        assert_eq!(resolve_program("./x".as_ref()), PathBuf::from("./x"));
        assert_eq!(
            resolve_program("/bin/sh".as_ref()),
            PathBuf::from("/bin/sh")
        );
        assert!(resolve_program("sh".as_ref()).is_absolute());
    }
}

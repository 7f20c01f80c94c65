//! New user and network namespaces for the plugin: `unshare` in the
//! child, its own user and group mapped to themselves (so files keep their
//! owners), the texts of those maps written in the parent.

use std::ffi::CString;

/// What the child unshares and writes.
#[derive(Debug)]
pub(super) struct Prepared {
    network: bool,
    uid_map: CString,
    gid_map: CString,
}

/// Which step failed in the child.
#[derive(Clone, Copy, Debug)]
pub(super) enum Failure {
    User(i32),
    Network(i32),
}

pub(super) fn prepare(network: bool) -> Prepared {
    let uid = rustix::process::geteuid().as_raw();
    let gid = rustix::process::getegid().as_raw();
    Prepared {
        network,
        // Digits and spaces only: never an interior NUL.
        uid_map: CString::new(format!("{uid} {uid} 1")).unwrap_or_default(),
        gid_map: CString::new(format!("{gid} {gid} 1")).unwrap_or_default(),
    }
}

const SETGROUPS: &std::ffi::CStr = c"/proc/self/setgroups";
const UID_MAP: &std::ffi::CStr = c"/proc/self/uid_map";
const GID_MAP: &std::ffi::CStr = c"/proc/self/gid_map";

/// Unshares and maps, in the child: system calls only. The user
/// namespace comes first, so that the network one needs no privilege of
/// the host and a refusal names the namespace the kernel refused.
pub(super) fn apply(prepared: &Prepared) -> Result<(), Failure> {
    unshare(libc::CLONE_NEWUSER).map_err(Failure::User)?;
    write_file(SETGROUPS, b"deny").map_err(Failure::User)?;
    write_file(UID_MAP, prepared.uid_map.as_bytes()).map_err(Failure::User)?;
    write_file(GID_MAP, prepared.gid_map.as_bytes()).map_err(Failure::User)?;
    if prepared.network {
        unshare(libc::CLONE_NEWNET).map_err(Failure::Network)?;
    }
    Ok(())
}

#[expect(
    unsafe_code,
    reason = "unshare(2) has no safe wrapper in the crates goplug uses"
)]
fn unshare(flags: libc::c_int) -> Result<(), i32> {
    // SAFETY: unshare takes flags only; the forked child is
    // single-threaded, as a new user namespace requires.
    if unsafe { libc::unshare(flags) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

fn write_file(path: &std::ffi::CStr, contents: &[u8]) -> Result<(), i32> {
    let file = rustix::fs::open(
        path,
        rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| e.raw_os_error())?;
    rustix::io::write(&file, contents)
        .map(drop)
        .map_err(|e| e.raw_os_error())
}

//! What the kernel runs a program with: the dynamic loader named in an
//! ELF binary's `PT_INTERP`, or a script's `#!` interpreter. Landlock must
//! let the plugin execute it, and nothing else in the system directories.
//!
//! Read by hand: two fields of the ELF header and one program header do
//! not justify an ELF crate in goplug's dependencies.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const PT_INTERP: u32 = 3;
const MAX_HEADERS: u64 = 256;
const MAX_PATH: u64 = 4096;

/// The interpreter of `program`, if it has one this parser understands
/// (64-bit little-endian ELF, or `#!`).
pub(crate) fn interpreter_of(program: &Path) -> Option<PathBuf> {
    let file = std::fs::File::open(program).ok()?;
    let mut head = [0u8; 64];
    let read = file.read_at(&mut head, 0).ok()?;
    let head = &head[..read];
    if head.starts_with(b"#!") {
        return shebang(&file);
    }
    if head.len() < 64 || head[..4] != *b"\x7fELF" || head[4] != 2 || head[5] != 1 {
        return None;
    }
    let phoff = u64::from_le_bytes(head[32..40].try_into().ok()?);
    let phentsize = u64::from(u16::from_le_bytes(head[54..56].try_into().ok()?));
    let phnum = u64::from(u16::from_le_bytes(head[56..58].try_into().ok()?));
    if phentsize < 56 {
        return None;
    }
    for index in 0..phnum.min(MAX_HEADERS) {
        let mut header = [0u8; 56];
        file.read_exact_at(&mut header, phoff.checked_add(index * phentsize)?)
            .ok()?;
        if u32::from_le_bytes(header[0..4].try_into().ok()?) != PT_INTERP {
            continue;
        }
        let offset = u64::from_le_bytes(header[8..16].try_into().ok()?);
        let size = u64::from_le_bytes(header[32..40].try_into().ok()?).min(MAX_PATH);
        let mut path = vec![0u8; usize::try_from(size).ok()?];
        file.read_exact_at(&mut path, offset).ok()?;
        let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
        path.truncate(end);
        return Some(PathBuf::from(
            <std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(path),
        ));
    }
    None
}

/// The first word after `#!`, up to the end of the line.
fn shebang(file: &std::fs::File) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let mut line = [0u8; 256];
    let read = file.read_at(&mut line, 2).ok()?;
    let line = line[..read].split(|&b| b == b'\n').next()?;
    let word = line
        .split(|&b| b == b' ' || b == b'\t')
        .find(|word| !word.is_empty())?;
    Some(PathBuf::from(std::ffi::OsStr::from_bytes(word)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamic_binary_names_its_loader_and_a_script_its_interpreter() {
        let loader = interpreter_of(Path::new("/bin/sh")).expect("sh is dynamically linked");
        assert!(loader.to_string_lossy().contains("ld-"), "{loader:?}");
        let dir = tempfile::tempdir().expect("temp dir");
        let script = dir.path().join("script");
        std::fs::write(&script, "#!/usr/bin/env  python3 -u\nprint()\n").expect("script");
        assert_eq!(interpreter_of(&script), Some(PathBuf::from("/usr/bin/env")));
        std::fs::write(&script, "plain text").expect("text");
        assert_eq!(interpreter_of(&script), None);
    }
}

//! Finding the plugin's program as go-plugin does (Go's `exec.Command`):
//! a name with a slash is a path, any other name is looked up in `PATH`
//! only, never in the current directory. The checksum check and the spawn
//! both go through here, so a name resolves the same way with and without
//! a checksum.

use std::ffi::{OsStr, OsString};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::protocol::quote;

/// Shells whose `-c` runs a script: a checksum then pins the shell.
const SHELLS: [&str; 6] = ["sh", "bash", "dash", "zsh", "ksh", "ash"];

/// Finds the program as `execvp` would: a name with a slash is a path; any
/// other name is the first executable file of that name in a `PATH`
/// directory (or, failing that, the first such file, which the spawn then
/// refuses with a permission error). `None`: no file of that name in `PATH`.
pub(crate) fn resolve_program(program: &OsStr) -> Option<PathBuf> {
    if program.as_encoded_bytes().contains(&b'/') {
        return Some(PathBuf::from(program));
    }
    if program.is_empty() {
        return None;
    }
    let mut not_executable = None;
    for dir in std::env::split_paths(&search_path()) {
        let full = dir.join(program);
        match std::fs::metadata(&full) {
            Ok(meta) if meta.is_file() && meta.permissions().mode() & 0o111 != 0 => {
                return Some(full);
            }
            Ok(meta) if meta.is_file() => {
                not_executable.get_or_insert(full);
            }
            _ => {}
        }
    }
    not_executable
}

/// The `PATH` programs are looked up in: the host's, as Go's `exec.Command`.
fn search_path() -> OsString {
    std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/bin:/bin"))
}

/// The error for a name without a slash that is in no `PATH` directory,
/// in Go's words, with the directories searched.
pub(crate) fn not_in_path(program: &Path) -> Error {
    Error::Spawn {
        program: program.to_path_buf(),
        error: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "executable file not found in $PATH",
        ),
        diagnosis: format!(
            "; a name without a slash is looked up in $PATH only, and $PATH is {:?}; for a file in the current directory, write \"./{}\"",
            quote(&search_path().to_string_lossy()),
            program.display()
        ),
    }
}

/// The shell, when `command` is `sh -c …` (as [`shell_command`] builds):
/// a checksum of that command is the shell's, not the plugin's.
///
/// [`shell_command`]: super::shell_command
pub(crate) fn shell_of(command: &std::process::Command) -> Option<&OsStr> {
    let program = command.get_program();
    let name = Path::new(program).file_name()?.to_str()?;
    let runs_script = command.get_args().next() == Some(OsStr::new("-c"));
    (SHELLS.contains(&name) && runs_script).then_some(program)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_resolve_like_exec_command() {
        assert_eq!(resolve_program("./x".as_ref()), Some(PathBuf::from("./x")));
        assert_eq!(
            resolve_program("/bin/sh".as_ref()),
            Some(PathBuf::from("/bin/sh"))
        );
        assert!(resolve_program("sh".as_ref()).is_some_and(|p| p.is_absolute()));
        assert_eq!(resolve_program("goplug-no-such-program".as_ref()), None);
        assert_eq!(resolve_program("".as_ref()), None);
        // A file in the current directory is not found by its bare name
        // (unless PATH itself names the current directory).
        let path = search_path();
        let cwd_in_path = std::env::split_paths(&path).any(|d| d.is_relative());
        if !cwd_in_path {
            assert!(Path::new("Cargo.toml").is_file());
            assert_eq!(resolve_program("Cargo.toml".as_ref()), None);
        }
    }

    #[test]
    fn the_not_found_error_names_the_path_search() {
        let text = not_in_path(Path::new("greeter-plugin")).to_string();
        assert!(
            text.starts_with(
                "failed to start plugin \"greeter-plugin\": executable file not found in $PATH; a name without a slash is looked up in $PATH only, and $PATH is \""
            ),
            "{text}"
        );
        assert!(text.ends_with("write \"./greeter-plugin\""), "{text}");
    }

    #[test]
    fn shell_commands_are_recognised() {
        let shell = super::super::shell_command("exec ./plugin");
        assert_eq!(shell_of(&shell), Some(OsStr::new("sh")));
        let mut bash = std::process::Command::new("/bin/bash");
        bash.args(["-c", "x"]);
        assert_eq!(shell_of(&bash), Some(OsStr::new("/bin/bash")));
        let mut script = std::process::Command::new("sh");
        script.arg("plugin.sh");
        assert_eq!(shell_of(&script), None);
        assert_eq!(shell_of(&std::process::Command::new("./plugin")), None);
    }
}

//! Finding plugin binaries: go-plugin's `Discover`, plus checksum pinning
//! from a manifest.
//!
//! ```no_run
//! use goplug::discover::{Manifest, discover, discover_pinned};
//!
//! // Every executable `terraform-provider-*` in ./plugins, sorted.
//! let found = discover("terraform-provider-*", "./plugins")?;
//!
//! // The same, each with the SHA-256 the manifest pins for it, ready for
//! // `ClientBuilder::checksum`. A binary missing from the manifest is an error.
//! let manifest = Manifest::from_file("./plugins/SHA256SUMS")?;
//! for plugin in discover_pinned("terraform-provider-*", "./plugins", &manifest)? {
//!     println!("{} {}", plugin.checksum, plugin.path.display());
//! }
//! # Ok::<(), goplug::Error>(())
//! ```
//!
//! Patterns follow Go's `filepath.Match` (`*`, `?`, `[a-z]`, `[^a-z]`,
//! `\` escapes) on file names in one directory. Unlike go-plugin, only
//! executable regular files (or links to them) are returned, in name order.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::host::Checksum;

/// Longest manifest accepted.
const MAX_MANIFEST: u64 = 4 * 1024 * 1024;

/// Executable files in `dir` whose names match `pattern`, sorted by name.
///
/// # Errors
///
/// [`Error::Discovery`] for a malformed pattern or an unreadable directory.
pub fn discover(pattern: &str, dir: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
    let dir = dir.as_ref();
    // Checked up front, so a bad pattern is an error even in an empty dir.
    glob_match(pattern, "").map_err(|reason| discovery_error(dir, reason))?;
    let dir = std::path::absolute(dir).map_err(|e| discovery_error(dir, e.to_string()))?;
    let entries = std::fs::read_dir(&dir).map_err(|e| discovery_error(&dir, e.to_string()))?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| discovery_error(&dir, e.to_string()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if glob_match(pattern, name) != Ok(true) {
            continue;
        }
        let path = entry.path();
        if is_executable_file(&path) {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

/// A discovered plugin and the checksum its manifest pins.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PinnedPlugin {
    /// The binary.
    pub path: PathBuf,
    /// Its pinned SHA-256, for [`ClientBuilder::checksum`](crate::host::ClientBuilder::checksum).
    pub checksum: Checksum,
}

/// [`discover`], with each binary's checksum from `manifest`. The binaries
/// are not hashed here: the host verifies at launch, through the very
/// descriptor it executes.
///
/// # Errors
///
/// [`Error::Discovery`] naming a binary the manifest lacks, and as [`discover`].
pub fn discover_pinned(
    pattern: &str,
    dir: impl AsRef<Path>,
    manifest: &Manifest,
) -> Result<Vec<PinnedPlugin>> {
    discover(pattern, dir)?
        .into_iter()
        .map(|path| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            match manifest.checksum(&name) {
                Some(checksum) => Ok(PinnedPlugin { path, checksum }),
                None => Err(discovery_error(
                    &path,
                    "not listed in the checksum manifest; refusing an unpinned plugin".to_owned(),
                )),
            }
        })
        .collect()
}

/// Pinned checksums by file name, in `sha256sum`'s format: one
/// `<64 hex digits>  <name>` (or ` *<name>`) per line, `#` comments and
/// blank lines ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    entries: BTreeMap<String, Checksum>,
}

impl Manifest {
    /// Parses a manifest.
    ///
    /// # Errors
    ///
    /// [`Error::Discovery`] naming the line that is not `<sha256>  <name>`,
    /// or a name listed twice with different sums.
    pub fn parse(text: &str) -> Result<Self> {
        let mut entries = BTreeMap::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let bad = |reason: &str| {
                discovery_error(
                    Path::new("manifest"),
                    format!("line {}: {reason}: {line:?}", number + 1),
                )
            };
            let (sum, name) = line
                .split_once(' ')
                .ok_or_else(|| bad("expected \"<sha256>  <name>\""))?;
            let name = name.strip_prefix(' ').or_else(|| name.strip_prefix('*'));
            let name = name.ok_or_else(|| bad("expected two spaces or \" *\" after the sum"))?;
            if name.is_empty() || name.contains('/') {
                return Err(bad("the name must be a bare file name"));
            }
            let checksum: Checksum = sum.parse().map_err(|_| bad("not a SHA-256 in hex"))?;
            if let Some(previous) = entries.insert(name.to_owned(), checksum)
                && previous != checksum
            {
                return Err(bad("listed twice with different sums"));
            }
        }
        Ok(Self { entries })
    }

    /// Reads and parses a manifest file.
    ///
    /// # Errors
    ///
    /// [`Error::Discovery`] when the file cannot be read or parsed.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        use std::io::Read;
        let path = path.as_ref();
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|file| file.take(MAX_MANIFEST + 1).read_to_string(&mut text))
            .map_err(|e| discovery_error(path, e.to_string()))?;
        if text.len() as u64 > MAX_MANIFEST {
            return Err(discovery_error(
                path,
                format!("manifest larger than {MAX_MANIFEST} bytes"),
            ));
        }
        Self::parse(&text).map_err(|e| match e {
            Error::Discovery { reason, .. } => discovery_error(path, reason),
            other => other,
        })
    }

    /// The checksum pinned for the file `name`.
    pub fn checksum(&self, name: &str) -> Option<Checksum> {
        self.entries.get(name).copied()
    }

    /// The file names listed.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }
}

fn discovery_error(path: &Path, reason: String) -> Error {
    Error::Discovery {
        path: path.to_path_buf(),
        reason,
    }
}

fn is_executable_file(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Go's `filepath.Match` for one path component: `Ok(matched)`, or the
/// reason the pattern is malformed (Go's `ErrBadPattern`).
pub fn glob_match(pattern: &str, name: &str) -> std::result::Result<bool, String> {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    validate(&pattern)?;
    Ok(match_from(&pattern, &name))
}

/// Rejects what Go rejects: an unterminated class, a trailing `\`, an
/// empty or reversed range, `/` in a pattern.
fn validate(pattern: &[char]) -> std::result::Result<(), String> {
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            '\\' => {
                if i + 1 >= pattern.len() {
                    return Err("syntax error in pattern: trailing \\".to_owned());
                }
                i += 2;
            }
            '[' => i = class_end(pattern, i)?,
            '/' => return Err("a pattern matches names in one directory; it has a '/'".to_owned()),
            _ => i += 1,
        }
    }
    Ok(())
}

/// The index just past the class starting at `start` (`[`).
fn class_end(pattern: &[char], start: usize) -> std::result::Result<usize, String> {
    let bad = || Err("syntax error in pattern: malformed character class".to_owned());
    let mut i = start + 1;
    if pattern.get(i) == Some(&'^') {
        i += 1;
    }
    let mut ranges = 0;
    loop {
        match pattern.get(i) {
            None => return bad(),
            Some(']') if ranges > 0 => return Ok(i + 1),
            Some(_) => {}
        }
        let Some((low, next)) = class_char(pattern, i) else {
            return bad();
        };
        i = next;
        if pattern.get(i) == Some(&'-') {
            let Some((high, next)) = class_char(pattern, i + 1) else {
                return bad();
            };
            if high < low {
                return bad();
            }
            i = next;
        }
        ranges += 1;
    }
}

/// One (possibly escaped) character of a class, and the index after it.
fn class_char(pattern: &[char], i: usize) -> Option<(char, usize)> {
    match pattern.get(i)? {
        '\\' => pattern.get(i + 1).map(|c| (*c, i + 2)),
        '-' | ']' => None,
        c => Some((*c, i + 1)),
    }
}

/// One element of a validated pattern.
enum Token<'a> {
    Star,
    Any,
    Literal(char),
    Class(&'a [char]),
}

fn tokens(pattern: &[char]) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            '*' => {
                out.push(Token::Star);
                i += 1;
            }
            '?' => {
                out.push(Token::Any);
                i += 1;
            }
            '\\' => {
                out.push(Token::Literal(pattern.get(i + 1).copied().unwrap_or('\\')));
                i += 2;
            }
            '[' => {
                // Validated already, so the class is well formed.
                let end = class_end(pattern, i).unwrap_or(pattern.len()).max(i + 2);
                out.push(Token::Class(&pattern[i + 1..end - 1]));
                i = end;
            }
            c => {
                out.push(Token::Literal(c));
                i += 1;
            }
        }
    }
    out
}

/// Wildcard matching with backtracking to the last star: O(len(pattern) ×
/// len(name)), so no pattern can make discovery take exponential time.
fn match_from(pattern: &[char], name: &[char]) -> bool {
    // File names have no separator; Go's `*` and `?` never match one.
    if name.contains(&'/') {
        return false;
    }
    let tokens = tokens(pattern);
    let one = |token: &Token<'_>, c: char| match token {
        Token::Any => true,
        Token::Literal(l) => *l == c,
        Token::Class(body) => in_class(body, c),
        Token::Star => false,
    };
    let (mut t, mut n) = (0, 0);
    let mut last_star: Option<(usize, usize)> = None;
    while n < name.len() {
        match tokens.get(t) {
            Some(Token::Star) => {
                last_star = Some((t, n));
                t += 1;
            }
            Some(token) if one(token, name[n]) => {
                t += 1;
                n += 1;
            }
            _ => match last_star {
                Some((star, consumed)) => {
                    t = star + 1;
                    n = consumed + 1;
                    last_star = Some((star, consumed + 1));
                }
                None => return false,
            },
        }
    }
    tokens[t..].iter().all(|token| matches!(token, Token::Star))
}

/// Whether `c` is in the class body (between `[` and `]`).
fn in_class(body: &[char], c: char) -> bool {
    let (negated, mut body) = match body.split_first() {
        Some(('^', rest)) => (true, rest),
        _ => (false, body),
    };
    let mut matched = false;
    while !body.is_empty() {
        let Some((low, next)) = class_char(body, 0) else {
            break;
        };
        body = &body[next..];
        let mut high = low;
        if body.first() == Some(&'-')
            && let Some((h, next)) = class_char(body, 1)
        {
            high = h;
            body = &body[next..];
        }
        if low <= c && c <= high {
            matched = true;
        }
    }
    matched != negated
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_as_go_filepath_match() {
        // (pattern, name, matched), from Go's filepath.Match semantics.
        let cases = [
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("a*", "ab/c", false),
            ("a*b*c*d*e*", "axbxcxdxe", true),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a[^a]b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("[a-ζ]*", "α", true),
            ("*[a-ζ]", "A", false),
            ("[\\-]", "-", true),
            ("[x\\-]", "z", false),
            ("kv-*", "kv-plugin", true),
            ("kv-*", "kv", false),
            ("", "", true),
            ("", "x", false),
            ("*a*a*a*a*a*a*a*a*a*a*b", &"a".repeat(200), false),
        ];
        for (pattern, name, expected) in cases {
            assert_eq!(
                glob_match(pattern, name),
                Ok(expected),
                "{pattern:?} vs {name:?}"
            );
        }
    }

    #[test]
    fn malformed_patterns_are_errors() {
        for pattern in [
            "[", "[^", "[^bc", "a[", "[]a]", "[-]", "[x-]", "[z-a]", "a\\", "a/b", "[\\",
        ] {
            assert!(glob_match(pattern, "a").is_err(), "{pattern:?}");
        }
    }

    #[test]
    fn manifests_parse_in_sha256sum_format() {
        let empty = Checksum::of_bytes(b"");
        let text = format!(
            "# pinned plugins\n{empty}  kv-plugin\r\n\n{} *other\n{empty}  kv-plugin\n",
            Checksum::of_bytes(b"x")
        );
        let manifest = Manifest::parse(&text).unwrap();
        assert_eq!(manifest.checksum("kv-plugin"), Some(empty));
        assert_eq!(manifest.checksum("other"), Some(Checksum::of_bytes(b"x")));
        assert_eq!(manifest.checksum("missing"), None);
        assert_eq!(manifest.names().collect::<Vec<_>>(), ["kv-plugin", "other"]);

        for bad in [
            "nothex  kv",
            &format!("{empty} kv"),
            &format!("{empty}  "),
            &format!("{empty}  dir/kv"),
            &format!("{empty}  kv\n{}  kv", Checksum::of_bytes(b"x")),
            "justonefield",
        ] {
            let err = Manifest::parse(bad).unwrap_err();
            assert!(matches!(err, Error::Discovery { .. }), "{bad:?}: {err:?}");
            assert!(err.to_string().contains("line "), "{err}");
        }
    }

    #[test]
    fn discovers_executables_only_sorted_and_pins_them() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, mode: u32| {
            let path = dir.path().join(name);
            std::fs::write(&path, name).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        write("kv-b", 0o755);
        write("kv-a", 0o700);
        write("kv-notexec", 0o644);
        write("other", 0o755);
        std::fs::create_dir(dir.path().join("kv-dir")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("kv-a"), dir.path().join("kv-link")).unwrap();

        let found = discover("kv-*", dir.path()).unwrap();
        let names: Vec<_> = found
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(names, ["kv-a", "kv-b", "kv-link"]);
        assert!(found.iter().all(|p| p.is_absolute()));

        let manifest = Manifest::parse(&format!(
            "{}  kv-a\n{}  kv-b\n{}  kv-link\n",
            Checksum::of_bytes(b"kv-a"),
            Checksum::of_bytes(b"kv-b"),
            Checksum::of_bytes(b"kv-a"),
        ))
        .unwrap();
        let pinned = discover_pinned("kv-*", dir.path(), &manifest).unwrap();
        assert_eq!(pinned[1].checksum, Checksum::of_bytes(b"kv-b"));
        let partial = Manifest::parse(&format!("{}  kv-a\n", Checksum::of_bytes(b"kv-a"))).unwrap();
        let err = discover_pinned("kv-*", dir.path(), &partial).unwrap_err();
        assert!(err.to_string().contains("kv-b"), "{err}");
        assert!(err.to_string().contains("not listed"), "{err}");

        assert!(discover("[", dir.path()).is_err());
        assert!(discover("*", dir.path().join("missing")).is_err());
    }
}

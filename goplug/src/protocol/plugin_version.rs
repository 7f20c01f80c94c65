//! Plugin versions as values: the semantic version a plugin reports
//! (Vault's `logical.PluginVersion`) and the constraint a host requires.
//!
//! A constraint is a comma-separated list of comparators, all of which must
//! match. It reads Cargo's syntax (`^1.2`, `~1.2`, `1.*`, `>=1.2, <2`) and
//! hashicorp/go-version's (`~> 1.2`, `!= 1.3.0`, `>= v1.2`), and refuses
//! the forms the two read differently, so a constraint copied from either
//! world never silently means something else:
//!
//! | written     | go-version        | Cargo              | here                         |
//! |-------------|-------------------|--------------------|------------------------------|
//! | `1.2`       | exactly 1.2.0     | `^1.2`             | refused: write `=1.2.0` or `^1.2` |
//! | `=1.2`      | exactly 1.2.0     | 1.2.*              | refused: write `=1.2.0` or `1.2.*` |
//! | `>1.2`      | above 1.2.0       | 1.3.0 and above    | refused: write `>1.2.0` or `>=1.3.0` |
//! | `<=1.2`     | up to 1.2.0       | below 1.3.0        | refused: write `<=1.2.0` or `<1.3.0` |
//! | `~> 1.2`    | `>=1.2.0, <2.0.0` | (no such operator) | `>=1.2.0, <2.0.0`            |
//! | `~> 1.2.3`  | `>=1.2.3, <1.3.0` | (no such operator) | `>=1.2.3, <1.3.0`            |
//! | `~> 1`      | `>=1.0.0`         | (no such operator) | `>=1.0.0`                    |
//! | `!= 1.3.0`  | anything but 1.3.0| (no such operator) | anything but 1.3.0           |
//! | `~1.2`      | (malformed)       | `>=1.2.0, <1.3.0`  | as Cargo                     |
//!
//! Pre-releases follow both: a pre-release version matches only a
//! constraint that names a pre-release of the same `major.minor.patch`.

use std::fmt;
use std::str::FromStr;

use semver::{Comparator, Op, Prerelease, Version, VersionReq};

/// A version constraint a host requires of a plugin, such as `>=1.2, <2`
/// or `~> 1.2` (see the [module docs](self) for the syntax).
///
/// ```
/// use goplug::protocol::VersionConstraint;
/// let constraint: VersionConstraint = "~> 1.2".parse()?;
/// assert!(constraint.matches(&"1.9.0".parse()?));
/// assert!(!constraint.matches(&"2.0.0".parse()?));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct VersionConstraint {
    /// As written, for messages.
    text: String,
    /// Every comparator but the exclusions.
    req: VersionReq,
    /// go-version's `!=`, which Cargo's requirements cannot say.
    excluded: Vec<Version>,
    /// A Cargo `*` was given: pre-releases stay out even when `req` is empty.
    star: bool,
}

/// A constraint that does not parse, or that go-version and Cargo would
/// read differently.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid version constraint {constraint:?}: {reason}")]
pub struct VersionConstraintError {
    /// The constraint as given.
    pub constraint: String,
    /// What is wrong with it, and how to write it.
    pub reason: String,
}

/// A version that is not a semantic version.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{version:?} is not a semantic version: {reason}")]
pub struct PluginVersionError {
    /// The version as given.
    pub version: String,
    /// What is wrong with it.
    pub reason: String,
}

impl VersionConstraint {
    /// Parses a constraint; the same as `text.parse()`.
    ///
    /// # Errors
    ///
    /// [`VersionConstraintError`] for an empty or malformed comparator, and
    /// for the forms go-version and Cargo read differently.
    pub fn parse(text: &str) -> Result<Self, VersionConstraintError> {
        let invalid = |reason: String| VersionConstraintError {
            constraint: text.to_owned(),
            reason,
        };
        let mut req = VersionReq {
            comparators: Vec::new(),
        };
        let mut excluded = Vec::new();
        let mut star = false;
        for part in text.split(',') {
            let part = part.trim();
            if part.is_empty() {
                return Err(invalid(
                    "a comparator is empty: write comparators separated by commas, as \">=1.2, <2\""
                        .to_owned(),
                ));
            }
            match comparator(part).map_err(invalid)? {
                Parsed::Range(comparators) => req.comparators.extend(comparators),
                Parsed::Not(version) => excluded.push(version),
                Parsed::Star => star = true,
            }
        }
        Ok(Self {
            text: text.trim().to_owned(),
            req,
            excluded,
            star,
        })
    }

    /// Whether `version` meets the constraint.
    pub fn matches(&self, version: &Version) -> bool {
        // go-version's `!=` alone admits pre-releases; Cargo's empty
        // requirement (`*`) would not.
        let only_exclusions = self.req.comparators.is_empty() && !self.star;
        let in_range = only_exclusions || self.req.matches(version);
        in_range
            && !self
                .excluded
                .iter()
                .any(|not| same_precedence(not, version))
    }

    /// The constraint as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl FromStr for VersionConstraint {
    type Err = VersionConstraintError;

    fn from_str(text: &str) -> Result<Self, VersionConstraintError> {
        Self::parse(text)
    }
}

/// A Cargo requirement, read as Cargo reads it.
impl From<VersionReq> for VersionConstraint {
    fn from(req: VersionReq) -> Self {
        Self {
            text: req.to_string(),
            star: req.comparators.is_empty(),
            req,
            excluded: Vec::new(),
        }
    }
}

impl fmt::Display for VersionConstraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for VersionConstraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let excluded: Vec<String> = self.excluded.iter().map(|v| format!("!={v}")).collect();
        f.debug_struct("VersionConstraint")
            .field("text", &self.text)
            .field("req", &self.req.to_string())
            .field("excluded", &excluded)
            .finish()
    }
}

/// Equal but for build metadata, as both go-version and Cargo compare.
fn same_precedence(a: &Version, b: &Version) -> bool {
    (a.major, a.minor, a.patch, &a.pre) == (b.major, b.minor, b.patch, &b.pre)
}

/// One comparator, translated.
enum Parsed {
    Range(Vec<Comparator>),
    Not(Version),
    Star,
}

/// go-version's operators, longest first so `>=` is not read as `>`.
const GO_OPERATORS: [&str; 7] = ["~>", "!=", ">=", "<=", "=", ">", "<"];

fn comparator(part: &str) -> Result<Parsed, String> {
    if let Some(op) = GO_OPERATORS.iter().find(|op| part.starts_with(**op)) {
        return go_comparator(op, part[op.len()..].trim(), part);
    }
    let cargo_only = part.starts_with(['^', '~']) || part.contains(['*', 'x', 'X']);
    if !cargo_only {
        return Err(format!(
            "{part:?} has no operator, which go-version reads as exactly that version and Cargo as a caret requirement: write \"={}\" or \"^{}\"",
            padded_text(part),
            part.strip_prefix('v').unwrap_or(part)
        ));
    }
    // Cargo's own forms: `^`, `~` and wildcards, read by Cargo's parser.
    let req = VersionReq::parse(part).map_err(|e| format!("{part:?}: {e}"))?;
    if req.comparators.is_empty() {
        return Ok(Parsed::Star);
    }
    Ok(Parsed::Range(req.comparators))
}

/// `1.2` as `1.2.0`, for a suggestion (the text itself when it is not a
/// plain version).
fn padded_text(text: &str) -> String {
    match loose_version(text) {
        Ok((version, _)) => version.to_string(),
        Err(_) => text.to_owned(),
    }
}

fn go_comparator(op: &str, rest: &str, part: &str) -> Result<Parsed, String> {
    let (version, given) = loose_version(rest).map_err(|reason| format!("{part:?}: {reason}"))?;
    // Cargo fills the missing parts of `=1.2`, `>1.2` and `<=1.2` with
    // wildcards, go-version with zeros.
    if given < 3 && matches!(op, "=" | ">" | "<=") {
        let zeros = version.to_string();
        let cargo = match (op, given) {
            ("=", 1) => format!("{}.*", version.major),
            ("=", _) => format!("{}.{}.*", version.major, version.minor),
            (">", 1) => format!(">={}.0.0", version.major.saturating_add(1)),
            (">", _) => format!(">={}.{}.0", version.major, version.minor.saturating_add(1)),
            (_, 1) => format!("<{}.0.0", version.major.saturating_add(1)),
            _ => format!("<{}.{}.0", version.major, version.minor.saturating_add(1)),
        };
        return Err(format!(
            "{part:?} means {op}{zeros} to go-version and {cargo} to Cargo: write the full version, \"{op}{zeros}\", or \"{cargo}\""
        ));
    }
    let bound = |op: Op, version: &Version| Comparator {
        op,
        major: version.major,
        minor: Some(version.minor),
        patch: Some(version.patch),
        pre: version.pre.clone(),
    };
    let comparators = match op {
        "=" => vec![bound(Op::Exact, &version)],
        ">" => vec![bound(Op::Greater, &version)],
        ">=" => vec![bound(Op::GreaterEq, &version)],
        "<" => vec![bound(Op::Less, &version)],
        "<=" => vec![bound(Op::LessEq, &version)],
        "!=" => return Ok(Parsed::Not(version)),
        _ => pessimistic(&version, given)
            .ok_or_else(|| format!("{part:?}: a number is too large"))?,
    };
    Ok(Parsed::Range(comparators))
}

/// go-version's `~>`: only the last number given may grow. With a
/// pre-release, only later pre-releases of that same version match.
fn pessimistic(version: &Version, given: usize) -> Option<Vec<Comparator>> {
    let at = |major, minor, patch| Comparator {
        op: Op::Less,
        major,
        minor: Some(minor),
        patch: Some(patch),
        pre: Prerelease::EMPTY,
    };
    let lower = Comparator {
        op: Op::GreaterEq,
        major: version.major,
        minor: Some(version.minor),
        patch: Some(version.patch),
        pre: version.pre.clone(),
    };
    let upper = if !version.pre.is_empty() {
        Some(at(version.major, version.minor, version.patch))
    } else {
        match given {
            1 => None,
            2 => Some(at(version.major.checked_add(1)?, 0, 0)),
            _ => Some(at(version.major, version.minor.checked_add(1)?, 0)),
        }
    };
    Some([Some(lower), upper].into_iter().flatten().collect())
}

/// A version as go-version reads one: an optional `v`, one to three
/// numbers (the missing ones zero), an optional `-pre-release` and
/// `+build`. Returns it and how many numbers were given.
fn loose_version(text: &str) -> Result<(Version, usize), String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("no version after the operator".to_owned());
    }
    let text = text.strip_prefix('v').unwrap_or(text);
    let (text, build) = match text.split_once('+') {
        Some((text, build)) => (text, Some(build)),
        None => (text, None),
    };
    let (core, pre) = match text.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (text, None),
    };
    let numbers: Vec<&str> = core.split('.').collect();
    if numbers.len() > 3 {
        return Err(format!(
            "{core:?} has {} numbers; a semantic version has three (major.minor.patch)",
            numbers.len()
        ));
    }
    let mut parsed = [0u64; 3];
    for (slot, number) in parsed.iter_mut().zip(&numbers) {
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "{number:?} is not a number; write the version as major.minor.patch, as 1.4.2"
            ));
        }
        *slot = number
            .parse()
            .map_err(|_| format!("{number:?} is too large"))?;
    }
    let mut version = Version::new(parsed[0], parsed[1], parsed[2]);
    if pre == Some("") || build == Some("") {
        return Err("an empty pre-release or build after '-' or '+'".to_owned());
    }
    if let Some(pre) = pre {
        version.pre = Prerelease::new(pre).map_err(|e| format!("pre-release {pre:?}: {e}"))?;
    }
    if let Some(build) = build {
        version.build =
            semver::BuildMetadata::new(build).map_err(|e| format!("build {build:?}: {e}"))?;
    }
    Ok((version, numbers.len()))
}

/// Reads the version a plugin reports, as go-version (and so Vault) reads
/// one: `1.4.2`, `v1.4.2`, `1.4` (1.4.0), with an optional pre-release and
/// build.
///
/// # Errors
///
/// [`PluginVersionError`] for anything else.
pub fn parse_reported_version(text: &str) -> Result<Version, PluginVersionError> {
    loose_version(text)
        .map(|(version, _)| version)
        .map_err(|reason| PluginVersionError {
            version: text.to_owned(),
            reason,
        })
}

/// Checks the version a plugin declares: a full semantic version
/// (`1.4.2`, `1.4.2-rc.1`), optionally written with a leading `v` as Vault
/// plugins do.
///
/// # Errors
///
/// [`PluginVersionError`] for anything else, `1.4` included.
pub fn parse_declared_version(text: &str) -> Result<Version, PluginVersionError> {
    let invalid = |reason: String| PluginVersionError {
        version: text.to_owned(),
        reason,
    };
    let bare = text.strip_prefix('v').unwrap_or(text);
    if bare.trim() != bare || bare.is_empty() {
        return Err(invalid(
            "write it as major.minor.patch without spaces, as 1.4.2".to_owned(),
        ));
    }
    Version::parse(bare)
        .map_err(|e| invalid(format!("{e}; write it as major.minor.patch, as 1.4.2")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    /// (constraint, versions that match, versions that do not).
    #[test]
    fn constraints_match_as_go_version_and_cargo_agree() {
        let cases: &[(&str, &[&str], &[&str])] = &[
            (
                ">=1.2, <2",
                &["1.2.0", "1.9.9"],
                &["1.1.9", "2.0.0", "1.5.0-beta"],
            ),
            (">= 1.2, < 2.0", &["1.2.0", "1.99.0"], &["2.0.0"]),
            (">=v1.2.0", &["1.2.0", "3.0.0"], &["1.1.0"]),
            (
                "=1.2.3",
                &["1.2.3", "1.2.3+build.5"],
                &["1.2.4", "1.2.3-rc.1"],
            ),
            (">1.2.3", &["1.2.4", "2.0.0"], &["1.2.3", "1.2.4-rc.1"]),
            ("<=1.2.3", &["1.2.3", "0.1.0"], &["1.2.4"]),
            ("<1.2", &["1.1.99"], &["1.2.0"]),
            (
                "~> 1.2",
                &["1.2.0", "1.9.0"],
                &["1.1.9", "2.0.0", "1.3.0-beta"],
            ),
            ("~>1.2.3", &["1.2.3", "1.2.99"], &["1.2.2", "1.3.0"]),
            ("~> 1", &["1.0.0", "7.3.1"], &["0.9.0"]),
            ("~> 0.2", &["0.2.0", "0.9.1"], &["0.1.9", "1.0.0"]),
            (
                "~> 1.2.3-beta",
                &["1.2.3-beta", "1.2.3-rc.1"],
                &["1.2.3-alpha", "1.2.3", "1.2.4", "1.2.4-rc.1"],
            ),
            (
                "!= 1.3.0",
                &["1.2.0", "1.4.0", "2.0.0-rc.1"],
                &["1.3.0", "1.3.0+b"],
            ),
            (">=1.0, != 1.3.0", &["1.2.0", "1.4.0"], &["1.3.0", "0.9.0"]),
            (
                ">= 1.2.0-beta",
                &["1.2.0-rc.1", "1.2.0", "1.5.0"],
                &["1.2.0-alpha", "1.5.0-rc.1"],
            ),
            ("^1.2", &["1.2.0", "1.9.0"], &["2.0.0", "1.1.0"]),
            ("^0.2", &["0.2.5"], &["0.3.0"]),
            ("~1.2", &["1.2.0", "1.2.9"], &["1.3.0"]),
            ("1.2.*", &["1.2.7"], &["1.3.0"]),
            ("1.x", &["1.8.0"], &["2.0.0"]),
            ("*", &["0.0.1", "99.0.0"], &["1.0.0-rc.1"]),
            (">=99.0.0", &["99.0.0"], &["0.1.0", "98.9.9"]),
        ];
        for (text, matching, other) in cases {
            let constraint =
                VersionConstraint::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(constraint.to_string(), text.trim(), "{text}");
            for version in *matching {
                assert!(
                    constraint.matches(&v(version)),
                    "{text} should match {version}"
                );
            }
            for version in *other {
                assert!(
                    !constraint.matches(&v(version)),
                    "{text} should not match {version}"
                );
            }
        }
    }

    /// (constraint, words the reason must contain).
    #[test]
    fn ambiguous_and_malformed_constraints_are_refused_with_the_fix() {
        let cases: &[(&str, &[&str])] = &[
            ("1.2", &["no operator", "\"=1.2.0\"", "\"^1.2\""]),
            ("v1.2.3", &["no operator", "\"=1.2.3\""]),
            ("=1.2", &["=1.2.0", "1.2.*"]),
            ("=1", &["=1.0.0", "1.*"]),
            (">1.2", &[">1.2.0", ">=1.3.0"]),
            (">1", &[">1.0.0", ">=2.0.0"]),
            ("<=1.2", &["<=1.2.0", "<1.3.0"]),
            ("", &["empty"]),
            (">=1.2,", &["empty"]),
            (">=", &["no version"]),
            (">= one", &["\"one\" is not a number"]),
            (">= 1.2.3.4", &["three"]),
            (">= 1.2.3-", &["pre-release"]),
            ("^x.y", &["^x.y"]),
            ("~> 18446744073709551615.1", &["too large"]),
        ];
        for (text, words) in cases {
            let e = VersionConstraint::parse(text).unwrap_err();
            assert_eq!(e.constraint, *text);
            let message = e.to_string();
            assert!(
                message.starts_with("invalid version constraint"),
                "{message}"
            );
            for word in *words {
                assert!(message.contains(word), "{text}: {message:?} lacks {word:?}");
            }
        }
    }

    #[test]
    fn a_cargo_requirement_keeps_its_cargo_meaning() {
        // Cargo's `=1.2` is 1.2.*, which the text form refuses as ambiguous.
        let constraint = VersionConstraint::from(VersionReq::parse("=1.2").unwrap());
        assert!(constraint.matches(&v("1.2.5")));
        assert_eq!(constraint.to_string(), "=1.2");
    }

    #[test]
    fn reported_versions_are_read_as_go_version_reads_them() {
        let cases = [
            ("1.4.2", Some("1.4.2")),
            ("v1.4.2", Some("1.4.2")),
            (" v1.4.2 ", Some("1.4.2")),
            ("1.4", Some("1.4.0")),
            ("2", Some("2.0.0")),
            ("1.4.2-rc.1+builtin", Some("1.4.2-rc.1+builtin")),
            ("", None),
            ("one", None),
            ("1.2.3.4", None),
            ("1.2.3-", None),
        ];
        for (text, want) in cases {
            let got = parse_reported_version(text).ok().map(|v| v.to_string());
            assert_eq!(got.as_deref(), want, "{text:?}");
        }
    }

    #[test]
    fn declared_versions_are_full_semantic_versions() {
        let cases = [
            ("1.4.2", true),
            ("v1.4.2", true),
            ("1.4.2-rc.1+git.abc", true),
            ("1.4", false),
            ("", false),
            ("v", false),
            (" 1.4.2", false),
            ("1.4.2 ", false),
            ("1.04.2", false),
            ("latest", false),
        ];
        for (text, ok) in cases {
            let result = parse_declared_version(text);
            assert_eq!(result.is_ok(), ok, "{text:?}: {result:?}");
            if let Err(e) = result {
                assert!(e.to_string().contains("1.4.2"), "{e}");
            }
        }
    }
}

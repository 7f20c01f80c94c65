//! Supply-chain floors, checked against the workspace `Cargo.lock` with no
//! network and no tools: std only (the lock file and the advisories are
//! parsed by hand).
//!
//! - [`KNOWN`]: the advisories that `shared/research/reliability.md` §2
//!   names for our stack, with their fixed versions. It includes the
//!   rust-yamux GHSAs that the RustSec database does not carry, so
//!   `cargo deny` alone would pass a vulnerable yamux.
//! - When the local RustSec snapshot exists (`../shared/advisory-db` beside
//!   the repository, as on the developers' machines and in CI), every locked
//!   crates.io package is checked against every advisory for it: affected
//!   unless its version matches a `patched` or `unaffected` requirement.
//!   Withdrawn advisories and informational ones (`unmaintained`, `unsound`,
//!   `notice`) are skipped there; `scripts/supply-chain.sh` (cargo-deny)
//!   reports those.
//! - The Go interop module (`interop/go/go.mod`) against the Go advisories
//!   §2 names.

use std::cmp::Ordering;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// One advisory, as RustSec spells it: a version is affected unless it
/// matches one of `patched` or `unaffected`.
struct Known {
    id: &'static str,
    krate: &'static str,
    patched: &'static [&'static str],
    unaffected: &'static [&'static str],
    what: &'static str,
}

/// reliability.md §2.1 and §2.3, crate by crate.
const KNOWN: &[Known] = &[
    // rust-yamux: in GitHub's database only, not in RustSec.
    Known {
        id: "GHSA-vxx9-2994-q338 / CVE-2026-32314",
        krate: "yamux",
        patched: &[">= 0.13.10"],
        unaffected: &[],
        what: "remote panic on an inbound Data|SYN frame larger than the initial window",
    },
    Known {
        id: "GHSA-4w32-2493-32g7 / CVE-2026-31814",
        krate: "yamux",
        patched: &[">= 0.13.9"],
        unaffected: &["< 0.13.0"],
        what: "remote panic (integer overflow) from crafted WindowUpdate credit",
    },
    Known {
        id: "GHSA-3999-5ffv-wp2r / CVE-2024-32984",
        krate: "yamux",
        patched: &[">= 0.13.2"],
        unaffected: &[],
        what: "unbounded pending_frames growth (remote memory exhaustion)",
    },
    Known {
        id: "RUSTSEC-2022-0084 / CVE-2022-23486",
        krate: "libp2p",
        patched: &[">= 0.45.1"],
        unaffected: &[],
        what: "no resource limits in libp2p's multiplexers (OOM)",
    },
    // HTTP/2 and gRPC.
    Known {
        id: "RUSTSEC-2023-0034 / CVE-2023-26964",
        krate: "h2",
        patched: &[">= 0.3.17"],
        unaffected: &[],
        what: "HEADERS + RST_STREAM flood grows the pending-accept queue",
    },
    Known {
        id: "RUSTSEC-2024-0003 / GHSA-8r5v-vm4m-4g25",
        krate: "h2",
        patched: &["^0.3.24", ">= 0.4.2"],
        unaffected: &[],
        what: "resets queued behind a closed window (reset flood)",
    },
    Known {
        id: "RUSTSEC-2024-0332 / GHSA-q6cp-qfwq-4gcv",
        krate: "h2",
        patched: &["^0.3.26", ">= 0.4.4"],
        unaffected: &[],
        what: "CONTINUATION frame flood",
    },
    Known {
        id: "RUSTSEC-2026-0258 / GHSA-q83h-524g-xf6h",
        krate: "h2",
        patched: &[">= 0.4.16"],
        unaffected: &[],
        what: "empty DATA frames queue without limit",
    },
    Known {
        id: "RUSTSEC-2021-0078",
        krate: "hyper",
        patched: &[">= 0.14.10"],
        unaffected: &[],
        what: "lenient HTTP/1 Content-Length parsing",
    },
    Known {
        id: "RUSTSEC-2021-0079",
        krate: "hyper",
        patched: &[">= 0.14.10"],
        unaffected: &[],
        what: "HTTP/1 chunk-size integer overflow",
    },
    Known {
        id: "RUSTSEC-2024-0376 / CVE-2024-47609",
        krate: "tonic",
        patched: &[">= 0.12.3"],
        unaffected: &["< 0.12.2"],
        what: "an accept error stops tonic::transport::Server",
    },
    // TLS.
    Known {
        id: "RUSTSEC-2024-0336 / CVE-2024-32650",
        krate: "rustls",
        patched: &[">= 0.23.5", ">= 0.22.4, < 0.23.0", ">= 0.21.11, < 0.22.0"],
        unaffected: &[],
        what: "complete_io loops forever on close_notify during the handshake",
    },
    Known {
        id: "RUSTSEC-2024-0399 / CVE-2024-11738",
        krate: "rustls",
        patched: &[">= 0.23.18"],
        unaffected: &[">= 0.23, < 0.23.13", "< 0.23"],
        what: "panic in Acceptor::accept on a fragmented ClientHello",
    },
    Known {
        id: "RUSTSEC-2026-0285 / GHSA-2mjx-qc3c-rqvc",
        krate: "rustls",
        patched: &[">= 0.23.45"],
        unaffected: &[],
        what: "TLS 1.3 handshake messages accepted across encryption levels",
    },
    Known {
        id: "RUSTSEC-2023-0053",
        krate: "rustls-webpki",
        patched: &[">= 0.100.2, < 0.101.0", ">= 0.101.4"],
        unaffected: &[],
        what: "CPU denial of service in certificate path building",
    },
    Known {
        id: "RUSTSEC-2026-0104",
        krate: "rustls-webpki",
        patched: &[">= 0.103.13, < 0.104.0-alpha.1", ">= 0.104.0-alpha.7"],
        unaffected: &[],
        what: "panic when parsing a CRL",
    },
    Known {
        id: "RUSTSEC-2026-0044",
        krate: "aws-lc-sys",
        patched: &[">= 0.39.0"],
        unaffected: &["< 0.32.0"],
        what: "name constraints bypass",
    },
    Known {
        id: "RUSTSEC-2026-0045",
        krate: "aws-lc-sys",
        patched: &[">= 0.38.0"],
        unaffected: &["< 0.14.0"],
        what: "AES-CCM timing side channel",
    },
    Known {
        id: "RUSTSEC-2026-0046",
        krate: "aws-lc-sys",
        patched: &[">= 0.38.0"],
        unaffected: &["< 0.24.0"],
        what: "PKCS7 verification flaw",
    },
    Known {
        id: "RUSTSEC-2026-0047",
        krate: "aws-lc-sys",
        patched: &[">= 0.38.0"],
        unaffected: &["< 0.24.0"],
        what: "PKCS7 verification flaw",
    },
    Known {
        id: "RUSTSEC-2026-0048",
        krate: "aws-lc-sys",
        patched: &[">= 0.39.0"],
        unaffected: &["< 0.15.0"],
        what: "CRL scope check",
    },
    // tokio: not on our path, but cheap to hold the floor.
    Known {
        id: "RUSTSEC-2025-0023",
        krate: "tokio",
        patched: &[
            ">= 1.38.2, < 1.39.0",
            ">= 1.42.1, < 1.43.0",
            ">= 1.43.1, < 1.44.0",
            ">= 1.44.2",
        ],
        unaffected: &["< 0.2.5"],
        what: "broadcast channel unsound with non-Sync clones",
    },
    Known {
        id: "RUSTSEC-2023-0001",
        krate: "tokio",
        patched: &[">= 1.18.4, < 1.19.0", ">= 1.20.3, < 1.21.0", ">= 1.23.1"],
        unaffected: &["< 1.7.0"],
        what: "Windows named pipe server options ignored",
    },
];

/// Go modules of the interop peers: (module, fixed version, advisory).
const KNOWN_GO: &[(&str, &str, &str)] = &[
    (
        "google.golang.org/grpc",
        "1.79.3",
        "GHSA-p77j-4mvh-x3m3 / CVE-2026-33186 (:path without a leading slash bypasses authorization)",
    ),
    (
        "google.golang.org/grpc",
        "1.58.3",
        "GHSA-m425-mq94-257g / CVE-2023-44487 (HTTP/2 rapid reset)",
    ),
    (
        "golang.org/x/net",
        "0.23.0",
        "GO-2024-2687 / CVE-2023-45288 (HTTP/2 CONTINUATION flood)",
    ),
];

#[test]
fn locked_crates_are_past_the_known_advisories() {
    let packages = locked_packages();
    let mut findings = Vec::new();
    for known in KNOWN {
        let patched = parse_reqs(known.patched);
        let unaffected = parse_reqs(known.unaffected);
        for package in packages.iter().filter(|p| p.name == known.krate) {
            if is_affected(&package.version, &patched, &unaffected) {
                findings.push(format!(
                    "{id}: {name} {version} is affected ({what}); fix: upgrade to {fix} \
                     (cargo update -p {name})",
                    id = known.id,
                    name = package.name,
                    version = package.version,
                    what = known.what,
                    fix = known.patched.join(" or "),
                ));
            }
        }
    }
    report(
        "Cargo.lock has crates at versions reliability.md §2 lists as vulnerable",
        &findings,
    );
}

#[test]
fn locked_crates_are_past_the_local_rustsec_advisories() {
    let db = advisory_db_dir();
    if !db.join("crates").is_dir() {
        eprintln!(
            "SKIPPED: no local advisory database at {} (only the hand-written floors were checked)",
            db.display()
        );
        return;
    }
    let advisories = load_advisories(&db);
    let packages = locked_packages();
    let mut findings = Vec::new();
    for advisory in &advisories {
        if advisory.withdrawn || advisory.informational.is_some() {
            continue;
        }
        for package in packages
            .iter()
            .filter(|p| p.name == advisory.package && p.from_registry)
        {
            if is_affected(&package.version, &advisory.patched, &advisory.unaffected) {
                let fix = if advisory.patched_text.is_empty() {
                    "no patched version: remove the dependency".to_owned()
                } else {
                    format!(
                        "upgrade to {} (cargo update -p {})",
                        advisory.patched_text.join(" or "),
                        package.name
                    )
                };
                findings.push(format!(
                    "{id}: {name} {version} is affected ({title}); fix: {fix}",
                    id = advisory.id,
                    name = package.name,
                    version = package.version,
                    title = advisory.title,
                ));
            }
        }
    }
    report(
        &format!(
            "Cargo.lock has crates affected by advisories in {}",
            db.display()
        ),
        &findings,
    );
}

#[test]
fn go_interop_modules_are_past_the_known_advisories() {
    let go_mod = workspace_root().join("interop/go/go.mod");
    let Ok(text) = fs::read_to_string(&go_mod) else {
        eprintln!("SKIPPED: no {}", go_mod.display());
        return;
    };
    let mut findings = Vec::new();
    for (module, fixed, id) in KNOWN_GO {
        let fixed = Version::parse(fixed).expect("a valid fixed version");
        for (name, version) in go_requirements(&text) {
            if name != *module {
                continue;
            }
            match Version::parse(version.trim_start_matches('v')) {
                Some(found) if found >= fixed => {}
                _ => findings.push(format!(
                    "{id}: {name} {version} in interop/go/go.mod; fix: require v{fixed} or later"
                )),
            }
        }
    }
    report("interop/go/go.mod requires vulnerable modules", &findings);
}

/// Guards the checks above against passing vacuously.
#[test]
fn the_lock_file_parser_sees_the_whole_tree() {
    let packages = locked_packages();
    assert!(
        packages.len() >= 100,
        "only {} packages parsed from Cargo.lock",
        packages.len()
    );
    for name in ["tokio", "h2", "rustls", "tonic", "goplug"] {
        assert!(
            packages.iter().any(|p| p.name == name),
            "{name} not found in Cargo.lock"
        );
    }
    assert!(
        packages
            .iter()
            .any(|p| p.name == "goplug" && !p.from_registry)
    );
    assert!(
        packages
            .iter()
            .any(|p| p.name == "tokio" && p.from_registry)
    );
}

#[test]
fn the_advisory_parser_reads_the_local_database() {
    let db = advisory_db_dir();
    if !db.join("crates").is_dir() {
        eprintln!("SKIPPED: no local advisory database at {}", db.display());
        return;
    }
    let advisories = load_advisories(&db);
    assert!(
        advisories.len() >= 500,
        "only {} advisories parsed",
        advisories.len()
    );
    let reset_flood = advisories
        .iter()
        .find(|a| a.id == "RUSTSEC-2024-0003")
        .expect("RUSTSEC-2024-0003 (h2) in the database");
    assert_eq!(reset_flood.package, "h2");
    let affected = |v: &str| {
        is_affected(
            &Version::parse(v).unwrap(),
            &reset_flood.patched,
            &reset_flood.unaffected,
        )
    };
    assert!(affected("0.3.23") && affected("0.4.1"));
    assert!(!affected("0.3.24") && !affected("0.3.26") && !affected("0.4.20"));
    assert!(advisories.iter().any(|a| a.withdrawn));
    assert!(
        advisories
            .iter()
            .any(|a| a.informational.as_deref() == Some("unmaintained"))
    );
}

#[test]
fn requirements_match_like_semver() {
    let matches = |req: &str, version: &str| {
        Req::parse(req)
            .unwrap_or_else(|| panic!("bad requirement {req:?}"))
            .matches(&Version::parse(version).unwrap())
    };
    assert!(matches(">= 0.13.10", "0.13.10") && matches(">= 0.13.10", "0.14.0"));
    assert!(!matches(">= 0.13.10", "0.13.9") && !matches(">= 0.13.10", "0.12.6"));
    assert!(matches(">=0.4.2", "0.4.2") && matches("< 0.23", "0.22.9"));
    assert!(!matches("< 0.23", "0.23.0"));
    assert!(matches(">= 0.23, < 0.23.13", "0.23.12") && !matches(">= 0.23, < 0.23.13", "0.23.13"));
    assert!(matches("^0.3.24", "0.3.30") && !matches("^0.3.24", "0.4.0"));
    assert!(!matches("^0.3.24", "0.3.23"));
    assert!(matches("^1.2", "1.9.0") && !matches("^1.2", "2.0.0"));
    assert!(matches("^0.0.3", "0.0.3") && !matches("^0.0.3", "0.0.4"));
    assert!(
        matches("0.3.1", "0.3.5"),
        "a bare version is a caret requirement"
    );
    assert!(matches("=0.3", "0.3.7") && !matches("=0.3.1", "0.3.2"));
    assert!(matches("> 0.2", "0.3.0") && !matches("> 0.2", "0.2.9"));
    assert!(matches("<= 0.2", "0.2.9") && !matches("<= 0.2", "0.3.0"));
    assert!(matches("~1.2.3", "1.2.9") && !matches("~1.2.3", "1.3.0"));
    assert!(matches("*", "7.0.0"));
    assert!(matches("< 0.104.0-alpha.1", "0.103.17"));
    assert!(matches(">= 0.104.0-alpha.7", "0.104.0-alpha.10"));
    assert!(!matches(">= 0.104.0-alpha.7", "0.104.0-alpha.6"));
    assert!(Version::parse("1.0.0-alpha").unwrap() < Version::parse("1.0.0").unwrap());
    assert!(
        Version::parse("0.11.1+wasi-snapshot-preview1").unwrap()
            == Version::parse("0.11.1").unwrap()
    );
    // An advisory with neither list affects every version.
    assert!(is_affected(&Version::parse("9.9.9").unwrap(), &[], &[]));
}

#[track_caller]
fn report(title: &str, findings: &[String]) {
    assert!(
        findings.is_empty(),
        "{title}:\n  {}\n",
        findings.join("\n  ")
    );
}

// ---------------------------------------------------------------- paths

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("goplug-test sits in the workspace root")
        .to_path_buf()
}

/// `GOPLUG_ADVISORY_DB` when set, else `../shared/advisory-db` beside the
/// repository.
fn advisory_db_dir() -> PathBuf {
    match std::env::var_os("GOPLUG_ADVISORY_DB") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("../shared/advisory-db"),
    }
}

// ------------------------------------------------------------ Cargo.lock

struct Package {
    name: String,
    version: Version,
    /// From crates.io (or another registry), not a path crate.
    from_registry: bool,
}

/// The `[[package]]` entries: their `name`, `version` and `source` lines.
fn locked_packages() -> Vec<Package> {
    let path = workspace_root().join("Cargo.lock");
    let text =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut packages = Vec::new();
    let mut current: Option<(String, String, bool)> = None;
    let mut flush = |current: &mut Option<(String, String, bool)>| {
        if let Some((name, version, from_registry)) = current.take() {
            let parsed = Version::parse(&version).unwrap_or_else(|| {
                panic!("Cargo.lock: {name} has an unparsable version {version:?}")
            });
            assert!(!name.is_empty(), "Cargo.lock: a package without a name");
            packages.push(Package {
                name,
                version: parsed,
                from_registry,
            });
        }
    };
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            flush(&mut current);
            if line == "[[package]]" {
                current = Some((String::new(), String::new(), false));
            }
            continue;
        }
        let Some(entry) = current.as_mut() else {
            continue;
        };
        if let Some(value) = string_value(line, "name") {
            entry.0 = value;
        } else if let Some(value) = string_value(line, "version") {
            entry.1 = value;
        } else if let Some(value) = string_value(line, "source") {
            entry.2 = value.starts_with("registry+") || value.starts_with("sparse+");
        }
    }
    flush(&mut current);
    packages
}

/// `key = "value"` → `value`.
fn string_value(line: &str, key: &str) -> Option<String> {
    let rest = line.strip_prefix(key)?.trim_start().strip_prefix('=')?;
    first_quoted(rest).map(str::to_owned)
}

fn first_quoted(text: &str) -> Option<&str> {
    let start = text.find('"')? + 1;
    let len = text[start..].find('"')?;
    Some(&text[start..start + len])
}

fn all_quoted(text: &str) -> Vec<String> {
    text.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

// ------------------------------------------------------------ advisories

struct Advisory {
    id: String,
    package: String,
    title: String,
    withdrawn: bool,
    informational: Option<String>,
    patched_text: Vec<String>,
    patched: Vec<Req>,
    unaffected: Vec<Req>,
}

fn load_advisories(db: &Path) -> Vec<Advisory> {
    let mut files = Vec::new();
    collect_markdown(&db.join("crates"), &mut files);
    files.sort();
    files
        .iter()
        .map(|file| {
            let text = fs::read_to_string(file)
                .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
            parse_advisory(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        })
        .collect()
}

fn collect_markdown(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            collect_markdown(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "md") {
            out.push(path);
        }
    }
}

/// The TOML front matter between "```toml" and "```": the keys of
/// `[advisory]` and `[versions]` this test needs, arrays possibly spread
/// over several lines.
fn parse_advisory(text: &str) -> Result<Advisory, String> {
    let (body, markdown) = text
        .split_once("```toml")
        .and_then(|(_, rest)| rest.split_once("```"))
        .ok_or("no ```toml front matter")?;
    let mut section = String::new();
    let mut advisory = Advisory {
        id: String::new(),
        package: String::new(),
        // The title is the Markdown heading after the front matter.
        title: markdown
            .lines()
            .find_map(|line| line.strip_prefix("# "))
            .unwrap_or("")
            .trim()
            .to_owned(),
        withdrawn: false,
        informational: None,
        patched_text: Vec::new(),
        patched: Vec::new(),
        unaffected: Vec::new(),
    };
    let mut lines = body.lines().map(strip_comment);
    while let Some(line) = lines.next() {
        if line.starts_with('[') && !line.contains('=') {
            section = line.trim_matches(['[', ']']).trim().to_owned();
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let (key, mut value) = (key.trim(), value.trim().to_owned());
        if value.starts_with('[') {
            while !closes_array(&value) {
                let next = lines
                    .next()
                    .ok_or_else(|| format!("unterminated array for {key}"))?;
                value.push(' ');
                value.push_str(next);
            }
        }
        match (section.as_str(), key) {
            ("advisory", "id") => advisory.id = first_quoted(&value).unwrap_or("").to_owned(),
            ("advisory", "package") => {
                advisory.package = first_quoted(&value).unwrap_or("").to_owned();
            }
            ("advisory", "withdrawn") => advisory.withdrawn = true,
            ("advisory", "informational") => {
                advisory.informational = first_quoted(&value).map(str::to_owned);
            }
            ("versions", "patched") => {
                advisory.patched_text = all_quoted(&value);
                advisory.patched = reqs_or_err(&advisory.patched_text)?;
            }
            ("versions", "unaffected") => {
                advisory.unaffected = reqs_or_err(&all_quoted(&value))?;
            }
            _ => {}
        }
    }
    if advisory.id.is_empty() || advisory.package.is_empty() {
        return Err("no [advisory] id or package".to_owned());
    }
    Ok(advisory)
}

/// The line without a trailing `# comment` (outside quotes), trimmed.
fn strip_comment(line: &str) -> &str {
    let mut quoted = false;
    for (at, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' if !quoted => return line[..at].trim(),
            _ => {}
        }
    }
    line.trim()
}

/// Whether an array value is complete: a `]` outside quotes (quoted
/// requirements never contain one).
fn closes_array(value: &str) -> bool {
    let mut quoted = false;
    for c in value.chars() {
        match c {
            '"' => quoted = !quoted,
            ']' if !quoted => return true,
            _ => {}
        }
    }
    false
}

fn reqs_or_err(texts: &[String]) -> Result<Vec<Req>, String> {
    texts
        .iter()
        .map(|t| Req::parse(t).ok_or_else(|| format!("unsupported version requirement {t:?}")))
        .collect()
}

fn parse_reqs(texts: &[&str]) -> Vec<Req> {
    texts
        .iter()
        .map(|t| Req::parse(t).unwrap_or_else(|| panic!("bad requirement {t:?} in KNOWN")))
        .collect()
}

/// RustSec's rule: affected unless some `patched` or `unaffected`
/// requirement matches.
fn is_affected(version: &Version, patched: &[Req], unaffected: &[Req]) -> bool {
    !patched
        .iter()
        .chain(unaffected)
        .any(|req| req.matches(version))
}

// ------------------------------------------------------------ go.mod

/// `module vX.Y.Z` lines of `require` blocks and single `require` lines.
fn go_requirements(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut in_block = false;
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or("").trim();
        if line == "require (" {
            in_block = true;
            continue;
        }
        if in_block && line == ")" {
            in_block = false;
            continue;
        }
        let spec = if in_block {
            line
        } else if let Some(rest) = line.strip_prefix("require ") {
            rest.trim()
        } else {
            continue;
        };
        let mut parts = spec.split_whitespace();
        if let (Some(module), Some(version)) = (parts.next(), parts.next()) {
            out.push((module.to_owned(), version.to_owned()));
        }
    }
    out
}

// ------------------------------------------------------------ semver

/// A semver version; build metadata is dropped (it does not order).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Version {
    major: u64,
    minor: u64,
    patch: u64,
    pre: Vec<String>,
}

impl Version {
    fn parse(text: &str) -> Option<Version> {
        let text = text.trim();
        let text = text.split_once('+').map_or(text, |(v, _)| v);
        let (core, pre) = match text.split_once('-') {
            Some((core, pre)) => (core, pre.split('.').map(str::to_owned).collect()),
            None => (text, Vec::new()),
        };
        let mut numbers = core.split('.').map(|n| n.parse::<u64>().ok());
        let version = Version {
            major: numbers.next()??,
            minor: numbers.next()??,
            patch: numbers.next()??,
            pre,
        };
        numbers.next().is_none().then_some(version)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => compare_pre(&self.pre, &other.pre),
            })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre.join("."))?;
        }
        Ok(())
    }
}

/// Semver's pre-release order: numeric identifiers numerically and below
/// alphanumeric ones, then the longer list wins.
fn compare_pre(a: &[String], b: &[String]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let order = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            (Ok(_), Err(_)) => Ordering::Less,
            (Err(_), Ok(_)) => Ordering::Greater,
            (Err(_), Err(_)) => x.cmp(y),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

/// A requirement: comparators that must all hold (`>= 1.2, < 1.5`), each
/// reduced to `>=`/`<` bounds the way Cargo's semver reads them.
#[derive(Debug)]
struct Req {
    bounds: Vec<Bounds>,
}

impl Req {
    fn parse(text: &str) -> Option<Req> {
        let bounds = text
            .split(',')
            .map(|part| comparator(part.trim()))
            .collect::<Option<Vec<_>>>()?;
        (!bounds.is_empty()).then_some(Req { bounds })
    }

    fn matches(&self, version: &Version) -> bool {
        self.bounds.iter().all(|(low, high)| {
            low.as_ref().is_none_or(|low| version >= low)
                && high.as_ref().is_none_or(|high| version < high)
        })
    }
}

/// (lower bound inclusive, upper bound exclusive); `None` is unbounded.
type Bounds = (Option<Version>, Option<Version>);

/// One comparator (`>= 1.2.3`, `<1.4`, `^0.3`, `=0.2`, `~1.2`, `1.2.3`,
/// `*`) as half-open bounds; partial versions as Cargo reads them.
fn comparator(text: &str) -> Option<Bounds> {
    if text == "*" {
        return Some((None, None));
    }
    let ops = [">=", "<=", ">", "<", "=", "^", "~"];
    let (op, rest) = ops
        .iter()
        .find_map(|op| text.strip_prefix(op).map(|rest| (*op, rest.trim())))
        .unwrap_or(("^", text));
    let partial = Partial::parse(rest)?;
    let low = partial.floor();
    Some(match op {
        ">=" => (Some(low), None),
        "<" => (None, Some(low)),
        ">" => (Some(partial.next_after()), None),
        "<=" => (None, Some(partial.next_after())),
        "=" => (Some(low), Some(partial.next_after())),
        "~" => (Some(low), Some(partial.tilde_ceiling())),
        _ => (Some(low), Some(partial.caret_ceiling())),
    })
}

/// A version that may stop after the major or minor number.
struct Partial {
    major: u64,
    minor: Option<u64>,
    patch: Option<u64>,
    pre: Vec<String>,
}

impl Partial {
    fn parse(text: &str) -> Option<Partial> {
        let text = text.trim().trim_end_matches(".*");
        let (core, pre) = match text.split_once('-') {
            Some((core, pre)) => (core, pre.split('.').map(str::to_owned).collect()),
            None => (text, Vec::new()),
        };
        let mut numbers = core.split('.');
        let major = numbers.next()?.parse().ok()?;
        let minor = numbers.next().map(str::parse).transpose().ok()?;
        let patch = numbers.next().map(str::parse).transpose().ok()?;
        if numbers.next().is_some() || (patch.is_none() && !pre.is_empty()) {
            return None;
        }
        Some(Partial {
            major,
            minor,
            patch,
            pre,
        })
    }

    fn version(major: u64, minor: u64, patch: u64) -> Version {
        Version {
            major,
            minor,
            patch,
            pre: Vec::new(),
        }
    }

    /// The lowest version the partial names.
    fn floor(&self) -> Version {
        Version {
            pre: self.pre.clone(),
            ..Self::version(self.major, self.minor.unwrap_or(0), self.patch.unwrap_or(0))
        }
    }

    /// The lowest version above everything the partial names.
    fn next_after(&self) -> Version {
        match (self.minor, self.patch) {
            (None, _) => Self::version(self.major + 1, 0, 0),
            (Some(minor), None) => Self::version(self.major, minor + 1, 0),
            (Some(minor), Some(patch)) if self.pre.is_empty() => {
                Self::version(self.major, minor, patch + 1)
            }
            // `> 1.2.3-alpha`: the next pre-release identifier up.
            (Some(minor), Some(patch)) => {
                let mut pre = self.pre.clone();
                pre.push("0".to_owned());
                Version {
                    pre,
                    ..Self::version(self.major, minor, patch)
                }
            }
        }
    }

    fn caret_ceiling(&self) -> Version {
        match (self.major, self.minor, self.patch) {
            (0, None, _) => Self::version(1, 0, 0),
            (0, Some(0), None) => Self::version(0, 1, 0),
            (0, Some(0), Some(patch)) => Self::version(0, 0, patch + 1),
            (0, Some(minor), _) => Self::version(0, minor + 1, 0),
            (major, _, _) => Self::version(major + 1, 0, 0),
        }
    }

    fn tilde_ceiling(&self) -> Version {
        match self.minor {
            None => Self::version(self.major + 1, 0, 0),
            Some(minor) => Self::version(self.major, minor + 1, 0),
        }
    }
}

//! Telling a log line from other stdout noise: a plugin whose logger
//! writes to stdout breaks the handshake, and the fix (log to stderr) is
//! not the fix for a stray `println!`. Pure code, tested by a table.

/// Level words loggers print, upper case as `tracing`, `log` and hclog do.
const LEVELS: [&str; 7] = [
    "TRACE", "DEBUG", "INFO", "WARN", "WARNING", "ERROR", "FATAL",
];

/// Whether `line`, a plugin's first stdout line, looks like a log line:
/// ANSI escape codes, a leading RFC 3339 timestamp or level word, hclog's
/// `[INFO]`, or a JSON object with a level.
pub fn looks_like_log(line: &str) -> bool {
    let line = line.trim();
    if line.contains("\x1b[") {
        return true;
    }
    if line.starts_with('{') {
        return serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(line)
            .is_ok_and(|object| object.contains_key("@level") || object.contains_key("level"));
    }
    // env_logger puts the timestamp inside brackets: `[2026-… INFO  app] …`.
    let rest = line.strip_prefix('[').unwrap_or(line);
    if starts_with_timestamp(rest) {
        return true;
    }
    starts_with_level(line)
}

/// `YYYY-MM-DDThh:mm` (or a space instead of the `T`).
fn starts_with_timestamp(text: &str) -> bool {
    let bytes = text.as_bytes();
    let pattern = b"dddd-dd-ddTdd:dd";
    bytes.len() >= pattern.len()
        && pattern.iter().zip(bytes).all(|(want, got)| match want {
            b'd' => got.is_ascii_digit(),
            b'T' => matches!(got, b'T' | b' '),
            other => other == got,
        })
}

/// A level word alone (`INFO msg`, `ERROR: msg`) or in hclog's brackets
/// (`[INFO]  msg`, `[WARN ] msg`).
fn starts_with_level(line: &str) -> bool {
    let (word, bracketed) = match line.strip_prefix('[') {
        Some(rest) => (rest, true),
        None => (line, false),
    };
    LEVELS.iter().any(|level| {
        word.strip_prefix(level).is_some_and(|after| {
            let next = after.chars().next();
            if bracketed {
                after.trim_start_matches(' ').starts_with(']')
            } else {
                next.is_none_or(|c| c == ' ' || c == ':' || c == '\t')
            }
        })
    })
}

/// `line` without ANSI escape sequences (`ESC [ … letter`), for quoting.
pub fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            // Parameters and intermediates up to the final byte (@ to ~).
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_are_recognised() {
        let cases: &[(&str, bool)] = &[
            // tracing_subscriber::fmt() with colours, and without.
            (
                "\x1b[2m2026-12-02T18:08:17.541481Z\x1b[0m \x1b[32m INFO\x1b[0m greeter: starting",
                true,
            ),
            ("2026-12-02T18:08:17.541481Z  INFO greeter: starting", true),
            ("2026-12-02 18:08:17,541 INFO starting", true),
            // env_logger.
            ("[2026-12-02T18:08:17Z INFO  greeter] starting", true),
            // hclog text, with and without a timestamp.
            ("2026-12-02T18:08:17.541Z [INFO]  plugin: starting", true),
            ("[INFO]  plugin: starting", true),
            ("[WARN ] low disk", true),
            ("INFO starting", true),
            ("ERROR: no config", true),
            ("WARN", true),
            ("TRACE\tx", true),
            // JSON loggers: hclog's and tracing's.
            (r#"{"@level":"info","@message":"starting"}"#, true),
            (r#"{"timestamp":"x","level":"INFO","fields":{}}"#, true),
            // Not logs: a handshake, plain text, near misses.
            ("1|1|unix|/tmp/plugin.sock|grpc|", false),
            ("greeter plugin: starting up", false),
            ("INFORMATION follows", false),
            ("Errors: none", false),
            ("[INFORMATION]", false),
            (r#"{"status":"ok"}"#, false),
            ("{not json", false),
            ("2026 was a good year", false),
            ("", false),
        ];
        for (line, want) in cases {
            assert_eq!(looks_like_log(line), *want, "{line:?}");
        }
    }

    #[test]
    fn ansi_codes_are_stripped_for_quoting() {
        let cases: &[(&str, &str)] = &[
            (
                "\x1b[2m2026-12-02T18:08:17Z\x1b[0m \x1b[32m INFO\x1b[0m hi",
                "2026-12-02T18:08:17Z  INFO hi",
            ),
            ("\x1b[1;31mred\x1b[m", "red"),
            ("plain", "plain"),
            // A lone ESC is not a sequence: kept.
            ("a\x1bb", "a\x1bb"),
            // Cut off mid-sequence: the rest is dropped.
            ("x\x1b[38;5", "x"),
        ];
        for (line, want) in cases {
            assert_eq!(strip_ansi(line), *want, "{line:?}");
        }
    }
}

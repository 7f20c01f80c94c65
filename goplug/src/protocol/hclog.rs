//! hclog's JSON line format, both ways: the line a plugin writes for each
//! log event, and how go-plugin's host reads a plugin's stderr lines
//! (`logStderr`). Pure: strings in, values out.

use std::fmt::Write as _;

/// A log level, as hclog names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// `trace`
    Trace,
    /// `debug`
    Debug,
    /// `info`
    Info,
    /// `warn`
    Warn,
    /// `error`
    Error,
}

impl LogLevel {
    /// hclog's lowercase name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }

    /// hclog's `LevelFromString`: trimmed, case-insensitive; `off` and
    /// anything unknown are not a level.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "trace" => Some(Self::Trace),
            "debug" => Some(Self::Debug),
            "info" => Some(Self::Info),
            "warn" => Some(Self::Warn),
            "error" => Some(Self::Error),
            _ => None,
        }
    }
}

/// hclog's JSON timestamp: `2006-01-02T15:04:05.000000Z07:00`, in UTC.
pub fn timestamp(now: time::OffsetDateTime) -> String {
    let now = now.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.microsecond()
    )
}

/// One hclog JSON line (without the newline).
pub fn format_entry(
    level: LogLevel,
    message: &str,
    module: Option<&str>,
    timestamp: &str,
    fields: &serde_json::Map<String, serde_json::Value>,
) -> String {
    let mut map = serde_json::Map::new();
    map.insert("@level".to_owned(), level.as_str().into());
    map.insert("@message".to_owned(), message.into());
    if let Some(module) = module {
        map.insert("@module".to_owned(), module.into());
    }
    map.insert("@timestamp".to_owned(), timestamp.into());
    for (key, value) in fields {
        // hclog's own keys win; a user field cannot forge them.
        if !key.starts_with('@') {
            map.insert(key.clone(), value.clone());
        }
    }
    serde_json::Value::Object(map).to_string()
}

/// A plugin stderr line as go-plugin's host interprets it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// The level it is logged at.
    pub level: LogLevel,
    /// The message (for text lines: the whole line).
    pub message: String,
    /// Key/values of a JSON entry, `@module` and `@caller` included, values
    /// as hclog prints them (strings bare, anything else as JSON).
    pub fields: Vec<(String, String)>,
    /// The entry's `@timestamp`, when it had one.
    pub timestamp: Option<String>,
    /// Whether the line was an hclog JSON entry.
    pub structured: bool,
}

impl LogRecord {
    fn text(level: LogLevel, line: &str) -> Self {
        Self {
            level,
            message: line.to_owned(),
            fields: Vec::new(),
            timestamp: None,
            structured: false,
        }
    }

    /// The key/values as `k=v k2=v2`, as hclog's text output shows them.
    pub fn fields_text(&self) -> String {
        self.fields_text_without("")
    }

    /// [`fields_text`](Self::fields_text) without the field `skip` (such
    /// as `@module`, when it is shown apart).
    pub fn fields_text_without(&self, skip: &str) -> String {
        let mut text = String::new();
        for (key, value) in self.fields.iter().filter(|(key, _)| key != skip) {
            if !text.is_empty() {
                text.push(' ');
            }
            let _ = write!(text, "{key}={value}");
        }
        text
    }

    /// The entry's `@module`, if it had one.
    pub fn module(&self) -> Option<&str> {
        self.fields
            .iter()
            .find(|(key, _)| key == "@module")
            .map(|(_, value)| value.as_str())
    }

    /// The message without the `[WARN]`-style prefix that gave a text
    /// line its level (the level says it already).
    pub fn message_without_level(&self) -> &str {
        if self.structured {
            return &self.message;
        }
        LEVEL_PREFIXES
            .iter()
            .find_map(|(prefix, _)| self.message.strip_prefix(prefix))
            .map_or(&self.message, str::trim_start)
    }
}

/// The prefixes that give a text line its level, as go-plugin's host reads
/// them.
const LEVEL_PREFIXES: [(&str, LogLevel); 5] = [
    ("[TRACE]", LogLevel::Trace),
    ("[DEBUG]", LogLevel::Debug),
    ("[INFO]", LogLevel::Info),
    ("[WARN]", LogLevel::Warn),
    ("[ERROR]", LogLevel::Error),
];

/// Reads plugin stderr lines as go-plugin's host does (`logStderr`):
/// hclog JSON entries at their level; other lines at debug, or at the
/// level of a `[TRACE]`..`[ERROR]` prefix; `panic: `, `fatal error: ` and
/// a Rust panic's `thread '…' panicked at`
/// at error, and every later unprefixed text line too (go-plugin ≥ 1.7),
/// so a stack trace stays together. Never fails on any input.
#[derive(Debug, Default)]
pub struct StderrParser {
    in_panic: bool,
}

impl StderrParser {
    /// A parser at the start of a plugin's stderr.
    pub fn new() -> Self {
        Self::default()
    }

    /// Interprets one line (without its newline; a trailing `\r` is dropped).
    pub fn parse(&mut self, line: &str) -> LogRecord {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some(record) = parse_json(line) {
            return record;
        }
        if let Some((_, level)) = LEVEL_PREFIXES
            .iter()
            .find(|(prefix, _)| line.starts_with(prefix))
        {
            return LogRecord::text(*level, line);
        }
        if line.starts_with("panic: ") || line.starts_with("fatal error: ") || is_rust_panic(line) {
            self.in_panic = true;
            return LogRecord::text(LogLevel::Error, line);
        }
        let level = if self.in_panic {
            LogLevel::Error
        } else {
            LogLevel::Debug
        };
        LogRecord::text(level, line)
    }
}

/// The first line of a Rust panic (`thread 'main' panicked at src/main.rs:2:5:`,
/// since Rust 1.91 `thread 'main' (1234) panicked at …`): a Rust plugin's
/// crash must be as visible as a Go plugin's `panic: `.
fn is_rust_panic(line: &str) -> bool {
    let Some((_, after)) = line
        .strip_prefix("thread '")
        .and_then(|rest| rest.split_once("' "))
    else {
        return false;
    };
    let after = after
        .strip_prefix('(')
        .and_then(|id| id.split_once(") "))
        .map_or(after, |(_, after)| after);
    after.starts_with("panicked at ")
}

/// An hclog JSON entry, or `None` when go-plugin would treat the line as
/// text. Unlike go-plugin, non-string `@message`/`@level`/`@timestamp`
/// values make the line text instead of crashing the host.
fn parse_json(line: &str) -> Option<LogRecord> {
    let trimmed = line.trim_start();
    if !trimmed.starts_with('{') {
        return None;
    }
    let serde_json::Value::Object(map) = serde_json::from_str::<serde_json::Value>(trimmed).ok()?
    else {
        return None;
    };
    let text_field = |key: &str| match map.get(key) {
        None => Some(None),
        Some(serde_json::Value::String(text)) => Some(Some(text.clone())),
        Some(_) => None,
    };
    let message = text_field("@message")?.unwrap_or_default();
    let level_text = text_field("@level")?.unwrap_or_default();
    let timestamp = text_field("@timestamp")?;
    if timestamp
        .as_deref()
        .is_some_and(|stamp| !valid_timestamp(stamp))
    {
        return None;
    }
    let Some(level) = LogLevel::parse(&level_text) else {
        // `off` or an unknown level: the raw line at debug, as go-plugin.
        return Some(LogRecord::text(LogLevel::Debug, line));
    };
    let fields = map
        .iter()
        .filter(|(key, _)| !matches!(key.as_str(), "@message" | "@level" | "@timestamp"))
        .map(|(key, value)| {
            let value = match value {
                serde_json::Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            (key.clone(), value)
        })
        .collect();
    Some(LogRecord {
        level,
        message,
        fields,
        timestamp,
        structured: true,
    })
}

/// Go's layout `2006-01-02T15:04:05.000000Z07:00`: exactly six fractional
/// digits, then `Z` or `±hh:mm`.
pub(crate) fn valid_timestamp(stamp: &str) -> bool {
    let bytes = stamp.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        bytes
            .get(range)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    let shape = bytes.len() >= 27
        && digits(0..4)
        && bytes[4] == b'-'
        && digits(5..7)
        && bytes[7] == b'-'
        && digits(8..10)
        && bytes[10] == b'T'
        && digits(11..13)
        && bytes[13] == b':'
        && digits(14..16)
        && bytes[16] == b':'
        && digits(17..19)
        && bytes[19] == b'.'
        && digits(20..26);
    if !shape {
        return false;
    }
    match &bytes[26..] {
        b"Z" => true,
        [sign, h1, h2, b':', m1, m2] => {
            (*sign == b'+' || *sign == b'-') && [h1, h2, m1, m2].iter().all(|d| d.is_ascii_digit())
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_six_fractional_digits() {
        let t = time::Date::from_calendar_date(2026, time::Month::November, 25)
            .unwrap()
            .with_hms_micro(9, 5, 7, 42)
            .unwrap()
            .assume_utc();
        assert_eq!(timestamp(t), "2026-11-25T09:05:07.000042Z");
        assert!(valid_timestamp(&timestamp(time::OffsetDateTime::now_utc())));
    }

    #[test]
    fn go_plugins_timestamp_layout() {
        for ok in [
            "2026-11-25T09:05:07.123456Z",
            "2026-11-25T09:05:07.123456+01:00",
            "2026-11-25T09:05:07.123456-07:30",
        ] {
            assert!(valid_timestamp(ok), "{ok}");
        }
        for bad in [
            "2026-11-25T09:05:07.123Z",
            "2026-11-25T09:05:07.123456789Z",
            "2026-11-25T09:05:07Z",
            "2026-11-25T09:05:07.123456+0100",
            "",
            "yesterday",
        ] {
            assert!(!valid_timestamp(bad), "{bad}");
        }
    }

    #[test]
    fn parses_stderr_like_go_plugin() {
        use LogLevel::*;
        let cases: Vec<(&str, LogLevel, &str, bool)> = vec![
            (
                r#"{"@level":"warn","@message":"denied","@timestamp":"2026-11-25T09:05:07.123456Z","user":"x","n":12}"#,
                Warn,
                "denied",
                true,
            ),
            (r#"{"@level":"INFO ","@message":"m"}"#, Info, "m", true),
            (
                r#"{"@level":"trace","@message":"t","@module":"kv"}"#,
                Trace,
                "t",
                true,
            ),
            // Not hclog entries: logged verbatim at debug.
            (r#"{"a":1}"#, Debug, r#"{"a":1}"#, false),
            (r#"["HELLO"]"#, Debug, r#"["HELLO"]"#, false),
            ("12345", Debug, "12345", false),
            (
                r#"{"@level":"fatal","@message":"x"}"#,
                Debug,
                r#"{"@level":"fatal","@message":"x"}"#,
                false,
            ),
            (
                r#"{"@level":"off","@message":"x"}"#,
                Debug,
                r#"{"@level":"off","@message":"x"}"#,
                false,
            ),
            // Wrong timestamps make the line text (go-plugin's parse fails).
            (
                r#"{"@level":"info","@message":"m","@timestamp":"2026-11-25T09:05:07.123Z"}"#,
                Debug,
                r#"{"@level":"info","@message":"m","@timestamp":"2026-11-25T09:05:07.123Z"}"#,
                false,
            ),
            // Non-string fields crash a Go host; here they are text.
            (
                r#"{"@level":5,"@message":"m"}"#,
                Debug,
                r#"{"@level":5,"@message":"m"}"#,
                false,
            ),
            (
                r#"{"@level":"info","@message":{"x":1}}"#,
                Debug,
                r#"{"@level":"info","@message":{"x":1}}"#,
                false,
            ),
            (
                "[WARN] plain text warning",
                Warn,
                "[WARN] plain text warning",
                false,
            ),
            ("[ERROR]x", Error, "[ERROR]x", false),
            (
                " [WARN] not at column 0",
                Debug,
                " [WARN] not at column 0",
                false,
            ),
            ("hello\r", Debug, "hello", false),
        ];
        for (line, level, message, structured) in cases {
            let record = StderrParser::new().parse(line);
            assert_eq!(
                (record.level, record.message.as_str(), record.structured),
                (level, message, structured),
                "{line}"
            );
        }
        let record = StderrParser::new()
            .parse(r#"{"@level":"warn","@message":"denied","user":"x","n":12,"@module":"kv"}"#);
        assert_eq!(record.fields_text(), "@module=kv n=12 user=x");
    }

    #[test]
    fn panics_switch_to_error_until_the_end() {
        let mut parser = StderrParser::new();
        assert_eq!(parser.parse("before").level, LogLevel::Debug);
        assert_eq!(parser.parse("panic: boom").level, LogLevel::Error);
        assert_eq!(
            parser.parse("goroutine 1 [running]:").level,
            LogLevel::Error
        );
        assert_eq!(parser.parse("main.main()").level, LogLevel::Error);
        assert_eq!(parser.parse("[INFO] still prefixed").level, LogLevel::Info);
        assert_eq!(
            parser
                .parse(r#"{"@level":"debug","@message":"json"}"#)
                .level,
            LogLevel::Debug
        );
        let mut parser = StderrParser::new();
        assert_eq!(
            parser.parse("fatal error: out of memory").level,
            LogLevel::Error
        );
        assert_eq!(parser.parse("runtime stack:").level, LogLevel::Error);
        let mut parser = StderrParser::new();
        let panic = "thread 'main' panicked at src/main.rs:2:5:";
        assert_eq!(parser.parse(panic).level, LogLevel::Error);
        assert_eq!(parser.parse("stack backtrace:").level, LogLevel::Error);
        let mut parser = StderrParser::new();
        let panic = "thread 'tokio-runtime-worker' (1234) panicked at src/lib.rs:9:1:";
        assert_eq!(parser.parse(panic).level, LogLevel::Error);
        let mut parser = StderrParser::new();
        let quoted = "thread safety: 'x' panicked at nothing";
        assert_eq!(parser.parse(quoted).level, LogLevel::Debug);
    }

    #[test]
    fn module_apart_and_level_prefixes_dropped() {
        let cases = [
            (
                r#"{"@level":"info","@message":"hello","@module":"greeter","name":"x","n":2}"#,
                "hello",
                "n=2 name=x",
            ),
            (
                "[WARN]  plugin: no common version",
                "plugin: no common version",
                "",
            ),
            ("[INFO] ready", "ready", ""),
            ("plain text", "plain text", ""),
            (
                "[WARNING] not a prefix go-plugin knows",
                "[WARNING] not a prefix go-plugin knows",
                "",
            ),
        ];
        for (line, message, fields) in cases {
            let record = StderrParser::default().parse(line);
            assert_eq!(record.message_without_level(), message, "{line}");
            assert_eq!(record.fields_text_without("@module"), fields, "{line}");
        }
        let record = StderrParser::default().parse(cases[0].0);
        assert_eq!(record.module(), Some("greeter"));
        assert_eq!(StderrParser::default().parse("[INFO] x").module(), None);
    }
}

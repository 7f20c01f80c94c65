//! `StderrParser` fed a plugin's stderr: the input is split into lines at
//! `\n` and each line converted lossily to UTF-8, as the host's stderr
//! reader does.
//!
//! Invariants: no panic; a line that is not an hclog JSON entry keeps its
//! text (minus a trailing `\r`); a line hclog itself would print
//! (`format_entry`) parses back to its level and message.

#![no_main]

use goplug::log::{LogLevel, StderrParser, format_entry};
use libfuzzer_sys::fuzz_target;

const LEVELS: [LogLevel; 5] = [
    LogLevel::Trace,
    LogLevel::Debug,
    LogLevel::Info,
    LogLevel::Warn,
    LogLevel::Error,
];

fuzz_target!(|data: &[u8]| {
    let mut parser = StderrParser::new();
    for (index, raw) in data.split(|&byte| byte == b'\n').enumerate() {
        let line = String::from_utf8_lossy(raw);
        let record = parser.parse(&line);
        let _ = record.fields_text();
        if !record.structured {
            let text = line.strip_suffix('\r').unwrap_or(&line);
            assert_eq!(record.message, text, "text line {line:?} changed");
            assert!(record.fields.is_empty() && record.timestamp.is_none());
        }

        // The same text as the message of a JSON entry, as a Go plugin's
        // hclog would print it.
        let level = LEVELS[index % LEVELS.len()];
        let mut fields = serde_json::Map::new();
        fields.insert("line".to_owned(), (index as u64).into());
        let entry = format_entry(
            level,
            &line,
            Some("plugin.fuzz"),
            "2026-11-25T11:00:00.123456Z",
            &fields,
        );
        let parsed = StderrParser::new().parse(&entry);
        assert!(
            parsed.structured,
            "hclog entry {entry:?} was not parsed as JSON"
        );
        assert_eq!(parsed.level, level, "{entry:?}");
        assert_eq!(parsed.message, line, "{entry:?}");
    }
});

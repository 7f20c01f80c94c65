//! Re-logging a plugin's stderr on the host: each line, parsed as
//! go-plugin's host reads it, becomes a `tracing` event.

use tracing::Level;

use crate::protocol::hclog::{LogLevel, LogRecord};

/// Re-emits a parsed plugin log line as a `tracing` event (target
/// `goplug::plugin`): the plugin's name, its hclog `@module` as `module`
/// (a field of its own in a JSON subscriber's output), and the other
/// key/values as hclog prints them in `fields`. `tracing`
/// needs field names at compile time, so a plugin's own keys cannot be
/// fields of their own.
pub(crate) fn emit(plugin: &str, record: &LogRecord) {
    let module = record
        .fields
        .iter()
        .find(|(key, _)| key == "@module")
        .map_or("", |(_, value)| value.as_str());
    let fields = fields_text(record);
    let message = message_of(record);
    macro_rules! at {
        ($level:expr) => {
            tracing::event!(
                target: "goplug::plugin",
                $level,
                plugin,
                module,
                fields = %fields,
                "{message}"
            )
        };
    }
    match record.level {
        LogLevel::Trace => at!(Level::TRACE),
        LogLevel::Debug => at!(Level::DEBUG),
        LogLevel::Info => at!(Level::INFO),
        LogLevel::Warn => at!(Level::WARN),
        LogLevel::Error => at!(Level::ERROR),
    }
}

/// The key/values other than `@module`, which has its own field.
fn fields_text(record: &LogRecord) -> String {
    let mut text = String::new();
    for (key, value) in record.fields.iter().filter(|(key, _)| key != "@module") {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(key);
        text.push('=');
        text.push_str(value);
    }
    text
}

/// A text line's message without its `[WARN]`-style prefix: the event's
/// level already says it.
fn message_of(record: &LogRecord) -> &str {
    if record.structured {
        return &record.message;
    }
    let line = record.message.as_str();
    ["[TRACE]", "[DEBUG]", "[INFO]", "[WARN]", "[ERROR]"]
        .iter()
        .find_map(|prefix| line.strip_prefix(prefix))
        .map_or(line, str::trim_start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::hclog::StderrParser;

    #[test]
    fn module_has_its_own_field_and_prefixes_are_dropped() {
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
            assert_eq!(message_of(&record), message, "{line}");
            assert_eq!(fields_text(&record), fields, "{line}");
        }
    }
}

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
    let module = record.module().unwrap_or_default();
    let fields = record.fields_text_without("@module");
    let message = record.message_without_level();
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

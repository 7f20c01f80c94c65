//! Re-logging a plugin's stderr on the host: each line, parsed as
//! go-plugin's host reads it, becomes a `tracing` event.

use tracing::Level;

use crate::protocol::hclog::{LogLevel, LogRecord};

/// Re-emits a parsed plugin log line as a `tracing` event (target
/// `goplug::plugin`), with the plugin's name and its key/values.
pub(crate) fn emit(plugin: &str, record: &LogRecord) {
    let fields = record.fields_text();
    let message = &record.message;
    macro_rules! at {
        ($level:expr) => {
            tracing::event!(target: "goplug::plugin", $level, plugin, fields = %fields, "{message}")
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

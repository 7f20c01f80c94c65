//! Re-logging a plugin's stderr on the host: each line, parsed as
//! go-plugin's host reads it, becomes a `tracing` event.

use tracing::Level;
use tracing::field::display;

use super::log_callsites;
use crate::protocol::hclog::{LogLevel, LogRecord};

/// Where plugin log events go: this target for lines without a module,
/// `goplug::plugin::<module>` (hclog's `.` written `::`) for the others,
/// so `RUST_LOG=goplug::plugin::kv=debug` picks one module.
pub(crate) const TARGET: &str = "goplug::plugin";

/// The field names goplug sets itself; a plugin key with one of these
/// names is renamed `field.<name>`.
const OWN_FIELDS: [&str; 3] = ["message", "plugin", "module"];

/// Re-emits a parsed plugin log line as a `tracing` event: the message,
/// the plugin's name as `plugin`, its hclog `@module` as `module`, and each
/// other key/value as a field of its own (values as hclog prints them).
pub(crate) fn emit(plugin: &str, record: &LogRecord) {
    let level = level_of(record.level);
    if level > tracing::level_filters::LevelFilter::current() {
        return;
    }
    let module = record.module().unwrap_or_default();
    let target = if module.is_empty() {
        TARGET.to_owned()
    } else {
        format!("{TARGET}::{}", module.replace('.', "::"))
    };
    let message = record.message_without_level();
    let keys: Vec<(String, &str)> = record
        .fields
        .iter()
        .filter(|(key, _)| key != "@module")
        .map(|(key, value)| {
            let name = if OWN_FIELDS.contains(&key.as_str()) {
                format!("field.{key}")
            } else {
                key.clone()
            };
            (name, value.as_str())
        })
        .collect();
    let mut names: Vec<&str> = OWN_FIELDS.to_vec();
    names.extend(keys.iter().map(|(name, _)| name.as_str()));
    // hclog keys are distinct; only a renamed one can meet another key.
    let distinct = keys
        .iter()
        .filter(|(name, _)| name.starts_with("field."))
        .all(|(name, _)| keys.iter().filter(|(other, _)| other == name).count() == 1);
    let callsite = distinct
        .then(|| log_callsites::lookup(level, &target, &names))
        .flatten();
    let Some(callsite) = callsite else {
        return emit_flat(plugin, module, record, level);
    };
    let message = display(message);
    let mut values: Vec<Option<&dyn tracing::Value>> =
        vec![Some(&message), Some(&plugin), Some(&module)];
    values.extend(
        keys.iter()
            .map(|(_, value)| Some(value as &dyn tracing::Value)),
    );
    callsite.dispatch(&values);
}

/// The event when a record's keys cannot be fields of their own (a
/// repeated key, too many keys, or the process-wide callsite table is
/// full): target [`TARGET`], the key/values in one `fields` text.
fn emit_flat(plugin: &str, module: &str, record: &LogRecord, level: Level) {
    let fields = record.fields_text_without("@module");
    let message = record.message_without_level();
    macro_rules! at {
        ($level:expr) => {
            tracing::event!(target: "goplug::plugin", $level, plugin, module, fields = %fields, "{message}")
        };
    }
    match level {
        Level::TRACE => at!(Level::TRACE),
        Level::DEBUG => at!(Level::DEBUG),
        Level::INFO => at!(Level::INFO),
        Level::WARN => at!(Level::WARN),
        _ => at!(Level::ERROR),
    }
}

fn level_of(level: LogLevel) -> Level {
    match level {
        LogLevel::Trace => Level::TRACE,
        LogLevel::Debug => Level::DEBUG,
        LogLevel::Info => Level::INFO,
        LogLevel::Warn => Level::WARN,
        LogLevel::Error => Level::ERROR,
    }
}

//! The plugin side: `tracing` events as hclog JSON lines on stderr.

use std::io::Write;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;

use crate::protocol::env::GOPLUG_LOG;
use crate::protocol::hclog::timestamp;
use crate::protocol::hclog::{LogLevel, format_entry};

/// A `tracing` layer that writes hclog JSON lines, one per event, to
/// stderr (or another writer). Span fields are not included.
pub struct HclogLayer {
    writer: Mutex<Box<dyn Write + Send>>,
    module: Option<String>,
}

impl std::fmt::Debug for HclogLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HclogLayer")
            .field("module", &self.module)
            .finish_non_exhaustive()
    }
}

impl Default for HclogLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl HclogLayer {
    /// Writes to this process's stderr, with each event's target as `@module`.
    pub fn new() -> Self {
        Self::with_writer(std::io::stderr())
    }

    /// Writes to `writer` instead.
    pub fn with_writer(writer: impl Write + Send + 'static) -> Self {
        Self {
            writer: Mutex::new(Box::new(writer)),
            module: None,
        }
    }

    /// Uses `module` as every line's `@module` instead of the event target.
    #[must_use]
    pub fn module(mut self, module: impl Into<String>) -> Self {
        self.module = Some(module.into());
        self
    }
}

impl<S: Subscriber> Layer<S> for HclogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = FieldMap::default();
        event.record(&mut fields);
        let message = match fields.0.remove("message") {
            Some(serde_json::Value::String(text)) => text,
            Some(other) => other.to_string(),
            None => String::new(),
        };
        let metadata = event.metadata();
        let module = self.module.as_deref().unwrap_or_else(|| metadata.target());
        let line = format_entry(
            level_of(*metadata.level()),
            &message,
            Some(module),
            &timestamp(time::OffsetDateTime::now_utc()),
            &fields.0,
        );
        if let Ok(mut writer) = self.writer.lock() {
            // A log line that cannot be written has nowhere to be reported.
            let _ = writer.write_all(format!("{line}\n").as_bytes());
            let _ = writer.flush();
        }
    }
}

#[derive(Default)]
struct FieldMap(serde_json::Map<String, serde_json::Value>);

impl Visit for FieldMap {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().to_owned(), value.to_string().into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), format!("{value:?}").into());
    }
}

/// Installs [`HclogLayer`] on stderr as the global subscriber, filtered by
/// `GOPLUG_LOG` (an `EnvFilter` directive; default: `info`, and `warn` for
/// the gRPC stack, which is very chatty at debug), and bridges the `log`
/// crate into it. Does nothing if a global subscriber is already set.
///
/// `RUST_LOG` is not read: a plugin inherits its host's environment, and
/// a filter meant for the host (`RUST_LOG=my_host=info`) would silently
/// drop every plugin log. As with go-plugin, the plugin sends its logs
/// and the host filters them (target `goplug::plugin`). Set `GOPLUG_LOG`
/// on the plugin's command to change what the plugin sends.
pub fn init() {
    init_with("info");
}

/// [`init`] with `level` (`trace`, `debug`, …) instead of `info` when
/// `GOPLUG_LOG` is not set; the gRPC stack stays at `warn`.
pub fn init_with(level: &str) {
    use tracing_subscriber::layer::SubscriberExt as _;
    let subscriber = tracing_subscriber::registry()
        .with(HclogLayer::new())
        .with(filter(level, std::env::var(GOPLUG_LOG).ok().as_deref()));
    if tracing::subscriber::set_global_default(subscriber).is_ok() {
        let _ = tracing_log::LogTracer::init();
    }
}

/// `GOPLUG_LOG` when it parses, else `level` with the gRPC stack at warn.
fn filter(level: &str, from_env: Option<&str>) -> tracing_subscriber::EnvFilter {
    from_env
        .and_then(|directives| tracing_subscriber::EnvFilter::try_new(directives).ok())
        .unwrap_or_else(|| {
            tracing_subscriber::EnvFilter::new(format!(
                "{level},h2=warn,hyper=warn,tonic=warn,tower=warn,rustls=warn"
            ))
        })
}

fn level_of(level: Level) -> LogLevel {
    match level {
        Level::TRACE => LogLevel::Trace,
        Level::DEBUG => LogLevel::Debug,
        Level::INFO => LogLevel::Info,
        Level::WARN => LogLevel::Warn,
        _ => LogLevel::Error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::hclog::{StderrParser, valid_timestamp};

    #[test]
    fn layer_output_is_what_the_host_parses() {
        use tracing_subscriber::layer::SubscriberExt as _;
        #[derive(Clone, Default)]
        struct Shared(std::sync::Arc<Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let out = Shared::default();
        let subscriber =
            tracing_subscriber::registry().with(HclogLayer::with_writer(out.clone()).module("kv"));
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(user = "x", n = 12, ok = true, "denied");
            tracing::trace!("fine");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let mut parser = StderrParser::new();
        let warn = parser.parse(lines[0]);
        assert_eq!(
            (warn.level, warn.message.as_str(), warn.structured),
            (LogLevel::Warn, "denied", true)
        );
        assert_eq!(warn.fields_text(), "@module=kv n=12 ok=true user=x");
        assert!(valid_timestamp(warn.timestamp.as_deref().unwrap()));
        assert_eq!(parser.parse(lines[1]).level, LogLevel::Trace);
    }
}

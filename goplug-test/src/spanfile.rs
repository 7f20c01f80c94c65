//! Finished spans as JSON lines in a file, one file per process, for the
//! trace interop tests: the Rust test host and plugin write them through
//! OpenTelemetry's SDK (an exporter of our own, called as each span ends,
//! so a plugin killed by its host has written everything it finished),
//! and the Go programs in `interop/go/internal/tracedcounter` write the same
//! format.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write as _;
use std::path::Path;
use std::sync::Mutex;

use opentelemetry::trace::{SpanId, TracerProvider as _};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use serde::{Deserialize, Serialize};
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// One finished span.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SpanRecord {
    /// Which process recorded it (`rust-host`, `go-plugin`, ...).
    pub process: String,
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    /// `client`, `server` or `internal`.
    pub kind: String,
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug)]
struct SpanFile {
    process: &'static str,
    file: Mutex<File>,
}

impl SpanFile {
    fn record(&self, span: &SpanData) -> SpanRecord {
        let parent = if span.parent_span_id == SpanId::INVALID {
            String::new()
        } else {
            span.parent_span_id.to_string()
        };
        SpanRecord {
            process: self.process.to_owned(),
            name: span.name.to_string(),
            trace_id: span.span_context.trace_id().to_string(),
            span_id: span.span_context.span_id().to_string(),
            parent_span_id: parent,
            kind: format!("{:?}", span.span_kind).to_ascii_lowercase(),
            attributes: span
                .attributes
                .iter()
                .map(|kv| (kv.key.to_string(), kv.value.as_str().into_owned()))
                .collect(),
        }
    }
}

impl SpanExporter for SpanFile {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let mut lines = String::new();
        for span in &batch {
            let line = serde_json::to_string(&self.record(span))
                .map_err(|e| OTelSdkError::InternalFailure(e.to_string()))?;
            lines.push_str(&line);
            lines.push('\n');
        }
        let mut file = self
            .file
            .lock()
            .map_err(|e| OTelSdkError::InternalFailure(e.to_string()))?;
        file.write_all(lines.as_bytes())
            .map_err(|e| OTelSdkError::InternalFailure(e.to_string()))
    }
}

/// Installs a `tracing` subscriber whose OpenTelemetry layer appends every
/// span at info level and above to the file named by `path_var` as it ends; nothing when the
/// variable is unset. Shut the provider down before exiting.
///
/// # Panics
///
/// When the file cannot be opened or a subscriber is already installed.
pub fn init(process: &'static str, path_var: &str) -> Option<SdkTracerProvider> {
    let path = std::env::var_os(path_var)?;
    let file = File::options()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", Path::new(&path).display()));
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(SpanFile {
            process,
            file: Mutex::new(file),
        })
        .build();
    let tracer = provider.tracer("goplug-test");
    // h2 and tonic make trace-level spans of their own.
    tracing_subscriber::registry()
        .with(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(LevelFilter::INFO),
        )
        .init();
    Some(provider)
}

/// The spans in `path`; none when the file does not exist.
///
/// # Panics
///
/// On a line that is not a span.
pub fn read(path: &Path) -> Vec<SpanRecord> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{}: {e}: {line}", path.display()))
        })
        .collect()
}

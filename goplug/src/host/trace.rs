//! The plugin joins the host's trace at launch (feature `otel`): the
//! current span's W3C context goes into the plugin's environment as
//! `TRACEPARENT` (and `TRACESTATE`), OpenTelemetry's environment carrier,
//! which goplug plugins, Go's `envcar` propagator and Terraform read.

use std::ffi::OsString;

use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::transport::trace::env_of;

/// The carrier variables of the span current at launch; none without one
/// (a `TRACEPARENT` the host itself inherited then passes through).
pub(super) fn plugin_env() -> Vec<(OsString, OsString)> {
    env_of(&tracing::Span::current().context())
        .into_iter()
        .map(|(key, value)| (key.into(), value.into()))
        .collect()
}

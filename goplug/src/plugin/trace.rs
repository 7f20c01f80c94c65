//! The plugin's start-up span (feature `otel`): from the cookie check to
//! the handshake line, a child of the context the host put in the
//! environment (`TRACEPARENT`, `TRACESTATE`), so a launch shows up in the
//! host's trace.

use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::transport::trace::context_from_env;

/// The start-up span; a root when the environment carries no context.
pub(super) fn start_span() -> Span {
    let span = tracing::info_span!(
        target: "goplug::rpc",
        parent: None,
        "goplug.plugin.start",
        otel.kind = "internal",
    );
    let remote = context_from_env(|key| std::env::var(key).ok());
    // Fails only when no OpenTelemetry layer records the span.
    let _ = span.set_parent(remote);
    span
}

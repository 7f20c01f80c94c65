//! W3C trace context on gRPC calls (feature `otel`), as grpc-go's otelgrpc
//! handlers carry it: every call made through a goplug [`Channel`] runs in
//! a client span whose context travels as `traceparent`/`tracestate`
//! metadata, and every goplug server runs a call in a server span whose
//! parent is the context the call carried. Both directions use this: the
//! host's calls to its plugin, the plugin's calls back through the broker,
//! and calls to either side's brokered servers.
//!
//! go-plugin's own services (health, stdio, the broker stream, the
//! controller) and reflection get no span and carry nothing: the broker
//! stream lasts a whole session, and the rest would only add noise.
//!
//! Spans are `tracing` spans named and attributed as otelgrpc names its
//! spans (`otel.name` `package.Service/Method`, `otel.kind`,
//! `rpc.system.name`, `rpc.method`), so `tracing-opentelemetry` exports
//! them looking like the Go side's. Without its layer in the subscriber
//! the spans have no OpenTelemetry context, and calls carry none.
//!
//! [`Channel`]: super::Channel

use std::collections::HashMap;

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The services no span is made for: go-plugin's own and reflection.
const UNTRACED_SERVICES: &[&str] = &[
    "grpc.health.v1.Health",
    "plugin.GRPCBroker",
    "plugin.GRPCController",
    "plugin.GRPCStdio",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// `package.Service/Method` of a call to `path`, when the call is traced:
/// not for go-plugin's own services, nor for a path that names no method.
fn traced_method(path: &str) -> Option<&str> {
    let method = path.strip_prefix('/')?;
    // grpc-go splits at the last slash.
    let (service, name) = method.rsplit_once('/')?;
    if service.is_empty() || name.is_empty() || UNTRACED_SERVICES.contains(&service) {
        return None;
    }
    Some(method)
}

/// An RPC span of `kind` (`client` or `server`) for `method`, with the
/// fields otelgrpc gives its spans.
macro_rules! rpc_span {
    ($kind:literal, $method:expr $(, $parent:expr)?) => {
        tracing::info_span!(
            target: "goplug::rpc",
            $(parent: $parent,)?
            "grpc",
            otel.name = $method,
            otel.kind = $kind,
            rpc.system.name = "grpc",
            rpc.method = $method,
        )
    };
}

/// The client span of a call about to go out on a channel, its context
/// put in the request's metadata; a disabled span for an untraced call.
/// When the span itself is filtered out, the caller's span is what the
/// call carries, so the trace still goes on in the plugin.
pub(crate) fn client_call<B>(request: &mut http::Request<B>) -> Span {
    let Some(method) = traced_method(request.uri().path()) else {
        return Span::none();
    };
    let span = rpc_span!("client", method);
    let mut context = span.context();
    if !context.has_active_span() {
        context = Span::current().context();
    }
    inject(&context, request.headers_mut());
    span
}

/// The server span of a call a goplug server received, a child of the
/// context the call carried (a root without one); a disabled span for an
/// untraced call. tonic runs the call's handler inside it.
pub(crate) fn server_call(request: &http::Request<()>) -> Span {
    let Some(method) = traced_method(request.uri().path()) else {
        return Span::none();
    };
    let span = rpc_span!("server", method, None);
    let remote = TraceContextPropagator::new().extract(&HeaderExtractor(request.headers()));
    if remote.has_active_span() {
        // Fails only when no OpenTelemetry layer records the span.
        let _ = span.set_parent(remote);
    }
    span
}

/// Puts `context`'s trace context in `headers` as W3C metadata.
fn inject(context: &Context, headers: &mut http::HeaderMap) {
    if context.has_active_span() {
        TraceContextPropagator::new().inject_context(context, &mut HeaderInjector(headers));
    }
}

/// `context` as OpenTelemetry's environment carrier: `TRACEPARENT` and,
/// when not empty, `TRACESTATE`. Empty without an active span.
#[cfg(feature = "host")]
pub(crate) fn env_of(context: &Context) -> Vec<(String, String)> {
    if !context.has_active_span() {
        return Vec::new();
    }
    let mut carrier: HashMap<String, String> = HashMap::new();
    TraceContextPropagator::new().inject_context(context, &mut carrier);
    let mut vars: Vec<(String, String)> = carrier
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(key, value)| (key.to_ascii_uppercase(), value))
        .collect();
    vars.sort();
    vars
}

/// The context OpenTelemetry's environment carrier holds, read through
/// `var` (`TRACEPARENT`, `TRACESTATE`); an empty context without one.
#[cfg(feature = "plugin")]
pub(crate) fn context_from_env(var: impl Fn(&str) -> Option<String>) -> Context {
    let propagator = TraceContextPropagator::new();
    let carrier: HashMap<String, String> = propagator
        .fields()
        .filter_map(|field| Some((field.to_owned(), var(&field.to_ascii_uppercase())?)))
        .collect();
    propagator.extract(&carrier)
}

/// Writes W3C fields into HTTP/2 headers (gRPC metadata). An empty
/// `tracestate` is left out, as Go's propagator leaves it out.
struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if value.is_empty() {
            return;
        }
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Reads W3C fields from a request's HTTP/2 headers.
struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

    #[test]
    fn go_plugin_services_are_not_traced() {
        let cases = [
            ("/proto.Counter/Put", Some("proto.Counter/Put")),
            (
                "/greeter.v1.Greeter/Hello",
                Some("greeter.v1.Greeter/Hello"),
            ),
            ("/a/b/c", Some("a/b/c")),
            ("/grpc.health.v1.Health/Check", None),
            ("/plugin.GRPCBroker/StartStream", None),
            ("/plugin.GRPCController/Shutdown", None),
            ("/plugin.GRPCStdio/StreamStdio", None),
            (
                "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                None,
            ),
            (
                "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                None,
            ),
            ("/nomethod", None),
            ("/proto.Counter/", None),
            ("//Put", None),
            ("proto.Counter/Put", None),
            ("", None),
        ];
        for (path, want) in cases {
            assert_eq!(traced_method(path), want, "{path}");
        }
    }

    fn remote_context(state: &str) -> Context {
        let span = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            true,
            state.parse::<TraceState>().unwrap(),
        );
        Context::new().with_remote_span_context(span)
    }

    #[test]
    fn metadata_carries_w3c_fields_and_reads_back() {
        let cases = [
            ("", None),
            ("vendor=opaque", Some("vendor=opaque")),
            ("a=1,b=2", Some("a=1,b=2")),
        ];
        for (state, want_state) in cases {
            let mut headers = http::HeaderMap::new();
            inject(&remote_context(state), &mut headers);
            assert_eq!(
                headers.get("traceparent").unwrap(),
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            );
            assert_eq!(
                headers.get("tracestate").map(|v| v.to_str().unwrap()),
                want_state,
                "{state:?}"
            );
            let back = TraceContextPropagator::new().extract(&HeaderExtractor(&headers));
            let span = back.span();
            let back = span.span_context();
            assert_eq!(
                back.trace_id().to_string(),
                "4bf92f3577b34da6a3ce929d0e0e4736"
            );
            assert_eq!(back.span_id().to_string(), "00f067aa0ba902b7");
            assert!(back.is_remote());
            assert_eq!(back.trace_state().header(), state);
        }
    }

    #[test]
    fn no_active_span_injects_nothing() {
        let mut headers = http::HeaderMap::new();
        inject(&Context::new(), &mut headers);
        assert!(headers.is_empty());
    }

    #[test]
    #[cfg(all(feature = "host", feature = "plugin"))]
    fn the_environment_carrier_round_trips() {
        let vars = env_of(&remote_context("vendor=opaque"));
        assert_eq!(
            vars,
            [
                (
                    "TRACEPARENT".to_owned(),
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned()
                ),
                ("TRACESTATE".to_owned(), "vendor=opaque".to_owned()),
            ]
        );
        let env: HashMap<String, String> = vars.into_iter().collect();
        let back = context_from_env(|key| env.get(key).cloned());
        assert_eq!(
            back.span().span_context().trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(env_of(&Context::new()).is_empty());
        assert!(!context_from_env(|_| None).has_active_span());
        let malformed = context_from_env(|key| (key == "TRACEPARENT").then(|| "00-xyz".to_owned()));
        assert!(!malformed.has_active_span());
    }
}

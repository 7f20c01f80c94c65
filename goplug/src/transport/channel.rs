//! The host's gRPC channel: one HTTP/2 connection to a plugin (or to a
//! brokered server), handed to tonic's generated clients.
//!
//! tonic's `transport::Channel` puts a buffer task and a reconnect layer in
//! front of hyper's client, and hyper spawns two tasks for every request
//! (one to send the body, one to hand back the response). A plugin
//! connection is one socket that is never dialled again (go-plugin's host
//! does not redial either: a plugin that went away is restarted), so this
//! channel drives h2 itself: a request's headers and the body that is
//! ready go out from the caller's own task, and only a body that is not
//! ready yet (a client stream) gets a task of its own.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use h2::{RecvStream, SendStream};
use http::uri::{Authority, Scheme, Uri};
use http_body::{Body as _, Frame};
use tokio::io::{AsyncRead, AsyncWrite};
use tonic::body::Body;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Request body bytes sent from the caller's task before the rest goes to
/// a task of its own that waits for flow-control capacity: a unary
/// message of up to this size never needs the extra task.
const EAGER_BODY_BYTES: usize = 64 * 1024;

/// The HTTP/2 settings hyper's client used (and so tonic's channel).
fn client_builder() -> h2::client::Builder {
    let mut builder = h2::client::Builder::new();
    builder
        .initial_max_send_streams(100)
        .initial_window_size(crate::transport::serve::STREAM_WINDOW_BYTES)
        .initial_connection_window_size(crate::transport::serve::CONNECTION_WINDOW_BYTES)
        .max_frame_size(16 * 1024)
        .max_header_list_size(16 * 1024)
        .max_send_buffer_size(1024 * 1024)
        .max_local_error_reset_streams(Some(1024))
        .enable_push(false);
    builder
}

/// Runs the HTTP/2 handshake over `io` and spawns the connection's task;
/// `label` names the peer in the log line when the connection ends.
pub(crate) async fn handshake<T>(io: T, label: String) -> Result<Channel, h2::Error>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = client_builder().handshake::<_, Bytes>(io).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(address = %label, error = %e, "plugin connection ended");
        }
    });
    Ok(Channel {
        sender: Sender::Connected(sender),
    })
}

/// A gRPC channel to a plugin: what generated clients such as
/// `KvClient<Channel>` wrap. Cheap to clone; every clone shares the one
/// HTTP/2 connection, which closes when the last clone is dropped.
///
/// A deadline set on a request (`Request::set_timeout`, carried as
/// `grpc-timeout`) is enforced here too, so a plugin that stops answering
/// fails the call with `DeadlineExceeded` when the deadline passes.
#[derive(Clone)]
pub struct Channel {
    sender: Sender,
}

#[derive(Clone)]
enum Sender {
    Connected(SendRequest<Bytes>),
    /// A channel whose every call fails with `Unavailable` and this reason.
    #[cfg_attr(not(feature = "host"), expect(dead_code, reason = "the host side"))]
    Unavailable(&'static str),
    /// A channel that asks its route for the connection of each call.
    #[cfg_attr(not(feature = "host"), expect(dead_code, reason = "the host side"))]
    Routed(std::sync::Arc<dyn Route>),
}

/// The boxed future a [`Route`] answers with: the connection, and a
/// ticket the route gets back in [`Route::finished`].
pub(crate) type RouteFuture<'a> =
    Pin<Box<dyn Future<Output = Result<(Channel, u64), tonic::Status>> + Send + 'a>>;

/// Where a routed channel finds the connection for each call: the host
/// side's supervisor, whose plugin process changes across restarts while
/// the clients built on its channel stay.
pub(crate) trait Route: Send + Sync + 'static {
    /// The current connection; may wait (at most `deadline`, when the call
    /// has one) while the plugin restarts. An error fails the call.
    fn current(&self, deadline: Option<Duration>) -> RouteFuture<'_>;

    /// Called once per call with the ticket `current` gave (`None` when it
    /// failed) and the outcome: whether it got a response without a
    /// `grpc-status` error in its headers.
    fn finished(&self, ticket: Option<u64>, ok: bool, elapsed: Duration);
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.sender {
            Sender::Connected(_) => "connected",
            Sender::Unavailable(reason) => reason,
            Sender::Routed(_) => "routed",
        };
        f.debug_struct("Channel").field("state", &state).finish()
    }
}

impl Channel {
    #[cfg(feature = "host")]
    pub(crate) fn unavailable(reason: &'static str) -> Self {
        Self {
            sender: Sender::Unavailable(reason),
        }
    }

    /// A channel whose calls go where `route` says at the time of each call.
    #[cfg(feature = "host")]
    pub(crate) fn routed(route: std::sync::Arc<dyn Route>) -> Self {
        Self {
            sender: Sender::Routed(route),
        }
    }
}

/// The authority every request names. Never resolved: the connection is
/// already made. grpc-go's servers require `:authority` and `:scheme`.
const AUTHORITY: &str = "plugin";

impl tower::Service<http::Request<Body>> for Channel {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    /// Always ready: h2 queues streams beyond the peer's limit itself, and
    /// a closed connection is reported by the call (tonic turns an error
    /// here into `Unknown`, "Service was not ready"; from the call it is
    /// `Unavailable`, as grpc-go reports a closed transport).
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let sender = match &self.sender {
            Sender::Connected(sender) => sender.clone(),
            Sender::Unavailable(reason) => {
                let status = tonic::Status::unavailable(*reason);
                return Box::pin(async move { Err(Box::new(status) as BoxError) });
            }
            Sender::Routed(route) => return routed_call(route.clone(), request),
        };
        if let Err(e) = add_origin(request.uri_mut()) {
            return Box::pin(async move { Err(e) });
        }
        let deadline = call_deadline(&request);
        #[cfg(feature = "otel")]
        let span = super::trace::client_call(&mut request);
        let exchange = exchange(sender, request);
        let call = async move {
            let Some(deadline) = deadline else {
                return exchange.await;
            };
            match tokio::time::timeout(deadline, exchange).await {
                Ok(result) => result,
                Err(_) => Err(Box::new(tonic::Status::deadline_exceeded(format!(
                    "no response within the call's deadline of {deadline:?}"
                ))) as BoxError),
            }
        };
        #[cfg(feature = "otel")]
        let call = tracing::Instrument::instrument(call, span);
        Box::pin(call)
    }
}

/// The call's deadline, from its `grpc-timeout` header.
fn call_deadline(request: &http::Request<Body>) -> Option<Duration> {
    request
        .headers()
        .get("grpc-timeout")
        .and_then(|value| value.to_str().ok())
        .and_then(parse_grpc_timeout)
}

/// A call through a [`Route`]: the connection it names now, the call on
/// it, and the outcome reported back.
fn routed_call(
    route: std::sync::Arc<dyn Route>,
    request: http::Request<Body>,
) -> Pin<Box<dyn Future<Output = Result<http::Response<Body>, BoxError>> + Send>> {
    let deadline = call_deadline(&request);
    Box::pin(async move {
        let started = std::time::Instant::now();
        let (ticket, outcome) = match route.current(deadline).await {
            Ok((mut channel, ticket)) => (
                Some(ticket),
                tower::Service::call(&mut channel, request).await,
            ),
            Err(status) => (None, Err(Box::new(status) as BoxError)),
        };
        let ok = outcome.as_ref().is_ok_and(|response| {
            response
                .headers()
                .get("grpc-status")
                .is_none_or(|status| status.as_bytes() == b"0")
        });
        route.finished(ticket, ok, started.elapsed());
        outcome
    })
}

/// One request and its response. Dropping the future resets the stream.
async fn exchange(
    sender: SendRequest<Bytes>,
    request: http::Request<Body>,
) -> Result<http::Response<Body>, BoxError> {
    let mut sender = sender.ready().await.map_err(transport_failure)?;
    let (parts, mut body) = request.into_parts();
    let end_of_stream = body.is_end_stream();
    let (response, mut stream) = sender
        .send_request(http::Request::from_parts(parts, ()), end_of_stream)
        .map_err(transport_failure)?;
    if !end_of_stream {
        let mut budget = EAGER_BODY_BYTES;
        let sent = std::future::poll_fn(|cx| {
            Poll::Ready(send_ready_frames(&mut body, &mut stream, &mut budget, cx))
        })
        .await?;
        if !sent {
            tokio::spawn(send_rest(body, stream));
        }
    }
    let response = response.await.map_err(transport_failure)?;
    Ok(response.map(|recv| Body::new(ResponseBody::new(recv))))
}

/// Sends the body frames that are ready now, up to `budget` bytes of
/// data. `Ok(true)` once the body has ended.
///
/// The last data frame is held back until the next poll tells whether the
/// body ends there, so a unary message goes out with END_STREAM, as
/// grpc-go's client sends it. Sent apart, the plugin could answer and
/// reset the stream in between (grpc-go's server resets a stream the
/// client has not closed), and h2 then drops the answer.
fn send_ready_frames(
    body: &mut Body,
    stream: &mut SendStream<Bytes>,
    budget: &mut usize,
    cx: &mut Context<'_>,
) -> Result<bool, BoxError> {
    let mut held: Option<Bytes> = None;
    loop {
        let polled = if *budget > 0 {
            Pin::new(&mut *body).poll_frame(cx)
        } else {
            Poll::Pending
        };
        let frame = match polled {
            Poll::Ready(None) => {
                let last = held.take().unwrap_or_default();
                return Ok(sent(stream.send_data(last, true), true));
            }
            Poll::Ready(Some(Ok(frame))) if frame.is_data() => frame,
            other => {
                if let Some(data) = held.take()
                    && sent(stream.send_data(data, false), false)
                {
                    return Ok(true);
                }
                return match other {
                    Poll::Pending => Ok(false),
                    Poll::Ready(frame) => {
                        if send_frame(frame, body, stream, budget)? {
                            Ok(true)
                        } else {
                            send_ready_frames(body, stream, budget, cx)
                        }
                    }
                };
            }
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        *budget = budget.saturating_sub(data.len());
        if let Some(previous) = held.replace(data)
            && sent(stream.send_data(previous, false), false)
        {
            return Ok(true);
        }
        if body.is_end_stream() {
            let last = held.take().unwrap_or_default();
            return Ok(sent(stream.send_data(last, true), true));
        }
    }
}

/// Sends one polled body frame; `Ok(true)` when nothing more is to be
/// sent. A stream the plugin has already closed or reset takes no more
/// frames; that is not the call's failure: the response (or the reset)
/// says how the call ended, as grpc-go's server may answer a unary call
/// and reset the stream before the client's END_STREAM arrives.
fn send_frame(
    frame: Option<Result<Frame<Bytes>, tonic::Status>>,
    body: &Body,
    stream: &mut SendStream<Bytes>,
    budget: &mut usize,
) -> Result<bool, BoxError> {
    let frame = match frame {
        None => return Ok(sent(stream.send_data(Bytes::new(), true), true)),
        Some(Err(status)) => {
            stream.send_reset(h2::Reason::CANCEL);
            return Err(Box::new(status));
        }
        Some(Ok(frame)) => frame,
    };
    match frame.into_data() {
        Ok(data) => {
            *budget = budget.saturating_sub(data.len());
            let end = body.is_end_stream();
            Ok(sent(stream.send_data(data, end), end))
        }
        Err(frame) => match frame.into_trailers() {
            Ok(trailers) => Ok(sent(stream.send_trailers(trailers), true)),
            // Neither data nor trailers: nothing HTTP/2 can carry.
            Err(_) => Ok(false),
        },
    }
}

/// Whether sending is over after a send that ended the body (`end`) or
/// failed because the stream is no longer open.
fn sent(result: Result<(), h2::Error>, end: bool) -> bool {
    match result {
        Ok(()) => end,
        Err(e) => {
            tracing::debug!(error = %e, "the plugin closed the stream before the request body ended");
            true
        }
    }
}

/// The rest of a request body that was not ready at once: each frame
/// waits for flow-control capacity, as hyper's body pipe does. Stops when
/// the plugin resets the stream.
async fn send_rest(mut body: Body, mut stream: SendStream<Bytes>) {
    let mut unlimited = usize::MAX;
    loop {
        stream.reserve_capacity(1);
        if stream.capacity() == 0 {
            match std::future::poll_fn(|cx| stream.poll_capacity(cx)).await {
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return,
            }
        }
        let frame = std::future::poll_fn(|cx| {
            if let Poll::Ready(reset) = stream.poll_reset(cx) {
                return Poll::Ready(Err(reset));
            }
            Pin::new(&mut body).poll_frame(cx).map(Ok)
        })
        .await;
        let Ok(frame) = frame else {
            return;
        };
        match send_frame(frame, &body, &mut stream, &mut unlimited) {
            Ok(false) => {}
            Ok(true) => return,
            Err(e) => {
                tracing::debug!(error = %e, "sending a request body failed");
                return;
            }
        }
    }
}

/// A response body read from h2, releasing flow-control capacity as the
/// data is taken, then the trailers.
struct ResponseBody {
    recv: RecvStream,
    data_done: bool,
}

impl ResponseBody {
    fn new(recv: RecvStream) -> Self {
        Self {
            recv,
            data_done: false,
        }
    }
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if !self.data_done {
            match self.recv.poll_data(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(data))) => {
                    // Only fails when the stream is already gone.
                    let _ = self.recv.flow_control().release_capacity(data.len());
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(transport_failure(e)))),
                Poll::Ready(None) => self.data_done = true,
            }
        }
        match self.recv.poll_trailers(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(Some(trailers))) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Poll::Ready(Ok(None)) => Poll::Ready(None),
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(transport_failure(e)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.recv.is_end_stream()
    }
}

/// Generated clients send a path only; HTTP/2 needs the scheme and the
/// authority as well.
fn add_origin(uri: &mut Uri) -> Result<(), BoxError> {
    if uri.scheme().is_some() && uri.authority().is_some() {
        return Ok(());
    }
    let mut parts = std::mem::take(uri).into_parts();
    parts.scheme = Some(Scheme::HTTP);
    parts.authority = Some(Authority::from_static(AUTHORITY));
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
    }
    *uri = Uri::from_parts(parts)?;
    Ok(())
}

/// A failed exchange. A stream the plugin reset keeps its HTTP/2 reason
/// (tonic maps it: REFUSED_STREAM to `Unavailable`, CANCEL to `Cancelled`);
/// a connection that is gone or going is `Unavailable`, as in grpc-go
/// ("transport is closing").
fn transport_failure(error: h2::Error) -> BoxError {
    if error.is_reset() && error.is_remote() {
        return Box::new(error);
    }
    let mut status =
        tonic::Status::unavailable(format!("the connection to the plugin failed: {error}"));
    status.set_source(std::sync::Arc::new(error));
    Box::new(status)
}

/// Parses a `grpc-timeout` header value: at most 8 digits and a unit
/// (H, M, S, m, u, n), as the gRPC HTTP/2 protocol spec defines it.
/// Anything else is ignored, as grpc-go's server does.
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let digits = value.get(..value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match value.as_bytes().last()? {
        b'H' => Duration::from_secs(amount.checked_mul(3600)?),
        b'M' => Duration::from_secs(amount.checked_mul(60)?),
        b'S' => Duration::from_secs(amount),
        b'm' => Duration::from_millis(amount),
        b'u' => Duration::from_micros(amount),
        b'n' => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_values() {
        let cases: &[(&str, Option<Duration>)] = &[
            ("1H", Some(Duration::from_secs(3600))),
            ("2M", Some(Duration::from_secs(120))),
            ("3S", Some(Duration::from_secs(3))),
            ("300m", Some(Duration::from_millis(300))),
            ("99999999u", Some(Duration::from_micros(99_999_999))),
            ("5n", Some(Duration::from_nanos(5))),
            ("0m", Some(Duration::ZERO)),
            ("", None),
            ("m", None),
            ("100", None),
            ("123456789m", None),
            ("10x", None),
            ("-1S", None),
            ("1.5S", None),
            ("½S", None),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_grpc_timeout(value), *expected, "{value:?}");
        }
    }

    #[test]
    fn requests_gain_scheme_and_authority() {
        let mut uri = Uri::from_static("/plugin.KV/Get");
        add_origin(&mut uri).unwrap();
        assert_eq!(uri.to_string(), "http://plugin/plugin.KV/Get");
        let mut full = Uri::from_static("http://elsewhere/x.Y/Z");
        add_origin(&mut full).unwrap();
        assert_eq!(full.to_string(), "http://elsewhere/x.Y/Z");
    }

    /// A body whose end comes late (after a blocking pause, so that on a
    /// multi-thread runtime the connection task handles the server's whole
    /// answer first).
    struct SlowEnd {
        data: Option<Bytes>,
    }

    impl http_body::Body for SlowEnd {
        type Data = Bytes;
        type Error = tonic::Status;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
            match self.data.take() {
                Some(data) => Poll::Ready(Some(Ok(Frame::data(data)))),
                None => {
                    std::thread::sleep(Duration::from_millis(300));
                    Poll::Ready(None)
                }
            }
        }
    }

    /// grpc-go answers a unary call once it has the message, and resets a
    /// stream the client has not closed by then. The request's message
    /// goes out with END_STREAM even when the body says it has ended only
    /// later, so the call gets its response (it failed with "inactive
    /// stream", or with the reset, when the end went out on its own).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_response_before_the_request_ends_is_the_result() {
        let (client_io, server_io) = tokio::io::duplex(1 << 16);
        let server = tokio::spawn(async move {
            let mut connection = h2::server::handshake(server_io).await.unwrap();
            // The connection makes progress only while `accept` is polled.
            while let Some(accepted) = connection.accept().await {
                let (request, mut respond) = accepted.unwrap();
                tokio::spawn(async move {
                    let mut body = request.into_body();
                    let first = body.data().await.unwrap().unwrap();
                    let head = http::Response::builder()
                        .header("content-type", "application/grpc")
                        .body(())
                        .unwrap();
                    let mut stream = respond.send_response(head, false).unwrap();
                    stream.send_data(first, false).unwrap();
                    let mut trailers = http::HeaderMap::new();
                    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
                    stream.send_trailers(trailers).unwrap();
                    // grpc-go resets a stream the client has not closed.
                    if !body.is_end_stream() {
                        stream.send_reset(h2::Reason::NO_ERROR);
                    }
                });
            }
        });
        let mut channel = handshake(client_io, "test".to_owned()).await.unwrap();
        let request = http::Request::builder()
            .method("POST")
            .uri("/x.Y/Z")
            .header("content-type", "application/grpc")
            .body(Body::new(SlowEnd {
                data: Some(Bytes::from_static(b"\0\0\0\0\x01!")),
            }))
            .unwrap();
        let call = tower::Service::call(&mut channel, request);
        let response = tokio::time::timeout(Duration::from_secs(5), call)
            .await
            .unwrap()
            .unwrap();
        let collected = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap();
        let trailers = collected.trailers().cloned().unwrap_or_default();
        assert_eq!(collected.to_bytes(), Bytes::from_static(b"\0\0\0\0\x01!"));
        assert_eq!(trailers.get("grpc-status").unwrap(), "0");
        drop(channel);
        let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    }

    #[tokio::test]
    #[cfg(feature = "host")]
    async fn an_unavailable_channel_fails_every_call() {
        let channel = Channel::unavailable("the plugin speaks net/rpc");
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
        let status = health
            .check(tonic_health::pb::HealthCheckRequest::default())
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert_eq!(status.message(), "the plugin speaks net/rpc");
    }
}

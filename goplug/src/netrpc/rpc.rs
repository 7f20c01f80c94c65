//! Go's `net/rpc` over one byte stream, with gob bodies: a client that
//! multiplexes concurrent calls by sequence number, and a server that runs
//! each call as its own task, as Go's does.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

#[cfg(feature = "plugin")]
use super::codec::ServerCodec;
use super::codec::{ClientCodec, RequestHeader, ResponseHeader};
use super::gob::{Gob, Limits, Type, Value};
use crate::error::{Error, Result};
use crate::sync::lock;

/// Go's `rpc.ErrShutdown`.
pub const ERR_SHUTDOWN: &str = "connection is shut down";

/// Bytes read from the connection at a time.
const READ_CHUNK: usize = 64 * 1024;

/// The largest encode buffer a connection keeps for its next message.
/// Encoding into a fresh `Vec` grew it by doubling and, past glibc's mmap
/// threshold, page-faulted it in anew for every large message.
const RETAINED_FRAME_BYTES: usize = 4 * 1024 * 1024;

/// Readies a connection's encode buffer for the next message.
fn reuse(frame: &mut Vec<u8>) {
    if frame.capacity() > RETAINED_FRAME_BYTES {
        *frame = Vec::new();
    } else {
        frame.clear();
    }
}

/// A boxed future, as handlers return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A gob body: its type and value.
pub type Body = (Type, Value);

type Reply = std::result::Result<Body, CallFailure>;

#[derive(Debug)]
enum CallFailure {
    /// The server's error string.
    Remote(String),
    /// The connection ended or could not be read.
    Shutdown(String),
}

/// A net/rpc client on one stream. Cheap to clone; calls may run concurrently.
#[derive(Clone)]
pub struct RpcClient {
    target: Target,
}

#[derive(Clone)]
enum Target {
    Stream(Arc<ClientInner>),
    /// Each call goes where the route says: a supervised plugin's current
    /// process.
    #[cfg(feature = "host")]
    Routed(Arc<dyn RpcRoute>),
}

/// Where a routed client's calls go.
#[cfg(feature = "host")]
pub(crate) trait RpcRoute: Send + Sync + 'static {
    fn call_value<'a>(
        &'a self,
        service_method: &'a str,
        ty: &'a Type,
        body: &'a Value,
    ) -> BoxFuture<'a, Result<Body>>;
}

struct ClientInner {
    /// The codec, the stream and the encode buffer.
    writer: tokio::sync::Mutex<(ClientCodec, Box<dyn AsyncWrite + Send + Unpin>, Vec<u8>)>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Reply>>>,
    next_seq: AtomicU64,
    /// Why the connection is gone, once it is.
    shut_down: Mutex<Option<String>>,
    stop: CancellationToken,
}

impl std::fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.target {
            Target::Stream(inner) => f
                .debug_struct("RpcClient")
                .field("next_seq", &inner.next_seq.load(Ordering::Relaxed))
                .finish_non_exhaustive(),
            #[cfg(feature = "host")]
            Target::Routed(_) => f.debug_struct("RpcClient").field("routed", &true).finish(),
        }
    }
}

impl Drop for ClientInner {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl RpcClient {
    /// A client over `stream`; a reader task runs until the stream ends or
    /// the last clone of the client is dropped.
    pub fn new<S>(stream: S) -> Self
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (reader, writer) = tokio::io::split(stream);
        let inner = Arc::new(ClientInner {
            writer: tokio::sync::Mutex::new((
                ClientCodec::new(Limits::default()),
                Box::new(writer),
                Vec::new(),
            )),
            pending: Mutex::new(HashMap::new()),
            next_seq: AtomicU64::new(0),
            shut_down: Mutex::new(None),
            stop: CancellationToken::new(),
        });
        let weak = Arc::downgrade(&inner);
        let stop = inner.stop.clone();
        tokio::spawn(async move {
            let reason = tokio::select! {
                reason = read_responses(reader, weak.clone()) => reason,
                () = stop.cancelled() => ERR_SHUTDOWN.to_owned(),
            };
            if let Some(inner) = weak.upgrade() {
                inner.fail_all(reason);
            }
        });
        Self {
            target: Target::Stream(inner),
        }
    }

    /// A client whose every call takes `route`.
    #[cfg(feature = "host")]
    pub(crate) fn routed(route: Arc<dyn RpcRoute>) -> Self {
        Self {
            target: Target::Routed(route),
        }
    }

    /// Calls `service_method` (`"Plugin.Greet"`) with a typed argument and reply.
    ///
    /// # Errors
    ///
    /// [`Error::RemoteCall`] with the server's error string;
    /// [`Error::NetRpc`] when the connection is gone or a body does not fit.
    pub async fn call<A: Gob, R: Gob>(&self, service_method: &str, args: &A) -> Result<R> {
        let (_, value) = self
            .call_value(service_method, &A::gob_type(), &args.to_gob())
            .await?;
        R::from_gob(value)
            .map_err(|e| netrpc_error(service_method, format!("reading the reply: {e}")))
    }

    /// Calls `service_method` with an untyped body; returns the reply's
    /// type and value as the server sent them.
    ///
    /// # Errors
    ///
    /// As [`call`](Self::call).
    pub async fn call_value(&self, service_method: &str, ty: &Type, body: &Value) -> Result<Body> {
        match &self.target {
            Target::Stream(inner) => call_on_stream(inner, service_method, ty, body).await,
            #[cfg(feature = "host")]
            Target::Routed(route) => route.call_value(service_method, ty, body).await,
        }
    }

    /// Whether the connection is gone (never, for a routed client: its
    /// calls go to whichever connection serves).
    pub fn is_shut_down(&self) -> bool {
        match &self.target {
            Target::Stream(inner) => lock(&inner.shut_down).is_some(),
            #[cfg(feature = "host")]
            Target::Routed(_) => false,
        }
    }
}

async fn call_on_stream(
    inner: &ClientInner,
    service_method: &str,
    ty: &Type,
    body: &Value,
) -> Result<Body> {
    let seq = inner.next_seq.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = oneshot::channel();
    {
        // Held while registering, as `fail_all` holds it while
        // draining, so a call cannot slip in after the drain.
        let shut_down = lock(&inner.shut_down);
        if let Some(reason) = shut_down.clone() {
            return Err(netrpc_error(service_method, reason));
        }
        lock(&inner.pending).insert(seq, tx);
    }
    let sent = async {
        let mut writer = inner.writer.lock().await;
        let (codec, stream, frame) = &mut *writer;
        reuse(frame);
        codec
            .encode_request(
                &RequestHeader {
                    service_method: service_method.to_owned(),
                    seq,
                },
                ty,
                body,
                frame,
            )
            .map_err(|e| format!("encoding the request: {e}"))?;
        stream
            .write_all(frame)
            .await
            .map_err(|e| format!("{ERR_SHUTDOWN}: {e}"))?;
        stream
            .flush()
            .await
            .map_err(|e| format!("{ERR_SHUTDOWN}: {e}"))
    };
    if let Err(reason) = sent.await {
        lock(&inner.pending).remove(&seq);
        return Err(netrpc_error(service_method, reason));
    }
    match rx.await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(CallFailure::Remote(message))) => Err(Error::RemoteCall {
            method: service_method.to_owned(),
            message,
        }),
        Ok(Err(CallFailure::Shutdown(reason))) => Err(netrpc_error(service_method, reason)),
        Err(_) => Err(netrpc_error(service_method, ERR_SHUTDOWN.to_owned())),
    }
}

impl ClientInner {
    fn fail_all(&self, reason: String) {
        let mut shut_down = lock(&self.shut_down);
        *shut_down = Some(reason.clone());
        for (_, waiter) in lock(&self.pending).drain() {
            let _ = waiter.send(Err(CallFailure::Shutdown(reason.clone())));
        }
    }
}

/// Reads responses until the stream ends; returns why it stopped.
async fn read_responses(
    mut reader: impl AsyncRead + Unpin,
    inner: std::sync::Weak<ClientInner>,
) -> String {
    let mut codec = ClientCodec::new(Limits::default());
    let mut buf: Vec<u8> = Vec::new();
    loop {
        loop {
            match codec.decode_response(&buf) {
                Ok(Some((header, ty, value, consumed))) => {
                    buf.drain(..consumed);
                    let Some(inner) = inner.upgrade() else {
                        return ERR_SHUTDOWN.to_owned();
                    };
                    deliver(&inner, header, (ty, value));
                }
                Ok(None) => break,
                Err(e) => return format!("reading a response: {e}"),
            }
        }
        buf.reserve(READ_CHUNK);
        match reader.read_buf(&mut buf).await {
            Ok(0) => return ERR_SHUTDOWN.to_owned(),
            Ok(_) => {}
            Err(e) => return format!("{ERR_SHUTDOWN}: {e}"),
        }
    }
}

fn deliver(inner: &ClientInner, header: ResponseHeader, body: Body) {
    let Some(waiter) = lock(&inner.pending).remove(&header.seq) else {
        // Go logs and drops a response to a call it no longer waits for.
        tracing::debug!(seq = header.seq, "net/rpc response for no pending call");
        return;
    };
    let reply = if header.error.is_empty() {
        Ok(body)
    } else {
        Err(CallFailure::Remote(header.error))
    };
    let _ = waiter.send(reply);
}

/// What a net/rpc server dispatches to: one named service (`Plugin`,
/// `Control`, `Dispenser`) and its methods.
pub trait Service: Send + Sync + 'static {
    /// Whether the service has `method`.
    fn has_method(&self, method: &str) -> bool;

    /// Runs `method` with the request body; the reply body, or the error
    /// string sent back to the caller.
    fn call(
        &self,
        method: &str,
        body: Body,
    ) -> BoxFuture<'static, std::result::Result<Body, String>>;
}

/// A [`Service`] built from typed async functions, one per method: how a
/// plugin implements its net/rpc interface.
///
/// ```
/// use goplug::netrpc::gob::GoInterface;
/// use goplug::netrpc::rpc::NetRpcServer;
///
/// let greeter = NetRpcServer::new()
///     .method("Greet", |_: GoInterface| async { Ok::<_, String>("Hello!".to_owned()) });
/// ```
#[derive(Default)]
pub struct NetRpcServer {
    methods: HashMap<String, Method>,
}

type Method =
    Arc<dyn Fn(Value) -> BoxFuture<'static, std::result::Result<Body, String>> + Send + Sync>;

impl std::fmt::Debug for NetRpcServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetRpcServer")
            .field("methods", &self.methods.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl NetRpcServer {
    /// A service without methods.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `name`: `handler` gets the decoded argument and returns the
    /// reply or an error string (Go's `error`).
    #[must_use]
    pub fn method<A, R, F, Fut>(mut self, name: &str, handler: F) -> Self
    where
        A: Gob + Send + 'static,
        R: Gob + Send + 'static,
        F: Fn(A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<R, String>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        self.methods.insert(
            name.to_owned(),
            Arc::new(move |value: Value| {
                let handler = handler.clone();
                Box::pin(async move {
                    let args = A::from_gob(value).map_err(|e| format!("gob: {e}"))?;
                    let reply = handler(args).await?;
                    Ok((R::gob_type(), reply.to_gob()))
                })
            }),
        );
        self
    }
}

impl Service for NetRpcServer {
    fn has_method(&self, method: &str) -> bool {
        self.methods.contains_key(method)
    }

    fn call(
        &self,
        method: &str,
        (_, value): Body,
    ) -> BoxFuture<'static, std::result::Result<Body, String>> {
        match self.methods.get(method) {
            Some(method) => method(value),
            None => {
                let method = method.to_owned();
                Box::pin(async move { Err(format!("rpc: can't find method {method}")) })
            }
        }
    }
}

/// The services one net/rpc server offers, by name.
#[cfg(feature = "plugin")]
#[derive(Clone, Default)]
pub(crate) struct ServiceMap {
    services: HashMap<String, Arc<dyn Service>>,
}

#[cfg(feature = "plugin")]
impl ServiceMap {
    pub(crate) fn with(mut self, name: &str, service: Arc<dyn Service>) -> Self {
        self.services.insert(name.to_owned(), service);
        self
    }

    /// Go's dispatch, with its error texts.
    fn dispatch(
        &self,
        service_method: &str,
        body: Body,
    ) -> BoxFuture<'static, std::result::Result<Body, String>> {
        let refuse = |text: String| -> BoxFuture<'static, std::result::Result<Body, String>> {
            Box::pin(async move { Err(text) })
        };
        let Some((service, method)) = service_method.rsplit_once('.') else {
            return refuse(format!(
                "rpc: service/method request ill-formed: {service_method}"
            ));
        };
        let Some(service) = self.services.get(service) else {
            return refuse(format!("rpc: can't find service {service_method}"));
        };
        if !service.has_method(method) {
            return refuse(format!("rpc: can't find method {service_method}"));
        }
        service.call(method, body)
    }
}

/// Serves `services` on `stream` until it ends or `stop` is cancelled.
/// Each call runs as its own task; replies are written as they finish.
#[cfg(feature = "plugin")]
pub(crate) async fn serve<S>(stream: S, services: ServiceMap, stop: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut reader, writer) = tokio::io::split(stream);
    let writer = Arc::new(tokio::sync::Mutex::new((
        ServerCodec::new(Limits::default()),
        writer,
        Vec::new(),
    )));
    let mut codec = ServerCodec::new(Limits::default());
    let mut buf: Vec<u8> = Vec::new();
    let calls = tokio_util::task::TaskTracker::new();
    'reading: loop {
        loop {
            match codec.decode_request(&buf) {
                Ok(Some((header, ty, value, consumed))) => {
                    buf.drain(..consumed);
                    let reply = services.dispatch(&header.service_method, (ty, value));
                    let writer = writer.clone();
                    calls.spawn(async move {
                        let outcome = reply.await;
                        respond(&writer, header, outcome).await;
                    });
                }
                Ok(None) => break,
                Err(e) => {
                    // Go's server closes the connection on a bad request.
                    tracing::debug!("net/rpc server: {e}");
                    break 'reading;
                }
            }
        }
        buf.reserve(READ_CHUNK);
        let read = tokio::select! {
            read = reader.read_buf(&mut buf) => read,
            () = stop.cancelled() => break,
        };
        if matches!(read, Ok(0) | Err(_)) {
            break;
        }
    }
    calls.close();
    // Calls in flight get a bounded moment to finish and write their reply,
    // even once stopping: the host's `Control.Quit` cancels `stop` from
    // inside its own call, and its reply must still go out (a host that
    // gets no reply takes the plugin for hung).
    let _ = tokio::time::timeout(REPLY_DRAIN, calls.wait()).await;
}

/// How long a stopping server waits for the replies of calls in flight.
#[cfg(feature = "plugin")]
const REPLY_DRAIN: std::time::Duration = std::time::Duration::from_secs(2);

#[cfg(feature = "plugin")]
async fn respond<W: AsyncWrite + Unpin>(
    writer: &tokio::sync::Mutex<(ServerCodec, W, Vec<u8>)>,
    request: RequestHeader,
    outcome: std::result::Result<Body, String>,
) {
    let (error, (ty, value)) = match outcome {
        Ok(body) => (String::new(), body),
        // Go's invalidRequest: an empty struct body.
        Err(error) => (error, (<() as Gob>::gob_type(), ().to_gob())),
    };
    let header = ResponseHeader {
        service_method: request.service_method,
        seq: request.seq,
        error,
    };
    let mut writer = writer.lock().await;
    let (codec, stream, frame) = &mut *writer;
    reuse(frame);
    if let Err(e) = codec.encode_response(&header, &ty, &value, frame) {
        tracing::warn!(
            "net/rpc server: encoding the reply to {}: {e}",
            header.service_method
        );
        return;
    }
    let _ = async {
        stream.write_all(frame).await?;
        stream.flush().await
    }
    .await;
}

fn netrpc_error(method: &str, reason: String) -> Error {
    Error::NetRpc {
        method: method.to_owned(),
        reason,
    }
}

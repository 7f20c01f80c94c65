//! Connecting the host's gRPC channel to the address from the handshake.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;

use super::channel::Channel;
use crate::transport::coalesce::CoalescedWrites;

use crate::error::{Error, Result};
use crate::protocol::handshake::PluginAddress;

/// The shortest connect budget, even when the start timeout is nearly spent.
const MIN_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// TLS for the connection to the plugin.
#[derive(Clone, Debug)]
pub(crate) struct TlsConnect {
    pub(crate) config: Arc<rustls::ClientConfig>,
    pub(crate) server_name: ServerName<'static>,
    /// The version the latest connection negotiated.
    pub(crate) negotiated: Arc<std::sync::Mutex<Option<crate::transport::tls::TlsVersion>>>,
}

impl TlsConnect {
    /// A host's own TLS configuration (go-plugin's `TLSConfig`), with ALPN
    /// `h2` added if missing: grpc-go plugins require it.
    #[cfg(feature = "host")]
    pub(crate) fn from_user(
        config: rustls::ClientConfig,
        server_name: ServerName<'static>,
    ) -> Self {
        Self {
            config: Arc::new(crate::transport::tls::with_h2(config)),
            server_name,
            negotiated: Arc::default(),
        }
    }
}

/// Marks a TLS handshake failure inside the connector's `io::Error`, so
/// that it can be told apart from a failed dial.
#[derive(Debug)]
struct TlsFailure(String);

impl std::fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsFailure {}

/// A boxed byte stream to a plugin.
pub(crate) type BoxedIo = Box<dyn Io>;

/// Opens a new byte stream to the plugin: a socket, or a multiplexed stream.
pub(crate) type Dialer = Arc<
    dyn Fn()
            -> std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<BoxedIo>> + Send>>
        + Send
        + Sync,
>;

/// Dials `address` directly: a Unix or TCP socket.
pub(crate) fn socket_dialer(address: &PluginAddress) -> Dialer {
    let target = address.clone();
    Arc::new(move || {
        let target = target.clone();
        Box::pin(async move { dial_socket(&target).await })
    })
}

/// One connection to `address`, without TLS.
pub(crate) async fn dial_socket(address: &PluginAddress) -> std::io::Result<BoxedIo> {
    Ok(match address {
        PluginAddress::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await?),
        PluginAddress::Tcp(addr) => {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Box::new(stream)
        }
    })
}

/// Connects eagerly, so an unreachable plugin (or a failed TLS handshake)
/// is an error of `start` rather than of the first call (go-plugin dials
/// lazily).
pub(crate) async fn connect(
    address: &PluginAddress,
    timeout: Duration,
    tls: Option<TlsConnect>,
) -> Result<Channel> {
    connect_with(socket_dialer(address), address, timeout, tls).await
}

/// [`connect`] through `dialer`; `address` names the plugin in errors.
pub(crate) async fn connect_with(
    dialer: Dialer,
    address: &PluginAddress,
    timeout: Duration,
    tls: Option<TlsConnect>,
) -> Result<Channel> {
    let timeout = timeout.max(MIN_CONNECT_TIMEOUT);
    let failed = |reason: String, error: Option<crate::error::BoxError>| Error::Connect {
        address: address.to_string(),
        reason,
        error,
    };
    let started = tokio::time::Instant::now();
    let stream = match tokio::time::timeout(timeout, open(&dialer, tls)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            return Err(match tls_failure(&e) {
                Some(reason) => Error::Tls {
                    context: "connecting to the plugin",
                    reason: format!("TLS handshake with {address} failed: {reason}"),
                    error: Some(Box::new(e)),
                },
                None => failed(error_chain(&e), Some(Box::new(e))),
            });
        }
        Err(_) => return Err(failed(format!("no connection within {timeout:?}"), None)),
    };
    let handshake = super::channel::handshake(CoalescedWrites::new(stream), address.to_string());
    let channel = match tokio::time::timeout(timeout, handshake).await {
        Ok(Ok(channel)) => channel,
        Ok(Err(e)) => return Err(failed(error_chain(&e), Some(Box::new(e)))),
        Err(_) => {
            return Err(failed(
                format!("no HTTP/2 connection within {timeout:?}"),
                None,
            ));
        }
    };
    let remaining = timeout
        .saturating_sub(started.elapsed())
        .max(MIN_CONNECT_TIMEOUT);
    probe(&channel, address, remaining).await.map(|()| channel)
}

/// Dials, then runs the TLS handshake when there is TLS.
async fn open(dialer: &Dialer, tls: Option<TlsConnect>) -> std::io::Result<BoxedIo> {
    let stream = dialer().await?;
    let Some(tls) = tls else {
        return Ok(stream);
    };
    let connector = tokio_rustls::TlsConnector::from(tls.config);
    let stream = connector
        .connect(tls.server_name, stream)
        .await
        .map_err(|e| std::io::Error::other(TlsFailure(e.to_string())))?;
    let version = stream.get_ref().1.protocol_version();
    if let Ok(mut negotiated) = tls.negotiated.lock() {
        *negotiated = version.and_then(crate::transport::tls::TlsVersion::from_rustls);
    }
    Ok(Box::new(stream))
}

/// One request over the new channel. The HTTP/2 handshake (and, with TLS
/// 1.3, the server's verdict on the client certificate) completes only
/// when the first request goes out, so without this a plaintext/TLS
/// mismatch or a refused certificate would surface at the user's first
/// call. Any gRPC status from the plugin proves the connection; only a
/// transport failure is an error.
async fn probe(channel: &Channel, address: &PluginAddress, timeout: Duration) -> Result<()> {
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let request = tonic_health::pb::HealthCheckRequest {
        service: crate::protocol::HEALTH_SERVICE_NAME.to_owned(),
    };
    match tokio::time::timeout(timeout, health.check(request)).await {
        Err(_) => Err(Error::Connect {
            address: address.to_string(),
            reason: format!("the plugin did not answer a first request within {timeout:?}"),
            error: None,
        }),
        Ok(Ok(_)) => Ok(()),
        // A status the plugin sent (Unimplemented from a plugin without
        // health, say): the connection works. tonic reports local transport
        // failures as statuses with a source error.
        Ok(Err(status))
            if status.code() != tonic::Code::Unavailable
                && std::error::Error::source(&status).is_none() =>
        {
            Ok(())
        }
        Ok(Err(status)) => {
            let mut reason = format!("{}: {}", status.code(), status.message());
            if let Some(source) = std::error::Error::source(&status) {
                reason.push_str(": ");
                reason.push_str(&error_chain(source));
            }
            Err(if rustls_failure(&status) {
                Error::Tls {
                    context: "connecting to the plugin",
                    reason: format!("TLS with {address} failed: {reason}"),
                    error: Some(Box::new(status)),
                }
            } else {
                Error::Connect {
                    address: address.to_string(),
                    reason,
                    error: Some(Box::new(status)),
                }
            })
        }
    }
}

/// Whether a rustls error (such as the peer's alert refusing our
/// certificate) is in an error's chain.
fn rustls_failure(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        let inner = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn std::error::Error + 'static));
        if e.is::<rustls::Error>()
            || inner.is_some_and(|i| i.is::<rustls::Error>() || i.is::<TlsFailure>())
        {
            return true;
        }
        current = e.source();
    }
    false
}

/// Finds a [`TlsFailure`] in an error's chain. `io::Error::source` skips
/// the error it wraps, so look inside each `io::Error` too.
fn tls_failure(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(failure) = e.downcast_ref::<TlsFailure>() {
            return Some(failure.0.clone());
        }
        if let Some(failure) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<TlsFailure>())
        {
            return Some(failure.0.clone());
        }
        current = e.source();
    }
    None
}

pub(crate) trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Io for T {}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

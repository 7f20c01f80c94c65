//! Connecting the host's gRPC channel to the address from the handshake.

use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::error::{Error, Result};
use crate::handshake::PluginAddress;

/// The shortest connect budget, even when the start timeout is nearly spent.
const MIN_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Connects eagerly, so an unreachable plugin is an error of `start`
/// rather than of the first call (go-plugin dials lazily).
pub(crate) async fn connect(address: &PluginAddress, timeout: Duration) -> Result<Channel> {
    let timeout = timeout.max(MIN_CONNECT_TIMEOUT);
    let failed = |reason: String| Error::Connect {
        address: address.to_string(),
        reason,
    };
    // The URI is never resolved: the connector below dials the plugin.
    let endpoint = Endpoint::from_static("http://plugin")
        .connect_timeout(timeout)
        .tcp_nodelay(true);
    let target = address.clone();
    let connector = tower::service_fn(move |_: Uri| {
        let target = target.clone();
        async move {
            match target {
                PluginAddress::Unix(path) => tokio::net::UnixStream::connect(path)
                    .await
                    .map(|s| TokioIo::new(Box::new(s) as Box<dyn Io>)),
                PluginAddress::Tcp(addr) => {
                    let stream = tokio::net::TcpStream::connect(addr).await?;
                    stream.set_nodelay(true)?;
                    Ok(TokioIo::new(Box::new(stream) as Box<dyn Io>))
                }
            }
        }
    });
    match tokio::time::timeout(timeout, endpoint.connect_with_connector(connector)).await {
        Ok(Ok(channel)) => Ok(channel),
        Ok(Err(e)) => Err(failed(error_chain(&e))),
        Err(_) => Err(failed(format!("no connection within {timeout:?}"))),
    }
}

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
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

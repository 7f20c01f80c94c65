//! [`ServeConfig`] (go-plugin's `ServeConfig`) and the [`Runtime`] choice.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::Transport;
use super::services::Services;
use crate::protocol::handshake::HandshakeConfig;
use crate::transport::tls::{self, CertCurve, TlsVersion};

/// Completes when the plugin should stop serving.
pub(super) type ShutdownSignal = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Everything [`serve`](super::serve) needs: go-plugin's `ServeConfig`.
pub struct ServeConfig {
    pub(super) handshake: HandshakeConfig,
    pub(super) versions: BTreeMap<u32, Services>,
    pub(super) transport: Transport,
    pub(super) descriptor_sets: Vec<&'static [u8]>,
    pub(super) shutdown_signal: Option<ShutdownSignal>,
    pub(super) tls: Option<Arc<rustls::ServerConfig>>,
    pub(super) max_tls_version: TlsVersion,
    pub(super) cert_curve: CertCurve,
    pub(super) exit_with_host: bool,
    pub(super) runtime: Runtime,
    /// See [`ServeConfig::plugin_version`].
    pub(super) plugin_version: Option<String>,
}

/// The tokio runtime [`run`](super::run) and [`run_debug`](super::run_debug)
/// build for a plugin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Runtime {
    /// One worker thread per core (the default): a slow handler does not
    /// hold up the others.
    #[default]
    MultiThread,
    /// Everything on the main thread: lower latency for one caller, fewer
    /// calls/s under many concurrent callers (BENCHMARKS.md has the
    /// figures), and a handler that blocks or computes for long stalls
    /// every other call.
    CurrentThread,
}

impl fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeConfig")
            .field("handshake", &self.handshake)
            .field("versions", &self.versions)
            .field("transport", &self.transport)
            .field("plugin_version", &self.plugin_version)
            .finish_non_exhaustive()
    }
}

impl ServeConfig {
    /// A config with the handshake (cookie and default version) and no plugins yet.
    pub fn new(handshake: HandshakeConfig) -> Self {
        Self {
            handshake,
            versions: BTreeMap::new(),
            transport: Transport::default(),
            descriptor_sets: Vec::new(),
            shutdown_signal: None,
            tls: None,
            max_tls_version: TlsVersion::default(),
            cert_curve: CertCurve::default(),
            exit_with_host: true,
            runtime: Runtime::default(),
            plugin_version: None,
        }
    }

    /// Which tokio runtime [`run`](super::run) and
    /// [`run_debug`](super::run_debug) build (default
    /// [`Runtime::MultiThread`]); [`serve`](super::serve) runs on the caller's.
    #[must_use]
    pub fn runtime(mut self, runtime: Runtime) -> Self {
        self.runtime = runtime;
        self
    }

    /// Serves `plugins` at the handshake's protocol version (go-plugin's
    /// `Plugins`). A set given with [`version`](Self::version) for the same
    /// number wins, as in go-plugin.
    #[must_use]
    pub fn plugins(mut self, plugins: Services) -> Self {
        self.versions
            .entry(self.handshake.protocol_version)
            .or_insert(plugins);
        self
    }

    /// Serves `plugins` when the host negotiates `version` (go-plugin's
    /// `VersionedPlugins`). The highest version both sides have wins.
    #[must_use]
    pub fn version(mut self, version: u32, plugins: Services) -> Self {
        self.versions.insert(version, plugins);
        self
    }

    /// Chooses how to listen (default: a Unix socket).
    #[must_use]
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// Registers an encoded `FileDescriptorSet` of your services with the
    /// reflection service, so tools such as `grpcurl` can describe them.
    /// The reflection index is built on the first reflection request, not
    /// at start-up: a set that does not decode makes those requests fail
    /// with `Internal`.
    #[must_use]
    pub fn file_descriptor_set(mut self, encoded: &'static [u8]) -> Self {
        self.descriptor_sets.push(encoded);
        self
    }

    /// Serves over TLS with this configuration (go-plugin's `TLSProvider`).
    /// It takes precedence over automatic mutual TLS, as in go-plugin. ALPN
    /// `h2` is added if missing: grpc-go hosts require it.
    #[must_use]
    pub fn tls(mut self, config: rustls::ServerConfig) -> Self {
        self.tls = Some(Arc::new(tls::with_h2(config)));
        self
    }

    /// Limits the TLS version of automatic mutual TLS (default: 1.3 or 1.2).
    #[must_use]
    pub fn max_tls_version(mut self, version: TlsVersion) -> Self {
        self.max_tls_version = version;
        self
    }

    /// The curve of this plugin's AutoMTLS certificate (default P-256).
    #[must_use]
    pub fn cert_curve(mut self, curve: CertCurve) -> Self {
        self.cert_curve = curve;
        self
    }

    /// Whether the plugin shuts down on its own when the process that
    /// launched it exits (default: yes, unless the host asked it to keep
    /// running). go-plugin plugins run on as orphans instead.
    #[must_use]
    pub fn exit_with_host(mut self, exit: bool) -> Self {
        self.exit_with_host = exit;
        self
    }

    /// Stops serving when `signal` completes, as a host's shutdown request does.
    #[must_use]
    pub fn with_graceful_shutdown(
        mut self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Self {
        self.shutdown_signal = Some(Box::pin(signal));
        self
    }
}

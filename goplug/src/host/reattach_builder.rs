//! Configuring an attachment to a running plugin (go-plugin's
//! `ClientConfig.Reattach`): only the settings that apply to a plugin the
//! host did not launch, so a checksum, AutoMTLS or broker multiplexing
//! cannot be written after `reattach` at all.

use std::fmt;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::AsyncWrite;

use super::attach::{AttachPlan, attach};
use super::launch::mutual_tls;
use super::plugin_set::VersionedSets;
use super::stdio::SyncSink;
use super::ticket::AutoMtlsKeys;
use super::version::VersionCheck;
use super::{Client, PluginSet};
use crate::error::{Error, Result};
use crate::protocol::HandshakeConfig;
use crate::protocol::reattach::ReattachConfig;
use crate::transport::dial::TlsConnect;
use crate::transport::tls::AutoCert;

/// Attaches to a running plugin: made by [`ClientBuilder::reattach`] or
/// [`Client::reattach`].
///
/// [`ClientBuilder::reattach`]: super::ClientBuilder::reattach
#[must_use = "a builder does nothing until `start` is awaited"]
pub struct ReattachBuilder {
    pub(super) config: ReattachConfig,
    pub(super) handshake: HandshakeConfig,
    pub(super) versions: VersionedSets,
    pub(super) tls: Option<TlsConnect>,
    pub(super) start_timeout: Duration,
    pub(super) shutdown_grace: Duration,
    pub(super) sync_stdout: Option<SyncSink>,
    pub(super) sync_stderr: Option<SyncSink>,
    pub(super) version_check: VersionCheck,
    /// A launch-only setting given before `reattach`, refused at start.
    pub(super) conflict: Option<Error>,
    /// What a reattach ticket adds to the config.
    pub(super) ticket: Option<TicketParts>,
}

/// The parts of a [`ReattachTicket`](super::ReattachTicket) beyond its config.
pub(super) struct TicketParts {
    pub(super) auto_mtls: Option<AutoMtlsKeys>,
    pub(super) socket_dir: Option<std::path::PathBuf>,
}

impl fmt::Debug for ReattachBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReattachBuilder")
            .field("config", &self.config)
            .field("handshake", &self.handshake)
            .field("versions", &self.versions)
            .field("start_timeout", &self.start_timeout)
            .field("conflict", &self.conflict)
            .finish_non_exhaustive()
    }
}

impl ReattachBuilder {
    /// The plugins at the handshake's protocol version (go-plugin's
    /// `Plugins`).
    pub fn plugins(mut self, plugins: PluginSet) -> Self {
        self.versions
            .insert(self.handshake.protocol_version, plugins);
        self
    }

    /// The plugins at app protocol `version`, for a config that names it
    /// (go-plugin's `VersionedPlugins`).
    pub fn version(mut self, version: u32, plugins: PluginSet) -> Self {
        self.versions.insert(version, plugins);
        self
    }

    /// Connects over TLS (go-plugin's `TLSConfig`), verifying the plugin as
    /// `server_name`.
    pub fn tls(mut self, config: rustls::ClientConfig, server_name: ServerName<'static>) -> Self {
        self.tls = Some(TlsConnect::from_user(config, server_name));
        self
    }

    /// Bound on reaching and verifying the plugin.
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// How long the plugin has to exit after a shutdown request.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Where the plugin's stdout goes through `GRPCStdio`.
    pub fn sync_stdout(mut self, writer: impl AsyncWrite + Send + Unpin + 'static) -> Self {
        self.sync_stdout = Some(Box::new(writer));
        self
    }

    /// Where the plugin's stderr goes through `GRPCStdio`.
    pub fn sync_stderr(mut self, writer: impl AsyncWrite + Send + Unpin + 'static) -> Self {
        self.sync_stderr = Some(Box::new(writer));
        self
    }

    /// Dials the plugin, verifies it, and watches its pid for exit.
    ///
    /// # Errors
    ///
    /// [`Error::ChecksumAndReattach`] or [`Error::Config`] for a launch-only
    /// setting given before `reattach`, or a version given twice;
    /// [`Error::Reattach`] and connection errors otherwise; the version
    /// errors of [`require_version`](Self::require_version).
    pub async fn start(self) -> Result<Client> {
        let Self {
            config,
            handshake,
            versions,
            tls,
            start_timeout,
            shutdown_grace,
            sync_stdout,
            sync_stderr,
            version_check,
            conflict,
            ticket,
        } = self;
        if let Some(conflict) = conflict {
            return Err(conflict);
        }
        let (auto_mtls, socket_dir) = ticket
            .map(|ticket| (ticket.auto_mtls, ticket.socket_dir))
            .unwrap_or_default();
        let (tls, broker_tls) = match &auto_mtls {
            Some(keys) => {
                let own = AutoCert::from_der(keys.host_cert.clone(), keys.host_key.clone())?;
                let peer = rustls::pki_types::CertificateDer::from(keys.plugin_cert.clone());
                let (connect, broker) = mutual_tls(&own, peer, keys.max_tls_version)?;
                (Some(connect), Some(broker))
            }
            None => (tls, None),
        };
        let requirement = version_check.requirement()?;
        let deadline = tokio::time::Instant::now() + start_timeout;
        let client = attach(AttachPlan {
            config,
            versions: versions.into_sets()?,
            default_version: handshake.protocol_version,
            tls,
            timeout: start_timeout,
            shutdown_grace,
            sync: (sync_stdout, sync_stderr),
            broker_tls,
            socket_dir,
            auto_mtls_keys: auto_mtls,
        })
        .await?;
        match requirement {
            Some(requirement) => requirement.enforce(client, deadline).await,
            None => Ok(client),
        }
    }

    /// Attaches, runs `body`, then shuts the plugin down whatever `body`
    /// returns; see [`Client::scoped`].
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start).
    pub async fn run<T>(self, body: impl AsyncFnOnce(&Client) -> T) -> Result<T> {
        Ok(self.start().await?.scoped(body).await)
    }
}

impl Client {
    /// Attaches to a running plugin (go-plugin's `Reattach`) instead of
    /// launching one: `Client::reattach(HANDSHAKE, config).plugins(set).start()`.
    pub fn reattach(handshake: HandshakeConfig, config: ReattachConfig) -> ReattachBuilder {
        Client::builder(handshake).reattach(config)
    }
}

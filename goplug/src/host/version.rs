//! The plugin's semantic version on the host: asked once through Vault's
//! `logical.PluginVersion` service, and checked against the constraint a
//! host requires at start.

use std::time::Duration;

use semver::Version;

use super::Client;
use super::builder::ClientBuilder;
use super::reattach_builder::ReattachBuilder;
use crate::error::{Error, Result};
use crate::grpc::version::pb;
use crate::protocol::plugin_version::parse_reported_version;
use crate::protocol::{VersionConstraint, VersionConstraintError};

/// Bound on asking the version after start, as on a health check.
const VERSION_TIMEOUT: Duration = Duration::from_secs(5);

/// What a host that requires a version does with a plugin that reports
/// none: a Go plugin (go-plugin has no version service), an older plugin,
/// a net/rpc plugin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum MissingVersion {
    /// Refuse it with [`Error::PluginVersionMissing`] (the default: a
    /// constraint that cannot be checked is not met).
    #[default]
    Refuse,
    /// Accept it as if it met the constraint.
    Allow,
}

/// A builder's version requirement, checked when it starts.
#[derive(Debug, Default)]
pub(super) struct VersionCheck {
    constraint: Option<std::result::Result<VersionConstraint, VersionConstraintError>>,
    missing: MissingVersion,
}

/// A requirement that parsed.
#[derive(Debug)]
pub(super) struct Requirement {
    constraint: VersionConstraint,
    missing: MissingVersion,
}

/// What the plugin reported, asked once per client.
#[derive(Debug)]
pub(super) enum Reported {
    Version(Version),
    /// Why there is none.
    Missing(&'static str),
}

/// Where a client keeps what its plugin reported.
pub(super) type VersionCell = tokio::sync::OnceCell<Reported>;

impl VersionCheck {
    /// The requirement, or the constraint's parse error (before anything
    /// is launched).
    pub(super) fn requirement(self) -> Result<Option<Requirement>> {
        let missing = self.missing;
        self.constraint
            .transpose()
            .map(|constraint| {
                constraint.map(|constraint| Requirement {
                    constraint,
                    missing,
                })
            })
            .map_err(Error::from)
    }
}

impl Requirement {
    /// Asks the started plugin its version within `deadline` and keeps the
    /// client only if the version meets the constraint; otherwise the
    /// plugin is shut down and the error names both.
    pub(super) async fn enforce(
        self,
        client: Client,
        deadline: tokio::time::Instant,
    ) -> Result<Client> {
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let refusal = match client
            .plugin_version
            .get_or_try_init(|| ask(&client, remaining))
            .await
        {
            Ok(Reported::Version(version)) if self.constraint.matches(version) => {
                tracing::debug!(%version, constraint = %self.constraint, "plugin version accepted");
                return Ok(client);
            }
            Ok(Reported::Version(version)) => Error::PluginVersionUnmet {
                constraint: self.constraint,
                version: version.clone(),
            },
            Ok(Reported::Missing(reason)) if self.missing == MissingVersion::Allow => {
                tracing::debug!(
                    constraint = %self.constraint,
                    "the plugin reports no version ({reason}); accepted (MissingVersion::Allow)"
                );
                return Ok(client);
            }
            Ok(Reported::Missing(reason)) => Error::PluginVersionMissing {
                constraint: self.constraint,
                reason,
            },
            Err(e) => e,
        };
        let report = client.shutdown().await;
        tracing::debug!(?report, "plugin refused: {refusal}");
        Err(refusal)
    }
}

/// Asks the plugin's version: `Unimplemented`, an empty reply and net/rpc
/// mean none.
async fn ask(client: &Client, timeout: Duration) -> Result<Reported> {
    if client.connection.netrpc.is_some() {
        return Ok(Reported::Missing(
            "it speaks net/rpc, which has no version service",
        ));
    }
    let mut service = pb::plugin_version_client::PluginVersionClient::new(client.channel());
    let reply = match tokio::time::timeout(timeout, service.version(pb::Empty {})).await {
        Err(_) => {
            return Err(Error::Timeout {
                operation: "asking the plugin's version (logical.PluginVersion/Version)",
                timeout,
            });
        }
        Ok(Err(status)) if status.code() == tonic::Code::Unimplemented => {
            return Ok(Reported::Missing(
                "it serves no logical.PluginVersion service",
            ));
        }
        Ok(Err(status)) => {
            return Err(Error::PluginVersionCall {
                reason: format!("{}: {}", status.code(), status.message()),
                error: Some(Box::new(status)),
            });
        }
        Ok(Ok(reply)) => reply.into_inner().plugin_version,
    };
    if reply.trim().is_empty() {
        return Ok(Reported::Missing("it reported an empty version"));
    }
    Ok(Reported::Version(parse_reported_version(&reply)?))
}

impl Client {
    /// The plugin's semantic version, as it reports it through Vault's
    /// `logical.PluginVersion` service (asked once, then kept); `None` for a
    /// plugin that reports none: one that does not serve the service (Go
    /// plugins, unless they add it), one that reports an empty version, a
    /// net/rpc plugin. A leading `v` and missing numbers (`v1.4`) are read
    /// as go-version reads them (1.4.0).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPluginVersion`] for a reply that is not a version,
    /// [`Error::PluginVersionCall`] when the call fails other than with
    /// `Unimplemented`, [`Error::Timeout`] after 5 s. Errors are not kept:
    /// the next call asks again.
    pub async fn plugin_version(&self) -> Result<Option<&Version>> {
        let reported = self
            .plugin_version
            .get_or_try_init(|| ask(self, VERSION_TIMEOUT))
            .await?;
        Ok(match reported {
            Reported::Version(version) => Some(version),
            Reported::Missing(_) => None,
        })
    }
}

impl ClientBuilder {
    /// Requires the plugin's version to meet `constraint`, as Cargo or
    /// hashicorp/go-version write one: `>=1.2, <2`, `^1.2`, `~> 1.2`,
    /// `!= 1.3.0` ([`VersionConstraint`] has the syntax; the forms the two
    /// read differently, such as a bare `1.2`, are refused).
    ///
    /// After the handshake the host asks the plugin's version
    /// (`logical.PluginVersion/Version`, within the start timeout). A
    /// plugin whose version does not meet the constraint is shut down and
    /// `start` fails with [`Error::PluginVersionUnmet`]; one that reports
    /// no version is handled as [`missing_version`](Self::missing_version)
    /// says (default: refused). A constraint that does not parse fails
    /// `start` with [`Error::VersionConstraint`] before anything runs.
    pub fn require_version(mut self, constraint: &str) -> Self {
        self.version_check.constraint = Some(VersionConstraint::parse(constraint));
        self
    }

    /// [`require_version`](Self::require_version) with a parsed constraint,
    /// or a [`semver::VersionReq`] (read as Cargo reads it).
    pub fn require_version_constraint(mut self, constraint: impl Into<VersionConstraint>) -> Self {
        self.version_check.constraint = Some(Ok(constraint.into()));
        self
    }

    /// What to do with a plugin that reports no version when a version is
    /// required (default [`MissingVersion::Refuse`]).
    pub fn missing_version(mut self, missing: MissingVersion) -> Self {
        self.version_check.missing = missing;
        self
    }
}

impl ReattachBuilder {
    /// As [`ClientBuilder::require_version`], for the attached plugin: one
    /// that does not meet it is let go as [`Client::shutdown`] does (a
    /// plugin in test mode is only disconnected).
    pub fn require_version(mut self, constraint: &str) -> Self {
        self.version_check.constraint = Some(VersionConstraint::parse(constraint));
        self
    }

    /// As [`ClientBuilder::require_version_constraint`].
    pub fn require_version_constraint(mut self, constraint: impl Into<VersionConstraint>) -> Self {
        self.version_check.constraint = Some(Ok(constraint.into()));
        self
    }

    /// As [`ClientBuilder::missing_version`].
    pub fn missing_version(mut self, missing: MissingVersion) -> Self {
        self.version_check.missing = missing;
        self
    }
}

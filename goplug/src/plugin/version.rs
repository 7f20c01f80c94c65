//! The plugin's own semantic version, served through Vault's
//! `logical.PluginVersion` service when the plugin declares one.

use super::config::ServeConfig;
use crate::error::Result;
use crate::grpc::version::pb;
use crate::protocol::Protocol;
use crate::protocol::plugin_version::parse_declared_version;

impl ServeConfig {
    /// Declares the plugin's semantic version (`1.4.2`, `1.4.2-rc.1`, or
    /// `v1.4.2` as Vault plugins write it), served to hosts through Vault's
    /// `logical.PluginVersion` gRPC service, which goplug hosts
    /// (`ClientBuilder::require_version`), Vault and `goplug inspect`
    /// read. Without it the service is not served, as with Go plugins, and
    /// hosts see an unversioned plugin.
    ///
    /// A text that is not a full semantic version makes serving fail with
    /// [`Error::InvalidPluginVersion`](crate::Error::InvalidPluginVersion)
    /// before the handshake. net/rpc has no such service: a plugin that
    /// negotiates net/rpc does not report its version.
    ///
    /// ```no_run
    /// # let config = goplug::plugin::ServeConfig::new(goplug::HandshakeConfig::new(1, "K", "v"));
    /// let config = config.plugin_version(env!("CARGO_PKG_VERSION"));
    /// ```
    #[must_use]
    pub fn plugin_version(mut self, version: impl Into<String>) -> Self {
        self.plugin_version = Some(version.into());
        self
    }
}

/// The version service for a declared `version`, checked; `None` when no
/// version was declared or the protocol cannot carry it.
pub(super) fn service(
    version: Option<String>,
    protocol: Protocol,
) -> Result<Option<pb::plugin_version_server::PluginVersionServer<PluginVersion>>> {
    let Some(version) = version else {
        return Ok(None);
    };
    parse_declared_version(&version)?;
    if protocol == Protocol::NetRpc {
        tracing::debug!(
            %version,
            "the plugin version is not served: net/rpc has no version service"
        );
        return Ok(None);
    }
    Ok(Some(pb::plugin_version_server::PluginVersionServer::new(
        PluginVersion { version },
    )))
}

/// `logical.PluginVersion`: answers with the declared text as written.
#[derive(Debug)]
pub(super) struct PluginVersion {
    version: String,
}

#[tonic::async_trait]
impl pb::plugin_version_server::PluginVersion for PluginVersion {
    async fn version(
        &self,
        _request: tonic::Request<pb::Empty>,
    ) -> std::result::Result<tonic::Response<pb::VersionReply>, tonic::Status> {
        Ok(tonic::Response::new(pb::VersionReply {
            plugin_version: self.version.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn only_a_declared_valid_version_is_served_over_grpc() {
        assert!(service(None, Protocol::Grpc).unwrap().is_none());
        assert!(
            service(Some("1.4.2".into()), Protocol::Grpc)
                .unwrap()
                .is_some()
        );
        assert!(
            service(Some("1.4.2".into()), Protocol::NetRpc)
                .unwrap()
                .is_none()
        );
        let e = service(Some("1.4".into()), Protocol::Grpc).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidPluginVersion { version, .. } if version == "1.4"),
            "{e:?}"
        );
        assert!(e.to_string().contains("major.minor.patch"), "{e}");
    }
}

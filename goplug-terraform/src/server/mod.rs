//! [`ProviderServer`]: a provider with its resources and data sources, as
//! the `tfplugin5` and `tfplugin6` services hosts call.

mod core;
mod v5;
mod v6;
mod wire;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use self::core::{Core, Entry};
use crate::data_source::DataSource;
use crate::erased::{DynDataSource, DynResource};
use crate::provider::Provider;
use crate::resource::Resource;

/// A provider with its resource and data source types, ready to
/// [`serve`](crate::serve). Type names must start with the provider's type
/// name and an underscore (`goplug_file` for provider `goplug`): hosts
/// find a resource's provider by that prefix.
pub struct ProviderServer {
    core: Core,
    versions: Vec<u32>,
}

impl fmt::Debug for ProviderServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderServer")
            .field("resources", &self.core.resources.keys().collect::<Vec<_>>())
            .field(
                "data_sources",
                &self.core.data_sources.keys().collect::<Vec<_>>(),
            )
            .field("versions", &self.versions)
            .finish()
    }
}

impl ProviderServer {
    /// A server for `provider`, with no resources or data sources yet,
    /// serving protocols 6 and 5 (the host picks the highest it has).
    pub fn new(provider: impl Provider) -> Self {
        let schema = provider.schema();
        Self {
            core: Core {
                provider: Entry::new(Arc::new(provider), schema),
                resources: BTreeMap::new(),
                data_sources: BTreeMap::new(),
            },
            versions: vec![5, 6],
        }
    }

    /// Adds resource type `type_name`; a second one of the same name
    /// replaces the first.
    #[must_use]
    pub fn resource(mut self, type_name: impl Into<String>, resource: impl Resource) -> Self {
        let schema = resource.schema();
        let imp: Arc<dyn DynResource> = Arc::new(resource);
        self.core
            .resources
            .insert(type_name.into(), Entry::new(imp, schema));
        self
    }

    /// Adds data source type `type_name`; a second one of the same name
    /// replaces the first.
    #[must_use]
    pub fn data_source(
        mut self,
        type_name: impl Into<String>,
        data_source: impl DataSource,
    ) -> Self {
        let schema = data_source.schema();
        let imp: Arc<dyn DynDataSource> = Arc::new(data_source);
        self.core
            .data_sources
            .insert(type_name.into(), Entry::new(imp, schema));
        self
    }

    /// Serves only these protocol versions (of 5 and 6; default both).
    #[must_use]
    pub fn protocol_versions(mut self, versions: impl IntoIterator<Item = u32>) -> Self {
        self.versions = versions
            .into_iter()
            .filter(|v| matches!(v, 5 | 6))
            .collect();
        self
    }

    /// The protocol versions served.
    pub fn versions(&self) -> &[u32] {
        &self.versions
    }

    /// The resource type names.
    pub fn resource_names(&self) -> impl Iterator<Item = &str> {
        self.core.resources.keys().map(String::as_str)
    }

    /// The data source type names.
    pub fn data_source_names(&self) -> impl Iterator<Item = &str> {
        self.core.data_sources.keys().map(String::as_str)
    }

    /// The tonic services, one per protocol version served.
    pub(crate) fn into_services(self) -> Services {
        let core = Arc::new(self.core);
        Services {
            v5: self.versions.contains(&5).then(|| {
                crate::tfplugin5::provider_server::ProviderServer::new(v5::V5(core.clone()))
            }),
            v6: self
                .versions
                .contains(&6)
                .then(|| crate::tfplugin6::provider_server::ProviderServer::new(v6::V6(core))),
        }
    }
}

/// The services of the versions served.
pub(crate) struct Services {
    pub(crate) v5: Option<crate::tfplugin5::provider_server::ProviderServer<v5::V5>>,
    pub(crate) v6: Option<crate::tfplugin6::provider_server::ProviderServer<v6::V6>>,
}

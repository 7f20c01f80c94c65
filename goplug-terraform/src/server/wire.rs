//! The tonic services of both protocol versions, from one template: the
//! messages of `tfplugin5` and `tfplugin6` that providers need have the
//! same fields, only some RPC names differ.

/// Conversions between a protocol's messages and the neutral forms.
macro_rules! conversions {
    ($pb:path) => {
        use crate::cty::{AttributePath, PathStep};
        use crate::diagnostics::{Diagnostics, Severity};
        use crate::schema::{Block, Nesting, Schema};
        use crate::server::core::Encoded;
        use $pb as pb;

        pub(crate) fn encoded(value: Option<pb::DynamicValue>) -> Encoded {
            value.map_or_else(Encoded::default, |v| Encoded {
                msgpack: v.msgpack,
                json: v.json,
            })
        }

        pub(crate) fn dynamic(bytes: Option<Vec<u8>>) -> Option<pb::DynamicValue> {
            bytes.map(|msgpack| pb::DynamicValue {
                msgpack,
                json: Vec::new(),
            })
        }

        pub(crate) fn path(path: &AttributePath) -> pb::AttributePath {
            use pb::attribute_path::{Step, step::Selector};
            pb::AttributePath {
                steps: path
                    .steps()
                    .iter()
                    .map(|step| Step {
                        selector: Some(match step {
                            PathStep::Attribute(name) => Selector::AttributeName(name.clone()),
                            PathStep::Key(key) => Selector::ElementKeyString(key.clone()),
                            PathStep::Index(i) => Selector::ElementKeyInt(*i),
                        }),
                    })
                    .collect(),
            }
        }

        pub(crate) fn diagnostics(diags: Diagnostics) -> Vec<pb::Diagnostic> {
            use pb::diagnostic::Severity as S;
            diags
                .into_iter()
                .map(|d| pb::Diagnostic {
                    severity: match d.severity() {
                        Severity::Error => S::Error as i32,
                        Severity::Warning => S::Warning as i32,
                    },
                    summary: d.summary().to_owned(),
                    detail: d.detail().to_owned(),
                    attribute: d.attribute().map(path),
                })
                .collect()
        }

        fn block(block: &Block, version: i64) -> pb::schema::Block {
            use pb::schema::nested_block::NestingMode as N;
            pb::schema::Block {
                version,
                attributes: block
                    .attributes()
                    .iter()
                    .map(|a| pb::schema::Attribute {
                        name: a.name.clone(),
                        r#type: a.ty.to_json().into_bytes(),
                        description: a.description.clone(),
                        required: a.required,
                        optional: a.is_optional(),
                        computed: a.computed,
                        sensitive: a.sensitive,
                        deprecated: a.deprecated,
                        ..Default::default()
                    })
                    .collect(),
                block_types: block
                    .blocks()
                    .iter()
                    .map(|b| pb::schema::NestedBlock {
                        type_name: b.type_name.clone(),
                        block: Some(self::block(&b.block, 0)),
                        nesting: match b.nesting {
                            Nesting::Single => N::Single,
                            Nesting::Group => N::Group,
                            Nesting::List => N::List,
                            Nesting::Set => N::Set,
                            Nesting::Map => N::Map,
                        } as i32,
                        min_items: b.min_items,
                        max_items: b.max_items,
                    })
                    .collect(),
                description: block.description.clone(),
                deprecated: block.deprecated,
                ..Default::default()
            }
        }

        pub(crate) fn schema(schema: &Schema) -> pb::Schema {
            pb::Schema {
                version: schema.version,
                block: Some(block(&schema.block, schema.version)),
            }
        }
    };
}

/// The `Provider` service of one version: the RPCs both versions share
/// (with the names of those that differ), the version's own (`extra`),
/// and UNIMPLEMENTED for the rest (which hosts tolerate outside the core
/// set). One macro for the whole impl: `async_trait` only sees methods
/// written out in it.
macro_rules! provider_service {
    (
        service: $service:ty,
        get_schema: $get_schema:ident,
        validate_resource: $validate_resource:ident,
        validate_data_source: $validate_data_source:ident,
        configure: $configure:ident,
        unimplemented: [$($method:ident),* $(,)?],
        streams: [$($stream_method:ident: $stream:ident of $item:path),* $(,)?],
        extra: { $($extra:tt)* }
    ) => {
    #[tonic::async_trait]
    impl pb::provider_server::Provider for $service {
        $($extra)*

        $(
            async fn $method(
                &self,
                _: tonic::Request<pb::$method::Request>,
            ) -> Result<tonic::Response<pb::$method::Response>, tonic::Status> {
                Err(tonic::Status::unimplemented(concat!(
                    stringify!($method),
                    " is not implemented by this provider"
                )))
            }
        )*

        $(
            type $stream = tonic::codegen::BoxStream<$item>;
            async fn $stream_method(
                &self,
                _: tonic::Request<pb::$stream_method::Request>,
            ) -> Result<tonic::Response<Self::$stream>, tonic::Status> {
                Err(tonic::Status::unimplemented(concat!(
                    stringify!($stream_method),
                    " is not implemented by this provider"
                )))
            }
        )*

        async fn get_metadata(
            &self,
            _: tonic::Request<pb::get_metadata::Request>,
        ) -> Result<tonic::Response<pb::get_metadata::Response>, tonic::Status> {
            let core = &self.0;
            Ok(tonic::Response::new(pb::get_metadata::Response {
                server_capabilities: Some(capabilities()),
                resources: core
                    .resources
                    .keys()
                    .map(|name| pb::get_metadata::ResourceMetadata {
                        type_name: name.clone(),
                    })
                    .collect(),
                data_sources: core
                    .data_sources
                    .keys()
                    .map(|name| pb::get_metadata::DataSourceMetadata {
                        type_name: name.clone(),
                    })
                    .collect(),
                ..Default::default()
            }))
        }

        async fn $get_schema(
            &self,
            _: tonic::Request<pb::get_provider_schema::Request>,
        ) -> Result<tonic::Response<pb::get_provider_schema::Response>, tonic::Status> {
            let core = &self.0;
            Ok(tonic::Response::new(pb::get_provider_schema::Response {
                provider: Some(schema(&core.provider.schema)),
                resource_schemas: core
                    .resources
                    .iter()
                    .map(|(name, entry)| (name.clone(), schema(&entry.schema)))
                    .collect(),
                data_source_schemas: core
                    .data_sources
                    .iter()
                    .map(|(name, entry)| (name.clone(), schema(&entry.schema)))
                    .collect(),
                // Hosts want a provider_meta schema too; an empty one.
                provider_meta: Some(schema(&crate::schema::Schema::new())),
                server_capabilities: Some(capabilities()),
                ..Default::default()
            }))
        }

        async fn get_resource_identity_schemas(
            &self,
            _: tonic::Request<pb::get_resource_identity_schemas::Request>,
        ) -> Result<tonic::Response<pb::get_resource_identity_schemas::Response>, tonic::Status> {
            Ok(tonic::Response::new(Default::default()))
        }

        async fn get_functions(
            &self,
            _: tonic::Request<pb::get_functions::Request>,
        ) -> Result<tonic::Response<pb::get_functions::Response>, tonic::Status> {
            Ok(tonic::Response::new(Default::default()))
        }

        async fn $validate_resource(
            &self,
            request: tonic::Request<pb::$validate_resource::Request>,
        ) -> Result<tonic::Response<pb::$validate_resource::Response>, tonic::Status> {
            let request = request.into_inner();
            let diags = self
                .0
                .validate_resource(&request.type_name, &encoded(request.config))
                .await;
            Ok(tonic::Response::new(pb::$validate_resource::Response {
                diagnostics: diagnostics(diags),
            }))
        }

        async fn $validate_data_source(
            &self,
            request: tonic::Request<pb::$validate_data_source::Request>,
        ) -> Result<tonic::Response<pb::$validate_data_source::Response>, tonic::Status> {
            let request = request.into_inner();
            let diags = self
                .0
                .validate_data_source(&request.type_name, &encoded(request.config))
                .await;
            Ok(tonic::Response::new(pb::$validate_data_source::Response {
                diagnostics: diagnostics(diags),
            }))
        }

        async fn $configure(
            &self,
            request: tonic::Request<pb::$configure::Request>,
        ) -> Result<tonic::Response<pb::$configure::Response>, tonic::Status> {
            let request = request.into_inner();
            let diags = self
                .0
                .configure(&request.terraform_version, &encoded(request.config))
                .await;
            Ok(tonic::Response::new(pb::$configure::Response {
                diagnostics: diagnostics(diags),
            }))
        }

        async fn upgrade_resource_state(
            &self,
            request: tonic::Request<pb::upgrade_resource_state::Request>,
        ) -> Result<tonic::Response<pb::upgrade_resource_state::Response>, tonic::Status> {
            let request = request.into_inner();
            let raw = request.raw_state.unwrap_or_default();
            let (state, diags) = self
                .0
                .upgrade(&request.type_name, request.version, &raw.json, !raw.flatmap.is_empty())
                .await;
            Ok(tonic::Response::new(pb::upgrade_resource_state::Response {
                upgraded_state: dynamic(state),
                diagnostics: diagnostics(diags),
            }))
        }

        async fn read_resource(
            &self,
            request: tonic::Request<pb::read_resource::Request>,
        ) -> Result<tonic::Response<pb::read_resource::Response>, tonic::Status> {
            let request = request.into_inner();
            let (state, diags) = self
                .0
                .read(&request.type_name, &encoded(request.current_state))
                .await;
            Ok(tonic::Response::new(pb::read_resource::Response {
                new_state: dynamic(state),
                diagnostics: diagnostics(diags),
                private: request.private,
                ..Default::default()
            }))
        }

        async fn plan_resource_change(
            &self,
            request: tonic::Request<pb::plan_resource_change::Request>,
        ) -> Result<tonic::Response<pb::plan_resource_change::Response>, tonic::Status> {
            let request = request.into_inner();
            let (planned, replace, diags) = self
                .0
                .plan(
                    &request.type_name,
                    &encoded(request.prior_state),
                    &encoded(request.proposed_new_state),
                    &encoded(request.config),
                )
                .await;
            Ok(tonic::Response::new(pb::plan_resource_change::Response {
                planned_state: dynamic(planned),
                requires_replace: replace.iter().map(path).collect(),
                planned_private: request.prior_private,
                diagnostics: diagnostics(diags),
                ..Default::default()
            }))
        }

        async fn apply_resource_change(
            &self,
            request: tonic::Request<pb::apply_resource_change::Request>,
        ) -> Result<tonic::Response<pb::apply_resource_change::Response>, tonic::Status> {
            let request = request.into_inner();
            let (state, diags) = self
                .0
                .apply(
                    &request.type_name,
                    &encoded(request.prior_state),
                    &encoded(request.planned_state),
                    &encoded(request.config),
                )
                .await;
            Ok(tonic::Response::new(pb::apply_resource_change::Response {
                new_state: dynamic(state),
                private: request.planned_private,
                diagnostics: diagnostics(diags),
                ..Default::default()
            }))
        }

        async fn import_resource_state(
            &self,
            request: tonic::Request<pb::import_resource_state::Request>,
        ) -> Result<tonic::Response<pb::import_resource_state::Response>, tonic::Status> {
            let request = request.into_inner();
            let (state, diags) = self.0.import(&request.type_name, &request.id).await;
            let imported_resources = dynamic(state)
                .map(|state| pb::import_resource_state::ImportedResource {
                    type_name: request.type_name.clone(),
                    state: Some(state),
                    ..Default::default()
                })
                .into_iter()
                .collect();
            Ok(tonic::Response::new(pb::import_resource_state::Response {
                imported_resources,
                diagnostics: diagnostics(diags),
                ..Default::default()
            }))
        }

        async fn read_data_source(
            &self,
            request: tonic::Request<pb::read_data_source::Request>,
        ) -> Result<tonic::Response<pb::read_data_source::Response>, tonic::Status> {
            let request = request.into_inner();
            let (state, diags) = self
                .0
                .read_data_source(&request.type_name, &encoded(request.config))
                .await;
            Ok(tonic::Response::new(pb::read_data_source::Response {
                state: dynamic(state),
                diagnostics: diagnostics(diags),
                ..Default::default()
            }))
        }
    }
    };
}

pub(crate) use {conversions, provider_service};

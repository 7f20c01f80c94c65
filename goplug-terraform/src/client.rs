//! Driving providers from a Rust host (feature `host`): launching a
//! provider binary as Terraform and OpenTofu do, or attaching to one in
//! debug mode, dispensing its protocol 5 or 6 client, and the value type
//! each schema block implies, which the [`cty`](crate::cty) codecs need
//! for every `DynamicValue`.
//!
//! ```no_run
//! use goplug_terraform::client::{self, ValueType};
//! use goplug_terraform::cty::{self, Value};
//! use goplug_terraform::tfplugin6::get_provider_schema;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let provider = client::builder(std::process::Command::new("./terraform-provider-x"))
//!     .start()
//!     .await?;
//! let mut v6 = provider.dispense(client::PROVIDER_V6)?;
//! let schema = v6.get_provider_schema(get_provider_schema::Request {}).await?.into_inner();
//! let ty = schema.resource_schemas["x_thing"].value_type()?;
//! let config = cty::msgpack::encode(&Value::object([("name", "a".into())]), &ty)?;
//! // ... PlanResourceChange, ApplyResourceChange with `config` ...
//! let report = provider.shutdown().await;
//! assert!(report.graceful);
//! # let _ = config;
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

use goplug::Protocol;
use goplug::host::{Channel, ClientBuilder, GrpcPlugin, PluginSet, ReattachBuilder};
use goplug::reattach::ReattachConfig;

use crate::cty::Type;
use crate::error::{Error, Result};
use crate::{HANDSHAKE, PROVIDER_PLUGIN_NAME, tfplugin5, tfplugin6};

/// A provider that negotiated protocol 5, dispensed as its client.
pub const PROVIDER_V5: GrpcPlugin<tfplugin5::provider_client::ProviderClient<Channel>> =
    GrpcPlugin::new(PROVIDER_PLUGIN_NAME);

/// A provider that negotiated protocol 6, dispensed as its client.
pub const PROVIDER_V6: GrpcPlugin<tfplugin6::provider_client::ProviderClient<Channel>> =
    GrpcPlugin::new(PROVIDER_PLUGIN_NAME);

/// go-plugin's start timeout, which Terraform and OpenTofu keep.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A goplug host builder that launches `command` as Terraform and
/// OpenTofu launch providers: their cookie, protocol versions 5
/// ([`PROVIDER_V5`]) and 6 ([`PROVIDER_V6`]) offered, gRPC only, AutoMTLS
/// on, a one-minute start timeout. Change anything further on the builder;
/// [`Client::negotiated_version`](goplug::host::Client::negotiated_version)
/// says which client to dispense.
pub fn builder(command: std::process::Command) -> ClientBuilder {
    goplug::host::Client::builder(HANDSHAKE)
        .command(command)
        .version(5, PluginSet::new().plugin(PROVIDER_V5))
        .version(6, PluginSet::new().plugin(PROVIDER_V6))
        .allowed_protocols([Protocol::Grpc])
        .auto_mtls(true)
        .start_timeout(START_TIMEOUT)
}

/// A goplug host builder that attaches to a provider already running in
/// debug mode, as Terraform does with `TF_REATTACH_PROVIDERS` (a JSON map
/// from provider address to config: parse it with
/// [`ReattachConfig::map_from_json`]). There is no handshake and no TLS; a
/// config in test mode (`"Test": true`, what the SDKs' debug mode prints)
/// leaves the provider running at shutdown.
pub fn reattach(config: ReattachConfig) -> ReattachBuilder {
    goplug::host::Client::reattach(HANDSHAKE, config)
        .version(5, PluginSet::new().plugin(PROVIDER_V5))
        .version(6, PluginSet::new().plugin(PROVIDER_V6))
}

/// The cty type of the values a schema describes: an object with every
/// attribute and nested block, which is what the codecs encode
/// configuration, plans and state against.
pub trait ValueType {
    /// The object type; a missing block is the empty object, as a
    /// provider without configuration sends.
    ///
    /// # Errors
    ///
    /// [`Error::Type`] when an attribute's type is not
    /// a cty type.
    fn value_type(&self) -> Result<Type>;
}

/// An attribute's type from its JSON form; an error names the attribute.
fn attribute_type(name: &str, json: &[u8]) -> Result<Type> {
    Type::from_json(json).map_err(|error| match error {
        Error::Type { reason } => Error::Type {
            reason: format!("attribute {name:?}: {reason}"),
        },
        other => other,
    })
}

/// How a nested block or nested attribute holds its object.
fn nest(inner: Type, list: bool, set: bool, map: bool) -> Type {
    if list {
        Type::list(inner)
    } else if set {
        Type::set(inner)
    } else if map {
        Type::map(inner)
    } else {
        inner
    }
}

impl ValueType for tfplugin6::schema::Attribute {
    fn value_type(&self) -> Result<Type> {
        use tfplugin6::schema::object::NestingMode;
        let Some(object) = &self.nested_type else {
            return attribute_type(&self.name, &self.r#type);
        };
        let inner = Type::Object(
            object
                .attributes
                .iter()
                .map(|a| Ok((a.name.clone(), a.value_type()?)))
                .collect::<Result<_>>()?,
        );
        let nesting = object.nesting();
        Ok(nest(
            inner,
            nesting == NestingMode::List,
            nesting == NestingMode::Set,
            nesting == NestingMode::Map,
        ))
    }
}

impl ValueType for tfplugin6::schema::Block {
    fn value_type(&self) -> Result<Type> {
        use tfplugin6::schema::nested_block::NestingMode;
        let mut members = self
            .attributes
            .iter()
            .map(|a| Ok((a.name.clone(), a.value_type()?)))
            .collect::<Result<std::collections::BTreeMap<_, _>>>()?;
        for nested in &self.block_types {
            let inner = nested.block.value_type()?;
            let nesting = nested.nesting();
            let ty = nest(
                inner,
                nesting == NestingMode::List,
                nesting == NestingMode::Set,
                nesting == NestingMode::Map,
            );
            members.insert(nested.type_name.clone(), ty);
        }
        Ok(Type::Object(members))
    }
}

impl ValueType for tfplugin5::schema::Block {
    fn value_type(&self) -> Result<Type> {
        use tfplugin5::schema::nested_block::NestingMode;
        let mut members = self
            .attributes
            .iter()
            .map(|a| Ok((a.name.clone(), attribute_type(&a.name, &a.r#type)?)))
            .collect::<Result<std::collections::BTreeMap<_, _>>>()?;
        for nested in &self.block_types {
            let inner = nested.block.value_type()?;
            let nesting = nested.nesting();
            let ty = nest(
                inner,
                nesting == NestingMode::List,
                nesting == NestingMode::Set,
                nesting == NestingMode::Map,
            );
            members.insert(nested.type_name.clone(), ty);
        }
        Ok(Type::Object(members))
    }
}

impl ValueType for tfplugin6::Schema {
    fn value_type(&self) -> Result<Type> {
        self.block.value_type()
    }
}

impl ValueType for tfplugin5::Schema {
    fn value_type(&self) -> Result<Type> {
        self.block.value_type()
    }
}

impl<T: ValueType> ValueType for Option<T> {
    fn value_type(&self) -> Result<Type> {
        self.as_ref()
            .map_or_else(|| Ok(Type::Object(Default::default())), T::value_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tfplugin6::schema::{Attribute, Block, NestedBlock, Object, nested_block, object};

    fn attribute(name: &str, ty: &str) -> Attribute {
        Attribute {
            name: name.into(),
            r#type: ty.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn a_block_implies_an_object_of_its_attributes_and_nested_blocks() {
        let block = Block {
            attributes: vec![
                attribute("id", r#""string""#),
                attribute("tags", r#"["map","string"]"#),
                Attribute {
                    name: "ports".into(),
                    nested_type: Some(Object {
                        attributes: vec![attribute("number", r#""number""#)],
                        nesting: object::NestingMode::Set.into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ],
            block_types: vec![
                NestedBlock {
                    type_name: "rule".into(),
                    block: Some(Block {
                        attributes: vec![attribute("on", r#""bool""#)],
                        ..Default::default()
                    }),
                    nesting: nested_block::NestingMode::List.into(),
                    ..Default::default()
                },
                NestedBlock {
                    type_name: "timeouts".into(),
                    block: None,
                    nesting: nested_block::NestingMode::Single.into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let expected = Type::object([
            ("id", Type::String),
            ("tags", Type::map(Type::String)),
            ("ports", Type::set(Type::object([("number", Type::Number)]))),
            ("rule", Type::list(Type::object([("on", Type::Bool)]))),
            ("timeouts", Type::object::<String>([])),
        ]);
        assert_eq!(block.value_type().unwrap(), expected);
    }

    #[test]
    fn no_block_implies_the_empty_object() {
        let schema = tfplugin5::Schema::default();
        assert_eq!(schema.value_type().unwrap(), Type::object::<String>([]));
    }

    #[test]
    fn a_bad_attribute_type_is_an_error_naming_it() {
        let block = tfplugin5::schema::Block {
            attributes: vec![tfplugin5::schema::Attribute {
                name: "x".into(),
                r#type: b"\"strin\"".to_vec(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let error = block.value_type().unwrap_err().to_string();
        assert!(error.contains(r#"attribute "x""#), "{error}");
        assert!(error.contains("strin"), "{error}");
    }
}

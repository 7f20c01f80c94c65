//! What every RPC does, once for both protocol versions: values arrive as
//! encoded bytes, are decoded against the schema, handed to the user's
//! traits, checked and encoded back.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::cty::{self, AttributePath, Type, Value};
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::erased::{DynDataSource, DynProvider, DynResource};
use crate::provider::ConfigureRequest;
use crate::resource::{ChangeRequest, Plan, PlanRequest};
use crate::schema::Schema;

/// An encoded value as hosts send it (`DynamicValue`).
#[derive(Debug, Default)]
pub(crate) struct Encoded {
    pub(crate) msgpack: Vec<u8>,
    pub(crate) json: Vec<u8>,
}

impl Encoded {
    /// Decodes against `ty`; msgpack is what hosts send, JSON is accepted.
    fn decode(&self, ty: &Type, what: &str) -> Result<Value, Diagnostics> {
        tracing::trace!(
            value = what,
            msgpack = %Hex(&self.msgpack),
            json = %String::from_utf8_lossy(&self.json),
            "received"
        );
        let result = if !self.msgpack.is_empty() {
            cty::msgpack::decode(&self.msgpack, ty)
        } else if !self.json.is_empty() {
            cty::json::decode(&self.json, ty)
        } else {
            return Err(Diagnostic::error(
                "Missing value",
                format!("The host sent no {what} (neither msgpack nor JSON)."),
            )
            .into());
        };
        result.map_err(|e| {
            Diagnostic::error(format!("Invalid {what} from the host"), e.to_string()).into()
        })
    }
}

/// Bytes as hex, for trace logs of what hosts send.
struct Hex<'a>(&'a [u8]);

impl std::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// A registered resource or data source, with its schema and value type
/// worked out once.
pub(crate) struct Entry<T: ?Sized> {
    pub(crate) imp: Arc<T>,
    pub(crate) schema: Schema,
    pub(crate) ty: Type,
}

impl<T: ?Sized> Entry<T> {
    pub(crate) fn new(imp: Arc<T>, schema: Schema) -> Self {
        let ty = schema.value_type();
        Self { imp, schema, ty }
    }
}

/// The provider with its resources and data sources.
pub(crate) struct Core {
    pub(crate) provider: Entry<dyn DynProvider>,
    pub(crate) resources: BTreeMap<String, Entry<dyn DynResource>>,
    pub(crate) data_sources: BTreeMap<String, Entry<dyn DynDataSource>>,
}

/// The outcome of an RPC that returns a value: the encoded value (None
/// for no value) and the diagnostics.
pub(crate) type Outcome = (Option<Vec<u8>>, Diagnostics);

/// The outcome of a value the provider returned: encoded, after checking
/// that it is wholly known when `known_after` names the step that needs it.
fn returned(value: &Value, ty: &Type, known_after: Option<&str>) -> Outcome {
    let mut diags = Diagnostics::new();
    if let Some(step) = known_after {
        check_known(value, step, &mut diags);
    }
    let bytes = encode(value, ty, &mut diags);
    (bytes, diags)
}

fn encode(value: &Value, ty: &Type, diags: &mut Diagnostics) -> Option<Vec<u8>> {
    match cty::msgpack::encode(value, ty) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            diags.push(Diagnostic::error(
                "Provider returned an invalid value",
                format!("{e}. This is a bug in the provider."),
            ));
            None
        }
    }
}

/// A null value, as hosts expect it when there is no object.
pub(crate) const NULL: [u8; 1] = [0xc0];

fn unknown_type(kind: &str, name: &str) -> Diagnostics {
    Diagnostic::error(
        format!("Unknown {kind} type"),
        format!("This provider has no {kind} type {name:?}."),
    )
    .into()
}

fn check_known(value: &Value, what: &str, diags: &mut Diagnostics) {
    if let Some(path) = first_unknown(value, AttributePath::root()) {
        diags.push(
            Diagnostic::error(
                format!("Provider returned an unknown value after {what}"),
                format!("The value at {path} is still unknown. This is a bug in the provider."),
            )
            .at(path),
        );
    }
}

fn first_unknown(value: &Value, path: AttributePath) -> Option<AttributePath> {
    match value {
        Value::Unknown => Some(path),
        Value::List(items) | Value::Set(items) | Value::Tuple(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| first_unknown(item, path.clone().index(i as i64))),
        Value::Map(items) => items
            .iter()
            .find_map(|(key, item)| first_unknown(item, path.clone().key(key))),
        Value::Object(items) => items
            .iter()
            .find_map(|(name, item)| first_unknown(item, path.clone().attr(name))),
        Value::Dynamic(_, inner) => first_unknown(inner, path),
        _ => None,
    }
}

impl Core {
    fn resource(&self, name: &str) -> Result<&Entry<dyn DynResource>, Diagnostics> {
        self.resources
            .get(name)
            .ok_or_else(|| unknown_type("resource", name))
    }

    fn data_source(&self, name: &str) -> Result<&Entry<dyn DynDataSource>, Diagnostics> {
        self.data_sources
            .get(name)
            .ok_or_else(|| unknown_type("data source", name))
    }

    pub(crate) async fn validate_provider(&self, config: &Encoded) -> Diagnostics {
        match config.decode(&self.provider.ty, "provider configuration") {
            Ok(config) => self.provider.imp.validate(&config).await,
            Err(diags) => diags,
        }
    }

    pub(crate) async fn configure(&self, terraform_version: &str, config: &Encoded) -> Diagnostics {
        match config.decode(&self.provider.ty, "provider configuration") {
            Ok(config) => {
                let request = ConfigureRequest {
                    config: &config,
                    terraform_version,
                };
                self.provider.imp.configure(request).await
            }
            Err(diags) => diags,
        }
    }

    pub(crate) async fn stop(&self) -> String {
        self.provider.imp.stop().await.err().unwrap_or_default()
    }

    pub(crate) async fn validate_resource(&self, type_name: &str, config: &Encoded) -> Diagnostics {
        let entry = match self.resource(type_name) {
            Ok(entry) => entry,
            Err(diags) => return diags,
        };
        match config.decode(&entry.ty, "resource configuration") {
            Ok(config) => entry.imp.validate(&config).await,
            Err(diags) => diags,
        }
    }

    pub(crate) async fn validate_data_source(
        &self,
        type_name: &str,
        config: &Encoded,
    ) -> Diagnostics {
        let entry = match self.data_source(type_name) {
            Ok(entry) => entry,
            Err(diags) => return diags,
        };
        match config.decode(&entry.ty, "data source configuration") {
            Ok(config) => entry.imp.validate(&config).await,
            Err(diags) => diags,
        }
    }

    /// A stored state (JSON, from the state file) as a value of the current
    /// schema.
    pub(crate) async fn upgrade(
        &self,
        type_name: &str,
        version: i64,
        json: &[u8],
        flatmap: bool,
    ) -> Outcome {
        let entry = match self.resource(type_name) {
            Ok(entry) => entry,
            Err(diags) => return (None, diags),
        };
        if json.is_empty() {
            let detail = if flatmap {
                "The state is in the legacy flatmap format of Terraform 0.11, which this provider cannot read."
            } else {
                "The host sent no state to upgrade."
            };
            return (
                None,
                Diagnostic::error("Unsupported state format", detail).into(),
            );
        }
        let current = entry.schema.schema_version();
        let result = if version == current {
            cty::json::decode(json, &entry.ty).map_err(|e| {
                Diagnostics::from(Diagnostic::error("Invalid stored state", e.to_string()))
            })
        } else if version > current {
            Err(Diagnostic::error(
                "State from a newer provider",
                format!("The stored state has schema version {version}, newer than this provider's {current}: upgrade the provider."),
            )
            .into())
        } else {
            entry.imp.upgrade(version, json).await
        };
        match result {
            Ok(value) => returned(&value, &entry.ty, None),
            Err(diags) => (None, diags),
        }
    }

    pub(crate) async fn read(&self, type_name: &str, state: &Encoded) -> Outcome {
        let entry = match self.resource(type_name) {
            Ok(entry) => entry,
            Err(diags) => return (None, diags),
        };
        let current = match state.decode(&entry.ty, "current state") {
            Ok(value) => value,
            Err(diags) => return (None, diags),
        };
        if current.is_null() {
            return (Some(NULL.to_vec()), Diagnostics::new());
        }
        match entry.imp.read(&current).await {
            Ok(Some(value)) => returned(&value, &entry.ty, Some("read")),
            Ok(None) => (Some(NULL.to_vec()), Diagnostics::new()),
            // The object is as it was: keep the state.
            Err(diags) => (Some(state.msgpack.clone()).filter(|b| !b.is_empty()), diags),
        }
    }

    pub(crate) async fn plan(
        &self,
        type_name: &str,
        prior: &Encoded,
        proposed: &Encoded,
        config: &Encoded,
    ) -> (Option<Vec<u8>>, Vec<AttributePath>, Diagnostics) {
        let entry = match self.resource(type_name) {
            Ok(entry) => entry,
            Err(diags) => return (None, Vec::new(), diags),
        };
        let decoded = (
            prior.decode(&entry.ty, "prior state"),
            proposed.decode(&entry.ty, "proposed new state"),
            config.decode(&entry.ty, "configuration"),
        );
        let (prior, proposed, config) = match decoded {
            (Ok(a), Ok(b), Ok(c)) => (a, b, c),
            (a, b, c) => {
                let mut diags = Diagnostics::new();
                for r in [a, b, c] {
                    if let Err(d) = r {
                        diags.extend(d);
                    }
                }
                return (None, Vec::new(), diags);
            }
        };
        if proposed.is_null() {
            return (Some(NULL.to_vec()), Vec::new(), Diagnostics::new());
        }
        let mut plan = default_plan(&entry.schema, &prior, &proposed, &config);
        let request = PlanRequest {
            prior_state: &prior,
            config: &config,
        };
        let mut diags = entry.imp.modify_plan(request, &mut plan).await;
        let bytes = encode(&plan.planned_state, &entry.ty, &mut diags);
        (bytes, plan.requires_replace, diags)
    }

    pub(crate) async fn apply(
        &self,
        type_name: &str,
        prior: &Encoded,
        planned: &Encoded,
        config: &Encoded,
    ) -> Outcome {
        let entry = match self.resource(type_name) {
            Ok(entry) => entry,
            Err(diags) => return (None, diags),
        };
        let prior_bytes = Some(prior.msgpack.clone()).filter(|b| !b.is_empty());
        let decoded = (
            prior.decode(&entry.ty, "prior state"),
            planned.decode(&entry.ty, "planned state"),
            config.decode(&entry.ty, "configuration"),
        );
        let (prior, planned, config) = match decoded {
            (Ok(a), Ok(b), Ok(c)) => (a, b, c),
            (a, b, c) => {
                let mut diags = Diagnostics::new();
                for r in [a, b, c] {
                    if let Err(d) = r {
                        diags.extend(d);
                    }
                }
                return (prior_bytes, diags);
            }
        };
        if planned.is_null() {
            return match entry.imp.delete(&prior).await {
                Ok(()) => (Some(NULL.to_vec()), Diagnostics::new()),
                // Still there: keep the state.
                Err(diags) => (prior_bytes, diags),
            };
        }
        let request = ChangeRequest {
            prior_state: &prior,
            planned_state: &planned,
            config: &config,
        };
        let creating = prior.is_null();
        let result = if creating {
            entry.imp.create(request).await
        } else {
            entry.imp.update(request).await
        };
        match result {
            Ok(value) => returned(&value, &entry.ty, Some("apply")),
            // A failed create leaves nothing; a failed update the prior state.
            Err(diags) if creating => (Some(NULL.to_vec()), diags),
            Err(diags) => (prior_bytes, diags),
        }
    }

    pub(crate) async fn import(&self, type_name: &str, id: &str) -> Outcome {
        let entry = match self.resource(type_name) {
            Ok(entry) => entry,
            Err(diags) => return (None, diags),
        };
        match entry.imp.import(id).await {
            Ok(value) => returned(&value, &entry.ty, None),
            Err(diags) => (None, diags),
        }
    }

    pub(crate) async fn read_data_source(&self, type_name: &str, config: &Encoded) -> Outcome {
        let entry = match self.data_source(type_name) {
            Ok(entry) => entry,
            Err(diags) => return (None, diags),
        };
        let config = match config.decode(&entry.ty, "data source configuration") {
            Ok(value) => value,
            Err(diags) => return (None, diags),
        };
        match entry.imp.read(&config).await {
            Ok(value) => returned(&value, &entry.ty, Some("reading the data source")),
            Err(diags) => (None, diags),
        }
    }
}

/// The plan the framework SDKs make by default: the proposed state, with
/// computed attributes left null by configuration unknown on create and
/// on any change, and replacement when a `requires_replace` attribute
/// changes.
fn default_plan(schema: &Schema, prior: &Value, proposed: &Value, config: &Value) -> Plan {
    let mut planned = proposed.clone();
    let creating = prior.is_null();
    let changed = creating || proposed != prior;
    if let (true, Value::Object(attributes)) = (changed, &mut planned) {
        for attribute in schema.root().attributes() {
            let unset = config.get(attribute.name()).is_none_or(Value::is_null);
            if attribute.is_computed() && unset {
                attributes.insert(attribute.name().to_owned(), Value::Unknown);
            }
        }
    }
    let mut requires_replace = Vec::new();
    if !creating {
        for attribute in schema.root().attributes() {
            let name = attribute.name();
            if attribute.is_requires_replace() && planned.get(name) != prior.get(name) {
                requires_replace.push(AttributePath::attribute(name));
            }
        }
    }
    Plan {
        planned_state: planned,
        requires_replace,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Attribute;

    fn schema() -> Schema {
        Schema::new()
            .attribute(
                Attribute::new("path", Type::String)
                    .required()
                    .requires_replace(),
            )
            .attribute(Attribute::new("content", Type::String).required())
            .attribute(Attribute::new("id", Type::String).computed())
    }

    fn object(path: &str, content: &str, id: Value) -> Value {
        Value::object([
            ("path", path.into()),
            ("content", content.into()),
            ("id", id),
        ])
    }

    #[test]
    fn default_plans_mark_computed_attributes_unknown_only_on_change() {
        let config = object("p", "c", Value::Null);
        // Create: computed is unknown, nothing to replace.
        let plan = default_plan(&schema(), &Value::Null, &config, &config);
        assert_eq!(plan.planned_state, object("p", "c", Value::Unknown));
        assert!(plan.requires_replace.is_empty());

        // No change: the prior value stays.
        let prior = object("p", "c", "p".into());
        let plan = default_plan(&schema(), &prior, &prior, &config);
        assert_eq!(plan.planned_state, prior);

        // In-place change: unknown again, no replacement.
        let proposed = object("p", "new", "p".into());
        let plan = default_plan(
            &schema(),
            &prior,
            &proposed,
            &object("p", "new", Value::Null),
        );
        assert_eq!(plan.planned_state, object("p", "new", Value::Unknown));
        assert!(plan.requires_replace.is_empty());

        // A requires_replace attribute changed.
        let proposed = object("q", "c", "p".into());
        let plan = default_plan(&schema(), &prior, &proposed, &object("q", "c", Value::Null));
        assert_eq!(
            plan.requires_replace,
            vec![AttributePath::attribute("path")]
        );
    }

    #[test]
    fn unknown_values_are_found_with_their_path() {
        let value = Value::object([(
            "a",
            Value::List(vec!["x".into(), Value::object([("b", Value::Unknown)])]),
        )]);
        assert_eq!(
            first_unknown(&value, AttributePath::root())
                .unwrap()
                .to_string(),
            ".a[1].b"
        );
        assert!(first_unknown(&object("p", "c", "i".into()), AttributePath::root()).is_none());
    }
}

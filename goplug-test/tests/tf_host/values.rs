//! goplug-terraform's cty codecs against the type a schema implies, and
//! short readers for the values the tests check.

use std::collections::BTreeMap;

use goplug_terraform::client::ValueType;
use goplug_terraform::cty::{self, Type, Value};
use goplug_terraform::{tfplugin5, tfplugin6};

/// A schema block's value type with the codecs on it.
#[derive(Debug)]
pub(crate) struct Shape {
    ty: Type,
}

impl Shape {
    /// The shape of the values `schema` describes (a schema, a block, or
    /// none: the empty object).
    pub(crate) fn of(schema: &impl ValueType) -> Self {
        let ty = schema
            .value_type()
            .unwrap_or_else(|e| panic!("the provider sent a bad schema: {e}"));
        Self { ty }
    }

    pub(crate) fn msgpack(&self, value: &Value) -> Vec<u8> {
        cty::msgpack::encode(value, &self.ty)
            .unwrap_or_else(|e| panic!("encoding {value:?} as {}: {e}", self.ty.to_json()))
    }

    pub(crate) fn json(&self, value: &Value) -> Vec<u8> {
        cty::json::encode(value, &self.ty)
            .unwrap_or_else(|e| panic!("encoding {value:?} as {}: {e}", self.ty.to_json()))
            .into_bytes()
    }

    pub(crate) fn decode(&self, msgpack: &[u8]) -> Value {
        cty::msgpack::decode(msgpack, &self.ty)
            .unwrap_or_else(|e| panic!("decoding {msgpack:x?} as {}: {e}", self.ty.to_json()))
    }
}

/// Attribute `name` of an object; panics when it has none.
fn attr<'a>(object: &'a Value, name: &str) -> &'a Value {
    object
        .get(name)
        .unwrap_or_else(|| panic!("no attribute {name} in {object:?}"))
}

/// The known string in attribute `name`.
pub(crate) fn text<'a>(object: &'a Value, name: &str) -> Option<&'a str> {
    attr(object, name).as_str()
}

/// The known whole number in attribute `name`.
pub(crate) fn int(object: &Value, name: &str) -> Option<i64> {
    attr(object, name).as_number().and_then(cty::Number::as_i64)
}

/// Whether attribute `name` is unknown (to be known after apply).
pub(crate) fn unknown(object: &Value, name: &str) -> bool {
    !attr(object, name).is_known()
}

/// `object` with attribute `name` set to `value`.
pub(crate) fn with(object: &Value, name: &str, value: Value) -> Value {
    let mut attributes = object.as_map().cloned().unwrap_or_else(BTreeMap::new);
    attributes.insert(name.to_owned(), value);
    Value::Object(attributes)
}

/// A map of strings.
pub(crate) fn string_map<const N: usize>(entries: [(&str, &str); N]) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::string(v)))
            .collect(),
    )
}

/// The attribute names along a protocol 6 path (keys and indexes as text).
pub(crate) fn v6_path(path: Option<&tfplugin6::AttributePath>) -> Vec<String> {
    use tfplugin6::attribute_path::step::Selector;
    path.map_or_else(Vec::new, |path| {
        path.steps
            .iter()
            .filter_map(|step| match step.selector.as_ref()? {
                Selector::AttributeName(name) | Selector::ElementKeyString(name) => {
                    Some(name.clone())
                }
                Selector::ElementKeyInt(index) => Some(index.to_string()),
            })
            .collect()
    })
}

/// The attribute names along a protocol 5 path.
pub(crate) fn v5_path(path: Option<&tfplugin5::AttributePath>) -> Vec<String> {
    use tfplugin5::attribute_path::step::Selector;
    path.map_or_else(Vec::new, |path| {
        path.steps
            .iter()
            .filter_map(|step| match step.selector.as_ref()? {
                Selector::AttributeName(name) | Selector::ElementKeyString(name) => {
                    Some(name.clone())
                }
                Selector::ElementKeyInt(index) => Some(index.to_string()),
            })
            .collect()
    })
}

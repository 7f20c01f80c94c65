//! What a host needs around goplug-terraform's cty codecs: the object
//! type a schema block implies (every attribute and nested block), and
//! short readers for the values the tests check.

use std::collections::BTreeMap;

use goplug_terraform::cty::{self, Type, Value};
use goplug_terraform::{tfplugin5, tfplugin6};

/// A schema block's value type with the codecs on it.
#[derive(Debug)]
pub(crate) struct Shape {
    ty: Type,
}

/// A type as a schema attribute carries it (JSON text).
fn attribute_type(name: &str, json: &[u8]) -> Type {
    Type::from_json(json)
        .unwrap_or_else(|e| panic!("attribute {name}: the provider sent a bad type: {e}"))
}

/// What a nested block adds to its parent's object, by nesting mode.
fn nest(inner: Type, list: bool, set: bool, map: bool) -> Type {
    match (list, set, map) {
        (true, _, _) => Type::list(inner),
        (_, true, _) => Type::set(inner),
        (_, _, true) => Type::map(inner),
        _ => inner,
    }
}

fn v6_attribute_type(attribute: &tfplugin6::schema::Attribute) -> Type {
    use tfplugin6::schema::object::NestingMode;
    let Some(object) = &attribute.nested_type else {
        return attribute_type(&attribute.name, &attribute.r#type);
    };
    let inner = Type::object(
        object
            .attributes
            .iter()
            .map(|a| (a.name.clone(), v6_attribute_type(a))),
    );
    let nesting = object.nesting();
    nest(
        inner,
        nesting == NestingMode::List,
        nesting == NestingMode::Set,
        nesting == NestingMode::Map,
    )
}

fn v6_block_type(block: &tfplugin6::schema::Block) -> Type {
    use tfplugin6::schema::nested_block::NestingMode;
    let attributes = block
        .attributes
        .iter()
        .map(|a| (a.name.clone(), v6_attribute_type(a)));
    let blocks = block.block_types.iter().map(|nested| {
        let inner = nested
            .block
            .as_ref()
            .map_or_else(|| Type::object::<String>([]), v6_block_type);
        let nesting = nested.nesting();
        let ty = nest(
            inner,
            nesting == NestingMode::List,
            nesting == NestingMode::Set,
            nesting == NestingMode::Map,
        );
        (nested.type_name.clone(), ty)
    });
    Type::object(attributes.chain(blocks))
}

fn v5_block_type(block: &tfplugin5::schema::Block) -> Type {
    use tfplugin5::schema::nested_block::NestingMode;
    let attributes = block
        .attributes
        .iter()
        .map(|a| (a.name.clone(), attribute_type(&a.name, &a.r#type)));
    let blocks = block.block_types.iter().map(|nested| {
        let inner = nested
            .block
            .as_ref()
            .map_or_else(|| Type::object::<String>([]), v5_block_type);
        let nesting = nested.nesting();
        let ty = nest(
            inner,
            nesting == NestingMode::List,
            nesting == NestingMode::Set,
            nesting == NestingMode::Map,
        );
        (nested.type_name.clone(), ty)
    });
    Type::object(attributes.chain(blocks))
}

impl Shape {
    /// A protocol 6 block's shape; no block is the empty object.
    pub(crate) fn v6(block: Option<&tfplugin6::schema::Block>) -> Self {
        let ty = block.map_or_else(|| Type::object::<String>([]), v6_block_type);
        Self { ty }
    }

    /// A protocol 5 block's shape; no block is the empty object.
    pub(crate) fn v5(block: Option<&tfplugin5::schema::Block>) -> Self {
        let ty = block.map_or_else(|| Type::object::<String>([]), v5_block_type);
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

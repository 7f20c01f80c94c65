//! cty values: what configuration, plans and state hold.

use std::collections::BTreeMap;

use super::{Number, Type};

/// A cty value. The codecs read and write it against a [`Type`], so the
/// same variants serve every type: a list, set or tuple is any of the
/// three sequence variants, a map or object either mapping variant.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// Null: not set.
    Null,
    /// Not known until apply. Refined unknowns (msgpack extension 12, with
    /// a prefix, a range or "not null") decode as plain unknowns.
    Unknown,
    /// A bool.
    Bool(bool),
    /// A number.
    Number(Number),
    /// A string.
    String(String),
    /// A list's (or tuple's) elements.
    List(Vec<Value>),
    /// A set's elements.
    Set(Vec<Value>),
    /// A map's elements.
    Map(BTreeMap<String, Value>),
    /// A tuple's elements.
    Tuple(Vec<Value>),
    /// An object's attributes (and nested blocks). Attributes its type has
    /// and this map lacks are written as null.
    Object(BTreeMap<String, Value>),
    /// A value at a dynamic position, with the type it travelled with.
    /// Values written at a dynamic position without this wrapper travel
    /// with the type [`Value::implied_type`] gives.
    Dynamic(Type, Box<Value>),
}

impl Value {
    /// A string value.
    pub fn string(text: impl Into<String>) -> Self {
        Self::String(text.into())
    }

    /// A number value.
    pub fn number(n: impl Into<Number>) -> Self {
        Self::Number(n.into())
    }

    /// An object value.
    pub fn object<N: Into<String>>(attributes: impl IntoIterator<Item = (N, Value)>) -> Self {
        Self::Object(
            attributes
                .into_iter()
                .map(|(name, value)| (name.into(), value))
                .collect(),
        )
    }

    /// Whether this is null (a dynamic wrapper around null is null too).
    pub fn is_null(&self) -> bool {
        match self {
            Self::Null => true,
            Self::Dynamic(_, inner) => inner.is_null(),
            _ => false,
        }
    }

    /// Whether this value itself is known (its elements may not be).
    pub fn is_known(&self) -> bool {
        match self {
            Self::Unknown => false,
            Self::Dynamic(_, inner) => inner.is_known(),
            _ => true,
        }
    }

    /// Whether this value and everything inside it is known.
    pub fn is_wholly_known(&self) -> bool {
        match self {
            Self::Unknown => false,
            Self::List(items) | Self::Set(items) | Self::Tuple(items) => {
                items.iter().all(Self::is_wholly_known)
            }
            Self::Map(items) | Self::Object(items) => items.values().all(Self::is_wholly_known),
            Self::Dynamic(_, inner) => inner.is_wholly_known(),
            _ => true,
        }
    }

    /// The attribute `name` of an object (or element of a map); `None`
    /// for other values and missing names.
    pub fn get(&self, name: &str) -> Option<&Value> {
        match self {
            Self::Object(items) | Self::Map(items) => items.get(name),
            Self::Dynamic(_, inner) => inner.get(name),
            _ => None,
        }
    }

    /// The text of a known string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            Self::Dynamic(_, inner) => inner.as_str(),
            _ => None,
        }
    }

    /// A known bool.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Bool(b) => Some(*b),
            Self::Dynamic(_, inner) => inner.as_bool(),
            _ => None,
        }
    }

    /// A known number.
    pub fn as_number(&self) -> Option<&Number> {
        match self {
            Self::Number(n) => Some(n),
            Self::Dynamic(_, inner) => inner.as_number(),
            _ => None,
        }
    }

    /// The elements of a known list, set or tuple.
    pub fn as_elements(&self) -> Option<&[Value]> {
        match self {
            Self::List(items) | Self::Set(items) | Self::Tuple(items) => Some(items),
            Self::Dynamic(_, inner) => inner.as_elements(),
            _ => None,
        }
    }

    /// The entries of a known map or object.
    pub fn as_map(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Self::Map(items) | Self::Object(items) => Some(items),
            Self::Dynamic(_, inner) => inner.as_map(),
            _ => None,
        }
    }

    /// The type a value written at a dynamic position travels with:
    /// strings, numbers and bools are themselves, a list or set takes its
    /// first element's type (dynamic when empty), a map likewise, objects
    /// and tuples their members'. Null and unknown are dynamic.
    pub fn implied_type(&self) -> Type {
        let first = |items: &mut dyn Iterator<Item = &Value>| {
            items.next().map_or(Type::Dynamic, Value::implied_type)
        };
        match self {
            Self::Null | Self::Unknown => Type::Dynamic,
            Self::Bool(_) => Type::Bool,
            Self::Number(_) => Type::Number,
            Self::String(_) => Type::String,
            Self::List(items) => Type::list(first(&mut items.iter())),
            Self::Set(items) => Type::set(first(&mut items.iter())),
            Self::Map(items) => Type::map(first(&mut items.values())),
            Self::Tuple(items) => Type::Tuple(items.iter().map(Self::implied_type).collect()),
            Self::Object(items) => Type::Object(
                items
                    .iter()
                    .map(|(name, value)| (name.clone(), value.implied_type()))
                    .collect(),
            ),
            Self::Dynamic(ty, _) => ty.clone(),
        }
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Self::String(text.to_owned())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Self {
        Self::String(text)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Self::Number(Number::from_i64(n))
    }
}

impl From<Number> for Value {
    fn from(n: Number) -> Self {
        Self::Number(n)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    /// `None` is null.
    fn from(value: Option<T>) -> Self {
        value.map_or(Self::Null, Into::into)
    }
}

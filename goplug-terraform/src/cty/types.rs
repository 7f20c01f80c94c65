//! cty types and their JSON form (how schemas carry an attribute's `type`
//! and dynamic values carry theirs).

use std::collections::BTreeMap;

use super::json_text::{self, Json};
use crate::error::{Error, Result};

/// A cty type: what a schema attribute holds, and what the codecs need to
/// read or write a value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Type {
    /// `"bool"`.
    Bool,
    /// `"number"`: arbitrary precision.
    Number,
    /// `"string"`.
    String,
    /// `"dynamic"`: any type, decided by the value.
    Dynamic,
    /// `["list", T]`.
    List(Box<Type>),
    /// `["set", T]`.
    Set(Box<Type>),
    /// `["map", T]`: string keys.
    Map(Box<Type>),
    /// `["tuple", [T...]]`.
    Tuple(Vec<Type>),
    /// `["object", {name: T}]`. Optional-attribute markers (a third
    /// element) are accepted and dropped: they only matter to type
    /// conversion in the host.
    Object(BTreeMap<String, Type>),
}

impl Type {
    /// `list(element)`.
    pub fn list(element: Type) -> Self {
        Self::List(Box::new(element))
    }

    /// `set(element)`.
    pub fn set(element: Type) -> Self {
        Self::Set(Box::new(element))
    }

    /// `map(element)`.
    pub fn map(element: Type) -> Self {
        Self::Map(Box::new(element))
    }

    /// An object type with these attributes.
    pub fn object<N: Into<String>>(attributes: impl IntoIterator<Item = (N, Type)>) -> Self {
        Self::Object(
            attributes
                .into_iter()
                .map(|(name, ty)| (name.into(), ty))
                .collect(),
        )
    }

    /// Parses the JSON form, e.g. `"string"` or `["map","number"]`.
    ///
    /// # Errors
    ///
    /// [`Error::Type`] when the text is not JSON or names no cty type.
    pub fn from_json(text: &[u8]) -> Result<Self> {
        let json = json_text::parse(text).map_err(|reason| Error::Type { reason })?;
        Self::from_json_value(&json)
    }

    pub(crate) fn from_json_value(json: &Json) -> Result<Self> {
        let bad = |what: &str| Error::Type {
            reason: format!(
                "{what} is not a cty type (expected e.g. \"string\" or [\"list\",\"string\"])"
            ),
        };
        match json {
            Json::String(name) => match name.as_str() {
                "bool" => Ok(Self::Bool),
                "number" => Ok(Self::Number),
                "string" => Ok(Self::String),
                "dynamic" => Ok(Self::Dynamic),
                other => Err(bad(&format!("{other:?}"))),
            },
            Json::Array(items) => {
                let Some(Json::String(kind)) = items.first() else {
                    return Err(bad("an array without a kind name"));
                };
                match (kind.as_str(), &items[1..]) {
                    ("list", [element]) => Ok(Self::list(Self::from_json_value(element)?)),
                    ("set", [element]) => Ok(Self::set(Self::from_json_value(element)?)),
                    ("map", [element]) => Ok(Self::map(Self::from_json_value(element)?)),
                    ("tuple", [Json::Array(elements)]) => Ok(Self::Tuple(
                        elements
                            .iter()
                            .map(Self::from_json_value)
                            .collect::<Result<_>>()?,
                    )),
                    (
                        "object",
                        [Json::Object(members)] | [Json::Object(members), Json::Array(_)],
                    ) => {
                        let mut attributes = BTreeMap::new();
                        for (name, ty) in members {
                            if attributes
                                .insert(name.clone(), Self::from_json_value(ty)?)
                                .is_some()
                            {
                                return Err(bad(&format!(
                                    "an object with attribute {name:?} twice"
                                )));
                            }
                        }
                        Ok(Self::Object(attributes))
                    }
                    (other, _) => Err(bad(&format!("[{other:?}, ...]"))),
                }
            }
            _ => Err(bad("a JSON value other than a string or array")),
        }
    }

    /// The compact JSON form, as Terraform writes it.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write_json(&mut out);
        out
    }

    fn write_json(&self, out: &mut String) {
        let wrapped = |kind: &str, element: &Type, out: &mut String| {
            out.push_str("[\"");
            out.push_str(kind);
            out.push_str("\",");
            element.write_json(out);
            out.push(']');
        };
        match self {
            Self::Bool => out.push_str("\"bool\""),
            Self::Number => out.push_str("\"number\""),
            Self::String => out.push_str("\"string\""),
            Self::Dynamic => out.push_str("\"dynamic\""),
            Self::List(element) => wrapped("list", element, out),
            Self::Set(element) => wrapped("set", element, out),
            Self::Map(element) => wrapped("map", element, out),
            Self::Tuple(elements) => {
                out.push_str("[\"tuple\",[");
                for (i, element) in elements.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    element.write_json(out);
                }
                out.push_str("]]");
            }
            Self::Object(attributes) => {
                out.push_str("[\"object\",{");
                for (i, (name, ty)) in attributes.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    json_text::write_string(out, name);
                    out.push(':');
                    ty.write_json(out);
                }
                out.push_str("}]");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_round_trip_through_their_json_form() {
        let cases = [
            ("\"string\"", Type::String),
            ("\"number\"", Type::Number),
            ("\"bool\"", Type::Bool),
            ("\"dynamic\"", Type::Dynamic),
            ("[\"list\",\"string\"]", Type::list(Type::String)),
            (
                "[\"set\",[\"map\",\"number\"]]",
                Type::set(Type::map(Type::Number)),
            ),
            (
                "[\"tuple\",[\"string\",\"bool\"]]",
                Type::Tuple(vec![Type::String, Type::Bool]),
            ),
            (
                "[\"object\",{\"a\":\"string\",\"b\":[\"list\",\"dynamic\"]}]",
                Type::object([("a", Type::String), ("b", Type::list(Type::Dynamic))]),
            ),
            ("[\"object\",{}]", Type::object::<&str>([])),
        ];
        for (json, ty) in cases {
            assert_eq!(Type::from_json(json.as_bytes()).unwrap(), ty, "{json}");
            assert_eq!(ty.to_json(), json);
        }
    }

    #[test]
    fn optional_attribute_markers_are_accepted() {
        let ty = Type::from_json(br#"["object",{"a":"string"},["a"]]"#).unwrap();
        assert_eq!(ty, Type::object([("a", Type::String)]));
    }

    #[test]
    fn texts_that_name_no_type_are_errors() {
        for json in [
            "\"str\"",
            "[\"list\"]",
            "[\"list\",\"string\",\"x\"]",
            "[\"object\",[]]",
            "[\"object\",{\"a\":\"string\",\"a\":\"bool\"}]",
            "[\"tuple\",\"string\"]",
            "42",
            "[]",
            "not json",
        ] {
            let e = Type::from_json(json.as_bytes()).unwrap_err();
            assert!(matches!(e, Error::Type { .. }), "{json}: {e:?}");
        }
    }
}

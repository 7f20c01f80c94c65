//! cty values in JSON, as go-cty's `json` package reads and writes them
//! (state files, `RawState.json`): attributes an object lacks are null,
//! dynamic values are `{"value": ..., "type": ...}`, unknowns cannot be
//! written.

use std::collections::BTreeMap;

use super::json_text::{self, Json};
use super::msgpack::kind;
use super::{AttributePath, MAX_DEPTH, Number, PathStep, Type, Value};
use crate::error::{Encoding, Error, Result};

/// Reads a value of type `ty` from JSON text.
///
/// # Errors
///
/// [`Error::Decode`] naming the path when the text is not JSON, holds
/// another type or an attribute the object type lacks, or nests deeper
/// than the limit.
pub fn decode(text: &[u8], ty: &Type) -> Result<Value> {
    let json = json_text::parse(text).map_err(|reason| Error::Decode {
        encoding: Encoding::Json,
        path: AttributePath::root(),
        reason,
    })?;
    let mut path = AttributePath::root();
    from_json(&json, ty, &mut path)
}

/// Writes `value` as type `ty` in compact JSON.
///
/// # Errors
///
/// [`Error::Encode`] naming the path for an unknown value (JSON has none),
/// an infinite number, or a value that does not fit the type.
pub fn encode(value: &Value, ty: &Type) -> Result<String> {
    let mut out = String::new();
    let mut path = AttributePath::root();
    to_json(value, ty, &mut path, &mut out, 0)?;
    Ok(out)
}

fn decode_error(path: &AttributePath, reason: impl Into<String>) -> Error {
    Error::Decode {
        encoding: Encoding::Json,
        path: path.clone(),
        reason: reason.into(),
    }
}

fn from_json(json: &Json, ty: &Type, path: &mut AttributePath) -> Result<Value> {
    if *json == Json::Null {
        return Ok(Value::Null);
    }
    let required = |what: &str| decode_error(path, format!("{what} is required"));
    match (ty, json) {
        (Type::Bool, Json::Bool(b)) => Ok(Value::Bool(*b)),
        (Type::Number, Json::Number(text)) => Number::parse(text)
            .map(Value::Number)
            .ok_or_else(|| required("number")),
        // go-cty accepts numbers written as strings.
        (Type::Number, Json::String(text)) => Number::parse(text)
            .map(Value::Number)
            .ok_or_else(|| required("number")),
        (Type::String, Json::String(text)) => Ok(Value::String(text.clone())),
        // And scalars where a string is expected, as their text.
        (Type::String, Json::Number(text)) => Ok(Value::String(text.clone())),
        (Type::String, Json::Bool(b)) => Ok(Value::String(b.to_string())),
        (Type::List(element) | Type::Set(element), Json::Array(items)) => {
            let mut values = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                path.push(PathStep::Index(i as i64));
                values.push(from_json(item, element, path)?);
                path.pop();
            }
            Ok(if matches!(ty, Type::List(_)) {
                Value::List(values)
            } else {
                Value::Set(values)
            })
        }
        (Type::Tuple(elements), Json::Array(items)) => {
            if items.len() != elements.len() {
                return Err(decode_error(
                    path,
                    format!(
                        "a tuple of length {} is required, got {}",
                        elements.len(),
                        items.len()
                    ),
                ));
            }
            let mut values = Vec::with_capacity(items.len());
            for (i, (item, element)) in items.iter().zip(elements).enumerate() {
                path.push(PathStep::Index(i as i64));
                values.push(from_json(item, element, path)?);
                path.pop();
            }
            Ok(Value::Tuple(values))
        }
        (Type::Map(element), Json::Object(members)) => {
            let mut values = BTreeMap::new();
            for (key, item) in members {
                path.push(PathStep::Key(key.clone()));
                let value = from_json(item, element, path)?;
                path.pop();
                if values.insert(key.clone(), value).is_some() {
                    return Err(decode_error(path, format!("duplicate map key {key:?}")));
                }
            }
            Ok(Value::Map(values))
        }
        (Type::Object(attributes), Json::Object(members)) => {
            let mut values = BTreeMap::new();
            for (name, item) in members {
                let Some(attribute) = attributes.get(name) else {
                    return Err(decode_error(
                        path,
                        format!("unsupported attribute {name:?}"),
                    ));
                };
                path.push(PathStep::Attribute(name.clone()));
                let value = from_json(item, attribute, path)?;
                path.pop();
                if values.insert(name.clone(), value).is_some() {
                    return Err(decode_error(path, format!("duplicate attribute {name:?}")));
                }
            }
            for name in attributes.keys() {
                values.entry(name.clone()).or_insert(Value::Null);
            }
            Ok(Value::Object(values))
        }
        (Type::Dynamic, Json::Object(members)) => {
            let mut inner_ty = None;
            let mut inner = None;
            for (key, item) in members {
                match key.as_str() {
                    "type" => {
                        inner_ty = Some(
                            Type::from_json_value(item)
                                .map_err(|e| decode_error(path, e.to_string()))?,
                        )
                    }
                    "value" => inner = Some(item),
                    other => {
                        return Err(decode_error(
                            path,
                            format!("invalid key {other:?} in dynamically-typed value"),
                        ));
                    }
                }
            }
            let (Some(inner_ty), Some(inner)) = (inner_ty, inner) else {
                return Err(decode_error(
                    path,
                    "a dynamically-typed value needs both \"type\" and \"value\"",
                ));
            };
            let value = from_json(inner, &inner_ty, path)?;
            Ok(Value::Dynamic(inner_ty, Box::new(value)))
        }
        (Type::Dynamic, _) => Err(required("a dynamically-typed value ({\"value\",\"type\"})")),
        (_, other) => Err(decode_error(
            path,
            format!("{} is required, got {}", ty.to_json(), json_kind(other)),
        )),
    }
}

fn json_kind(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "a bool",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

fn to_json(
    value: &Value,
    ty: &Type,
    path: &mut AttributePath,
    out: &mut String,
    depth: usize,
) -> Result<()> {
    let error = |path: &AttributePath, reason: String| Error::Encode {
        encoding: Encoding::Json,
        path: path.clone(),
        reason,
    };
    if depth > MAX_DEPTH {
        return Err(error(
            path,
            format!("nested more than {MAX_DEPTH} levels deep"),
        ));
    }
    if *ty == Type::Dynamic {
        let (inner_ty, inner) = match value {
            Value::Null => {
                out.push_str("null");
                return Ok(());
            }
            Value::Dynamic(inner_ty, inner) => (inner_ty.clone(), &**inner),
            other => (other.implied_type(), other),
        };
        out.push_str("{\"value\":");
        to_json(inner, &inner_ty, path, out, depth + 1)?;
        out.push_str(",\"type\":");
        out.push_str(&inner_ty.to_json());
        out.push('}');
        return Ok(());
    }
    match (value, ty) {
        (Value::Dynamic(_, inner), _) => to_json(inner, ty, path, out, depth),
        (Value::Null, _) => {
            out.push_str("null");
            Ok(())
        }
        (Value::Unknown, _) => Err(error(
            path,
            "the value is unknown, and JSON cannot hold unknown values (only msgpack can)"
                .to_owned(),
        )),
        (Value::Bool(b), Type::Bool) => {
            out.push_str(if *b { "true" } else { "false" });
            Ok(())
        }
        (Value::Number(n), Type::Number) => {
            if !n.is_finite() {
                return Err(error(path, format!("{n} cannot be written in JSON")));
            }
            out.push_str(&n.to_string());
            Ok(())
        }
        (Value::String(s), Type::String) => {
            json_text::write_string(out, s);
            Ok(())
        }
        (
            Value::List(items) | Value::Set(items) | Value::Tuple(items),
            Type::List(_) | Type::Set(_) | Type::Tuple(_),
        ) => {
            if let Type::Tuple(elements) = ty
                && elements.len() != items.len()
            {
                return Err(error(
                    path,
                    format!(
                        "a tuple of length {} is required, the value has {}",
                        elements.len(),
                        items.len()
                    ),
                ));
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let element = match ty {
                    Type::List(element) | Type::Set(element) => Some(&**element),
                    Type::Tuple(elements) => elements.get(i),
                    _ => None,
                };
                let element = element.unwrap_or(&Type::Dynamic);
                path.push(PathStep::Index(i as i64));
                to_json(item, element, path, out, depth + 1)?;
                path.pop();
            }
            out.push(']');
            Ok(())
        }
        (Value::Map(items) | Value::Object(items), Type::Map(element)) => {
            out.push('{');
            for (i, (key, item)) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_text::write_string(out, key);
                out.push(':');
                path.push(PathStep::Key(key.clone()));
                to_json(item, element, path, out, depth + 1)?;
                path.pop();
            }
            out.push('}');
            Ok(())
        }
        (Value::Map(items) | Value::Object(items), Type::Object(attributes)) => {
            if let Some(extra) = items.keys().find(|name| !attributes.contains_key(*name)) {
                return Err(error(
                    path,
                    format!("attribute {extra:?} is not in the object type"),
                ));
            }
            out.push('{');
            for (i, (name, attribute)) in attributes.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_text::write_string(out, name);
                out.push(':');
                path.push(PathStep::Attribute(name.clone()));
                to_json(
                    items.get(name).unwrap_or(&Value::Null),
                    attribute,
                    path,
                    out,
                    depth + 1,
                )?;
                path.pop();
            }
            out.push('}');
            Ok(())
        }
        (other, _) => Err(error(
            path,
            format!(
                "a {} value cannot be written as {}",
                kind(other),
                ty.to_json()
            ),
        )),
    }
}

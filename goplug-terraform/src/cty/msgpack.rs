//! cty values in MessagePack, as go-cty's `msgpack` package reads and
//! writes them: unknown is an extension (any extension decodes as
//! unknown, refined ones included), objects carry every attribute, numbers
//! are integers, float64s or decimal strings, dynamic values are
//! `[type JSON, value]`.

use std::collections::BTreeMap;

use super::number::Wire;
use super::{AttributePath, MAX_DEPTH, Number, PathStep, Type, Value};
use crate::error::{Encoding, Error, Result};

/// go-cty's unknown: fixext1, type 0, one zero byte.
const UNKNOWN: [u8; 3] = [0xd4, 0, 0];

/// Reads a value of type `ty` from `bytes` (the whole slice).
///
/// # Errors
///
/// [`Error::Decode`] naming the path when the bytes are malformed, hold
/// another type, an object with missing or extra attributes, or nest
/// deeper than the limit.
pub fn decode(bytes: &[u8], ty: &Type) -> Result<Value> {
    let mut reader = Reader {
        bytes,
        at: 0,
        path: AttributePath::root(),
    };
    let value = reader.value(ty, 0)?;
    if reader.at != bytes.len() {
        return Err(reader.error(format!(
            "{} bytes left after the value",
            bytes.len() - reader.at
        )));
    }
    Ok(value)
}

/// Writes `value` as type `ty`.
///
/// # Errors
///
/// [`Error::Encode`] naming the path when the value does not fit the type
/// (an attribute the object type lacks, a string where a number belongs,
/// a NaN).
pub fn encode(value: &Value, ty: &Type) -> Result<Vec<u8>> {
    let mut writer = Writer {
        out: Vec::new(),
        path: AttributePath::root(),
    };
    writer.value(value, ty, 0)?;
    Ok(writer.out)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    path: AttributePath,
}

/// What a msgpack header says comes next.
enum Head {
    Nil,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(usize),
    Bin(usize),
    Array(usize),
    Map(usize),
    Ext(usize),
}

impl Reader<'_> {
    fn error(&self, reason: impl Into<String>) -> Error {
        Error::Decode {
            encoding: Encoding::Msgpack,
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len());
        let Some(end) = end else {
            return Err(self.error("unexpected end of data"));
        };
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn be(&mut self, n: usize) -> Result<u64> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn len(&mut self, n: usize) -> Result<usize> {
        let len = self.be(n)?;
        usize::try_from(len).map_err(|_| self.error("length out of range"))
    }

    fn peek_ext(&self) -> bool {
        matches!(self.bytes.get(self.at), Some(0xc7..=0xc9 | 0xd4..=0xd8))
    }

    fn peek_nil(&self) -> bool {
        self.bytes.get(self.at) == Some(&0xc0)
    }

    #[allow(clippy::cast_possible_wrap)]
    fn head(&mut self) -> Result<Head> {
        let marker = self.take(1)?[0];
        Ok(match marker {
            0x00..=0x7f => Head::Uint(u64::from(marker)),
            0x80..=0x8f => Head::Map(usize::from(marker & 0x0f)),
            0x90..=0x9f => Head::Array(usize::from(marker & 0x0f)),
            0xa0..=0xbf => Head::Str(usize::from(marker & 0x1f)),
            0xc0 => Head::Nil,
            0xc2 => Head::Bool(false),
            0xc3 => Head::Bool(true),
            0xc4 => Head::Bin(self.len(1)?),
            0xc5 => Head::Bin(self.len(2)?),
            0xc6 => Head::Bin(self.len(4)?),
            0xc7 => Head::Ext(self.len(1)? + 1),
            0xc8 => Head::Ext(self.len(2)? + 1),
            0xc9 => Head::Ext(self.len(4)?.saturating_add(1)),
            0xca => Head::Float(f64::from(f32::from_bits(self.be(4)? as u32))),
            0xcb => Head::Float(f64::from_bits(self.be(8)?)),
            0xcc => Head::Uint(self.be(1)?),
            0xcd => Head::Uint(self.be(2)?),
            0xce => Head::Uint(self.be(4)?),
            0xcf => Head::Uint(self.be(8)?),
            0xd0 => Head::Int(i64::from(self.be(1)? as u8 as i8)),
            0xd1 => Head::Int(i64::from(self.be(2)? as u16 as i16)),
            0xd2 => Head::Int(i64::from(self.be(4)? as u32 as i32)),
            0xd3 => Head::Int(self.be(8)? as i64),
            0xd4 => Head::Ext(2),
            0xd5 => Head::Ext(3),
            0xd6 => Head::Ext(5),
            0xd7 => Head::Ext(9),
            0xd8 => Head::Ext(17),
            0xd9 => Head::Str(self.len(1)?),
            0xda => Head::Str(self.len(2)?),
            0xdb => Head::Str(self.len(4)?),
            0xdc => Head::Array(self.len(2)?),
            0xdd => Head::Array(self.len(4)?),
            0xde => Head::Map(self.len(2)?),
            0xdf => Head::Map(self.len(4)?),
            0xe0..=0xff => Head::Int(i64::from(marker as i8)),
            0xc1 => return Err(self.error("invalid msgpack marker 0xc1")),
        })
    }

    /// A string or binary (go-cty's decoder takes either for text).
    fn text(&mut self, what: &str) -> Result<String> {
        let (Head::Str(len) | Head::Bin(len)) = self.head()? else {
            return Err(self.error(format!("{what} is required")));
        };
        let bytes = self.take(len)?.to_vec();
        String::from_utf8(bytes).map_err(|_| self.error(format!("{what} is not UTF-8")))
    }

    fn sequence_len(&mut self, what: &str) -> Result<usize> {
        match self.head()? {
            Head::Array(len) => Ok(len),
            _ => Err(self.error(format!("{what} is required"))),
        }
    }

    fn map_len(&mut self, what: &str) -> Result<usize> {
        match self.head()? {
            Head::Map(len) => Ok(len),
            _ => Err(self.error(format!("{what} is required"))),
        }
    }

    /// Room for `len` elements, never more than the bytes left could hold.
    fn capacity(&self, len: usize) -> usize {
        len.min(self.bytes.len() - self.at)
    }

    fn value(&mut self, ty: &Type, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(self.error(format!("nested more than {MAX_DEPTH} levels deep")));
        }
        if self.peek_ext() {
            let Head::Ext(len) = self.head()? else {
                return Err(self.error("malformed extension"));
            };
            self.take(len)?;
            return Ok(Value::Unknown);
        }
        if *ty == Type::Dynamic {
            return self.dynamic(depth);
        }
        if self.peek_nil() {
            self.at += 1;
            return Ok(Value::Null);
        }
        match ty {
            Type::Bool => match self.head()? {
                Head::Bool(b) => Ok(Value::Bool(b)),
                _ => Err(self.error("bool is required")),
            },
            Type::Number => self.number(),
            Type::String => self.text("string").map(Value::String),
            Type::List(element) | Type::Set(element) => {
                let len = self.sequence_len(if matches!(ty, Type::List(_)) {
                    "list"
                } else {
                    "set"
                })?;
                let mut items = Vec::with_capacity(self.capacity(len));
                for i in 0..len {
                    self.path.push(PathStep::Index(i as i64));
                    items.push(self.value(element, depth + 1)?);
                    self.path.pop();
                }
                Ok(if matches!(ty, Type::List(_)) {
                    Value::List(items)
                } else {
                    Value::Set(items)
                })
            }
            Type::Tuple(elements) => {
                let len = self.sequence_len("tuple")?;
                if len != elements.len() {
                    return Err(self.error(format!(
                        "a tuple of length {} is required, got {len}",
                        elements.len()
                    )));
                }
                let mut items = Vec::with_capacity(len);
                for (i, element) in elements.iter().enumerate() {
                    self.path.push(PathStep::Index(i as i64));
                    items.push(self.value(element, depth + 1)?);
                    self.path.pop();
                }
                Ok(Value::Tuple(items))
            }
            Type::Map(element) => {
                let len = self.map_len("map")?;
                let mut items = BTreeMap::new();
                for _ in 0..len {
                    let key = self.text("map key")?;
                    self.path.push(PathStep::Key(key.clone()));
                    let item = self.value(element, depth + 1)?;
                    self.path.pop();
                    items.insert(key, item);
                }
                Ok(Value::Map(items))
            }
            Type::Object(attributes) => {
                let len = self.map_len("object")?;
                if len != attributes.len() {
                    return Err(self.error(format!(
                        "an object with {} attributes is required, got {len}",
                        attributes.len()
                    )));
                }
                let mut items = BTreeMap::new();
                for _ in 0..len {
                    let name = self.text("attribute name")?;
                    let Some(attribute) = attributes.get(&name) else {
                        return Err(self.error(format!("unsupported attribute {name:?}")));
                    };
                    self.path.push(PathStep::Attribute(name.clone()));
                    let item = self.value(attribute, depth + 1)?;
                    self.path.pop();
                    if items.insert(name.clone(), item).is_some() {
                        return Err(self.error(format!("attribute {name:?} appears twice")));
                    }
                }
                Ok(Value::Object(items))
            }
            Type::Dynamic => self.dynamic(depth),
        }
    }

    fn number(&mut self) -> Result<Value> {
        let number = match self.head()? {
            Head::Int(i) => Number::from_i64(i),
            Head::Uint(u) => Number::from_u64(u),
            Head::Float(f) => {
                Number::from_f64(f).ok_or_else(|| self.error("NaN is not a number"))?
            }
            Head::Str(len) | Head::Bin(len) => {
                let bytes = self.take(len)?;
                std::str::from_utf8(bytes)
                    .ok()
                    .and_then(Number::parse)
                    .ok_or_else(|| self.error("number is required"))?
            }
            _ => return Err(self.error("number is required")),
        };
        Ok(Value::Number(number))
    }

    fn dynamic(&mut self, depth: usize) -> Result<Value> {
        if self.peek_nil() {
            self.at += 1;
            return Ok(Value::Null);
        }
        if self.sequence_len("a dynamic value ([type, value])")? != 2 {
            return Err(self.error("dynamic value array must have exactly two elements"));
        }
        let type_json = self.text("dynamic value's type")?;
        let ty = Type::from_json(type_json.as_bytes()).map_err(|e| self.error(e.to_string()))?;
        let value = self.value(&ty, depth + 1)?;
        Ok(Value::Dynamic(ty, Box::new(value)))
    }
}

struct Writer {
    out: Vec<u8>,
    path: AttributePath,
}

impl Writer {
    fn error(&self, reason: impl Into<String>) -> Error {
        Error::Encode {
            encoding: Encoding::Msgpack,
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    fn mismatch(&self, value: &Value, ty: &Type) -> Error {
        self.error(format!(
            "a {} value cannot be written as {}",
            kind(value),
            ty.to_json()
        ))
    }

    fn head(&mut self, fix: u8, fix_max: usize, markers: [u8; 3], len: usize) {
        // Lengths here come from in-memory values, so u32 holds them.
        if len <= fix_max && fix != 0 {
            self.out.push(fix | len as u8);
        } else if len <= 0xff && markers[0] != 0 {
            self.out.push(markers[0]);
            self.out.push(len as u8);
        } else if len <= 0xffff {
            self.out.push(markers[1]);
            self.out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            self.out.push(markers[2]);
            self.out.extend_from_slice(&(len as u32).to_be_bytes());
        }
    }

    fn str(&mut self, text: &str) {
        self.head(0xa0, 31, [0xd9, 0xda, 0xdb], text.len());
        self.out.extend_from_slice(text.as_bytes());
    }

    fn bin(&mut self, bytes: &[u8]) {
        self.head(0, 0, [0xc4, 0xc5, 0xc6], bytes.len());
        self.out.extend_from_slice(bytes);
    }

    fn array(&mut self, len: usize) {
        self.head(0x90, 15, [0, 0xdc, 0xdd], len);
    }

    fn map(&mut self, len: usize) {
        self.head(0x80, 15, [0, 0xde, 0xdf], len);
    }

    /// The smallest encoding, as go-cty's encoder (compact ints) writes.
    #[allow(clippy::cast_sign_loss, clippy::cast_possible_truncation)]
    fn int(&mut self, v: i64) {
        match v {
            0..=0x7f => self.out.push(v as u8),
            -32..=-1 => self.out.push(v as i8 as u8),
            0x80..=0xff => self.out.extend_from_slice(&[0xcc, v as u8]),
            0x100..=0xffff => {
                self.out.push(0xcd);
                self.out.extend_from_slice(&(v as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                self.out.push(0xce);
                self.out.extend_from_slice(&(v as u32).to_be_bytes());
            }
            0x1_0000_0000.. => {
                self.out.push(0xcf);
                self.out.extend_from_slice(&(v as u64).to_be_bytes());
            }
            -0x80..=-33 => self.out.extend_from_slice(&[0xd0, v as i8 as u8]),
            -0x8000..=-0x81 => {
                self.out.push(0xd1);
                self.out.extend_from_slice(&(v as i16).to_be_bytes());
            }
            -0x8000_0000..=-0x8001 => {
                self.out.push(0xd2);
                self.out.extend_from_slice(&(v as i32).to_be_bytes());
            }
            _ => {
                self.out.push(0xd3);
                self.out.extend_from_slice(&v.to_be_bytes());
            }
        }
    }

    fn value(&mut self, value: &Value, ty: &Type, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(self.error(format!("nested more than {MAX_DEPTH} levels deep")));
        }
        if *ty == Type::Dynamic {
            return match value {
                Value::Null => {
                    self.out.push(0xc0);
                    Ok(())
                }
                Value::Unknown => {
                    self.out.extend_from_slice(&UNKNOWN);
                    Ok(())
                }
                Value::Dynamic(inner_ty, inner) => self.dynamic(inner, inner_ty, depth),
                other => self.dynamic(other, &other.implied_type(), depth),
            };
        }
        match (value, ty) {
            (Value::Dynamic(_, inner), _) => self.value(inner, ty, depth),
            (Value::Unknown, _) => {
                self.out.extend_from_slice(&UNKNOWN);
                Ok(())
            }
            (Value::Null, _) => {
                self.out.push(0xc0);
                Ok(())
            }
            (Value::Bool(b), Type::Bool) => {
                self.out.push(if *b { 0xc3 } else { 0xc2 });
                Ok(())
            }
            (Value::Number(n), Type::Number) => {
                match n.wire() {
                    Wire::Int(v) => self.int(v),
                    Wire::Float(f) => {
                        self.out.push(0xcb);
                        self.out.extend_from_slice(&f.to_bits().to_be_bytes());
                    }
                    Wire::Text(text) => self.str(&text),
                }
                Ok(())
            }
            (Value::String(s), Type::String) => {
                self.str(s);
                Ok(())
            }
            (
                Value::List(items) | Value::Set(items) | Value::Tuple(items),
                Type::List(element) | Type::Set(element),
            ) => {
                self.array(items.len());
                for (i, item) in items.iter().enumerate() {
                    self.path.push(PathStep::Index(i as i64));
                    self.value(item, element, depth + 1)?;
                    self.path.pop();
                }
                Ok(())
            }
            (
                Value::List(items) | Value::Set(items) | Value::Tuple(items),
                Type::Tuple(elements),
            ) => {
                if items.len() != elements.len() {
                    return Err(self.error(format!(
                        "a tuple of length {} is required, the value has {}",
                        elements.len(),
                        items.len()
                    )));
                }
                self.array(items.len());
                for (i, (item, element)) in items.iter().zip(elements).enumerate() {
                    self.path.push(PathStep::Index(i as i64));
                    self.value(item, element, depth + 1)?;
                    self.path.pop();
                }
                Ok(())
            }
            (Value::Map(items) | Value::Object(items), Type::Map(element)) => {
                self.map(items.len());
                for (key, item) in items {
                    self.str(key);
                    self.path.push(PathStep::Key(key.clone()));
                    self.value(item, element, depth + 1)?;
                    self.path.pop();
                }
                Ok(())
            }
            (Value::Map(items) | Value::Object(items), Type::Object(attributes)) => {
                if let Some(extra) = items.keys().find(|name| !attributes.contains_key(*name)) {
                    return Err(self.error(format!(
                        "attribute {extra:?} is not in the object type (attributes: {})",
                        attributes.keys().cloned().collect::<Vec<_>>().join(", ")
                    )));
                }
                self.map(attributes.len());
                for (name, attribute) in attributes {
                    self.str(name);
                    self.path.push(PathStep::Attribute(name.clone()));
                    self.value(
                        items.get(name).unwrap_or(&Value::Null),
                        attribute,
                        depth + 1,
                    )?;
                    self.path.pop();
                }
                Ok(())
            }
            (other, _) => Err(self.mismatch(other, ty)),
        }
    }

    fn dynamic(&mut self, value: &Value, ty: &Type, depth: usize) -> Result<()> {
        self.array(2);
        self.bin(ty.to_json().as_bytes());
        self.value(value, ty, depth + 1)
    }
}

/// A value's variant, for errors.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Unknown => "unknown",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::List(_) => "list",
        Value::Set(_) => "set",
        Value::Map(_) => "map",
        Value::Tuple(_) => "tuple",
        Value::Object(_) => "object",
        Value::Dynamic(_, inner) => kind(inner),
    }
}

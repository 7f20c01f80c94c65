//! The encoder: Go's `Encoder.Encode`, byte for byte.

use std::collections::{HashMap, HashSet};

use super::wire::{
    MAX_INTERFACE_NAME, WIRE_ARRAY, WIRE_MAP, WIRE_SLICE, WIRE_STRUCT, builtin_id, encoder_field,
    float_bits, put_int, put_message, put_uint,
};
use super::{FIRST_USER_ID, Gob, GobError, InterfaceValue, StructType, Type, Value};

/// How deeply values and types may nest in what an [`Encoder`] sends.
const MAX_DEPTH: usize = 256;

/// A gob encoder for one direction of a stream: remembers which types it
/// has defined, so that each definition is sent once.
#[derive(Debug)]
pub struct Encoder {
    next_id: i64,
    /// Every type with an id: the id and the name its definition carries.
    types: HashMap<Type, (i64, String)>,
    /// The types whose definitions were sent.
    sent: HashSet<Type>,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

/// Where a type is first met, which decides the name Go gives it.
#[derive(Clone, Copy)]
enum NameCtx {
    /// A value's own type (`Encode`'s argument, an interface's concrete type).
    Top,
    /// The type of a struct field.
    Field,
    /// A slice's element type.
    SliceElem,
    /// An array's element type or a map's key or element type.
    Unnamed,
}

impl Encoder {
    /// An encoder whose first type gets id 64, as in a Go (≥ 1.21) process
    /// that has not encoded anything yet.
    pub fn new() -> Self {
        Self::with_first_id(FIRST_USER_ID)
    }

    /// An encoder whose first type gets id `first` (at least 64: gob
    /// reserves the ids below). Go numbers types per process, so a Go
    /// process that encoded other types first uses higher ids.
    pub fn with_first_id(first: i64) -> Self {
        Encoder {
            next_id: first.clamp(FIRST_USER_ID, i64::from(i32::MAX)),
            types: HashMap::new(),
            sent: HashSet::new(),
        }
    }

    /// Appends to `out` everything Go's `Encoder.Encode` would write for
    /// this value: the definitions of the types this encoder has not sent
    /// yet, then the value, each as a length-prefixed message. On error
    /// nothing is appended and the encoder is unchanged.
    pub fn encode(&mut self, ty: &Type, value: &Value, out: &mut Vec<u8>) -> Result<(), GobError> {
        validate(ty, value)?;
        let mut buf = Vec::new();
        self.send_type_descriptor(out, &mut buf, ty);
        put_int(&mut buf, self.id(ty));
        self.encode_top(ty, value, &mut buf, out);
        put_message(out, &buf);
        Ok(())
    }

    /// [`encode`](Self::encode) for a [`Gob`] value.
    pub fn encode_gob<T: Gob>(&mut self, value: &T, out: &mut Vec<u8>) -> Result<(), GobError> {
        self.encode(&T::gob_type(), &value.to_gob(), out)
    }

    fn id(&self, ty: &Type) -> i64 {
        builtin_id(ty)
            .or_else(|| self.types.get(ty).map(|(id, _)| *id))
            .unwrap_or(0)
    }

    /// Go's `sendTypeDescriptor`: defines `ty` and the types inside it. Each
    /// definition is appended to `state` and then `state` (with whatever it
    /// held before: Go's framing) goes to `writer` as one message.
    fn send_type_descriptor(&mut self, writer: &mut Vec<u8>, state: &mut Vec<u8>, ty: &Type) {
        if builtin_id(ty).is_some() || self.sent.contains(ty) {
            return;
        }
        self.assign(ty, NameCtx::Top);
        self.send_type(writer, state, ty);
    }

    /// Go's `newTypeObject`: allocates ids for `ty` and the types inside it,
    /// a struct before its fields, a slice, array or map after its elements.
    fn assign(&mut self, ty: &Type, ctx: NameCtx) {
        if builtin_id(ty).is_some() || self.types.contains_key(ty) {
            return;
        }
        let name = type_name(ty, ctx);
        match ty {
            Type::Struct(st) => {
                self.allocate(ty, name);
                for (_, field) in &st.fields {
                    self.assign(field, NameCtx::Field);
                }
            }
            Type::Slice(elem) => {
                self.assign(elem, NameCtx::SliceElem);
                self.allocate(ty, name);
            }
            Type::Array(_, elem) => {
                self.assign(elem, NameCtx::Unnamed);
                self.allocate(ty, name);
            }
            Type::Map(key, elem) => {
                self.assign(key, NameCtx::Unnamed);
                self.assign(elem, NameCtx::Unnamed);
                self.allocate(ty, name);
            }
            _ => self.allocate(ty, name),
        }
    }

    fn allocate(&mut self, ty: &Type, name: String) {
        let id = self.next_id;
        self.next_id += 1;
        self.types.insert(ty.clone(), (id, name));
    }

    /// Go's `sendType`/`sendActualType`: the definition of `ty` if not sent
    /// yet, then those of the types inside it, depth first.
    fn send_type(&mut self, writer: &mut Vec<u8>, state: &mut Vec<u8>, ty: &Type) {
        if builtin_id(ty).is_some() || self.sent.contains(ty) {
            return;
        }
        put_int(state, -self.id(ty));
        self.put_wire_type(state, ty);
        put_message(writer, state);
        state.clear();
        self.sent.insert(ty.clone());
        match ty {
            Type::Struct(st) => {
                for (_, field) in &st.fields {
                    self.send_type(writer, state, field);
                }
            }
            Type::Slice(elem) | Type::Array(_, elem) => self.send_type(writer, state, elem),
            Type::Map(key, elem) => {
                self.send_type(writer, state, key);
                self.send_type(writer, state, elem);
            }
            _ => {}
        }
    }

    /// Appends the `wireType` value describing `ty`.
    fn put_wire_type(&self, out: &mut Vec<u8>, ty: &Type) {
        let (id, name) = self
            .types
            .get(ty)
            .map(|(id, name)| (*id, name.as_str()))
            .unwrap_or((0, ""));
        let mut wire = Fields::new();
        match ty {
            Type::Array(len, elem) => {
                wire.next(out, WIRE_ARRAY);
                let mut array = Fields::new();
                array.common(out, name, id);
                array.int(out, 1, self.id(elem));
                array.int(out, 2, *len as i64);
                out.push(0);
            }
            Type::Slice(elem) => {
                wire.next(out, WIRE_SLICE);
                let mut slice = Fields::new();
                slice.common(out, name, id);
                slice.int(out, 1, self.id(elem));
                out.push(0);
            }
            Type::Struct(st) => {
                wire.next(out, WIRE_STRUCT);
                let mut strukt = Fields::new();
                strukt.common(out, name, id);
                if !st.fields.is_empty() {
                    strukt.next(out, 1);
                    put_uint(out, st.fields.len() as u64);
                    for (field_name, field_ty) in &st.fields {
                        let mut field = Fields::new();
                        field.string(out, 0, field_name);
                        field.int(out, 1, self.id(field_ty));
                        out.push(0);
                    }
                }
                out.push(0);
            }
            Type::Map(key, elem) => {
                wire.next(out, WIRE_MAP);
                let mut map = Fields::new();
                map.common(out, name, id);
                map.int(out, 1, self.id(key));
                map.int(out, 2, self.id(elem));
                out.push(0);
            }
            Type::GobEncoder(kind, _) => {
                wire.next(out, encoder_field(*kind));
                let mut encoder = Fields::new();
                encoder.common(out, name, id);
                out.push(0);
            }
            _ => {}
        }
        out.push(0);
    }

    /// A value as `Encode` sends it: a struct as its fields, anything else
    /// as a singleton (field delta 0, then the value, even if zero).
    fn encode_top(&mut self, ty: &Type, value: &Value, buf: &mut Vec<u8>, writer: &mut Vec<u8>) {
        match (ty, value) {
            (Type::Struct(st), Value::Struct(fields)) => {
                self.encode_struct(st, fields, buf, writer);
            }
            _ => {
                put_uint(buf, 0);
                self.encode_value(ty, value, buf, writer);
            }
        }
    }

    fn encode_struct(
        &mut self,
        st: &StructType,
        fields: &[(String, Value)],
        buf: &mut Vec<u8>,
        writer: &mut Vec<u8>,
    ) {
        let matched = match_fields(st, fields).unwrap_or_default();
        let mut last = -1i64;
        for (i, ((_, ty), value)) in st.fields.iter().zip(matched).enumerate() {
            let Some(value) = value else { continue };
            if !is_sent(value) {
                continue;
            }
            put_uint(buf, (i as i64 - last) as u64);
            last = i as i64;
            self.encode_value(ty, value, buf, writer);
        }
        put_uint(buf, 0);
    }

    /// A value's encoding, zero or not (Go's encoders with `sendZero`).
    fn encode_value(&mut self, ty: &Type, value: &Value, buf: &mut Vec<u8>, writer: &mut Vec<u8>) {
        match (ty, value) {
            (_, Value::Bool(b)) => put_uint(buf, u64::from(*b)),
            (_, Value::Int(i)) => put_int(buf, *i),
            (_, Value::Uint(u)) => put_uint(buf, *u),
            (_, Value::Float(f)) => put_uint(buf, float_bits(*f)),
            (_, Value::Complex(re, im)) => {
                put_uint(buf, float_bits(*re));
                put_uint(buf, float_bits(*im));
            }
            (_, Value::String(s)) => {
                put_uint(buf, s.len() as u64);
                buf.extend_from_slice(s.as_bytes());
            }
            (_, Value::Bytes(b)) => {
                put_uint(buf, b.len() as u64);
                buf.extend_from_slice(b);
            }
            (
                Type::Slice(elem) | Type::Array(_, elem),
                Value::Slice(items) | Value::Array(items),
            ) => {
                put_uint(buf, items.len() as u64);
                for item in items {
                    self.encode_value(elem, item, buf, writer);
                }
            }
            (Type::Map(key_ty, elem_ty), Value::Map(pairs)) => {
                put_uint(buf, pairs.len() as u64);
                for (key, elem) in pairs {
                    self.encode_value(key_ty, key, buf, writer);
                    self.encode_value(elem_ty, elem, buf, writer);
                }
            }
            (Type::Struct(st), Value::Struct(fields)) => {
                self.encode_struct(st, fields, buf, writer)
            }
            (_, Value::Interface(None)) => put_uint(buf, 0),
            (_, Value::Interface(Some(iv))) => self.encode_interface(iv, buf, writer),
            // Ruled out by `validate`.
            _ => {}
        }
    }

    /// Go's `encodeInterface`: the name, the concrete type's definitions
    /// (flushing `buf` into `writer` with each, as Go does), its id, then
    /// the value as a length-prefixed message inside `buf`, encoded with
    /// `buf` as the writer for nested definitions.
    fn encode_interface(&mut self, iv: &InterfaceValue, buf: &mut Vec<u8>, writer: &mut Vec<u8>) {
        put_uint(buf, iv.name.len() as u64);
        buf.extend_from_slice(iv.name.as_bytes());
        self.send_type_descriptor(writer, buf, &iv.ty);
        put_int(buf, self.id(&iv.ty));
        let mut data = Vec::new();
        self.encode_top(&iv.ty, &iv.value, &mut data, buf);
        put_message(buf, &data);
    }
}

/// Field-delta bookkeeping for the hand-written `wireType` encoding.
struct Fields {
    last: i64,
}

impl Fields {
    fn new() -> Self {
        Fields { last: -1 }
    }

    fn next(&mut self, out: &mut Vec<u8>, field: i64) {
        put_uint(out, (field - self.last) as u64);
        self.last = field;
    }

    fn int(&mut self, out: &mut Vec<u8>, field: i64, value: i64) {
        if value != 0 {
            self.next(out, field);
            put_int(out, value);
        }
    }

    fn string(&mut self, out: &mut Vec<u8>, field: i64, value: &str) {
        if !value.is_empty() {
            self.next(out, field);
            put_uint(out, value.len() as u64);
            out.extend_from_slice(value.as_bytes());
        }
    }

    /// The embedded `CommonType` (field 0): always sent, as a struct field.
    fn common(&mut self, out: &mut Vec<u8>, name: &str, id: i64) {
        self.next(out, 0);
        let mut common = Fields::new();
        common.string(out, 0, name);
        common.int(out, 1, id);
        out.push(0);
    }
}

/// Whether Go sends a struct field holding `value` (it omits zero values,
/// except structs and arrays; maps are omitted only when nil, which a
/// present [`Value::Map`] is not).
fn is_sent(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::Int(i) => *i != 0,
        Value::Uint(u) => *u != 0,
        Value::Float(f) => *f != 0.0,
        Value::Complex(re, im) => *re != 0.0 || *im != 0.0,
        Value::String(s) => !s.is_empty(),
        Value::Bytes(b) => !b.is_empty(),
        Value::Slice(items) => !items.is_empty(),
        Value::Interface(iv) => iv.is_some(),
        Value::Array(_) | Value::Map(_) | Value::Struct(_) => true,
    }
}

/// The name Go gives `ty` in its definition when it is first met in `ctx`.
fn type_name(ty: &Type, ctx: NameCtx) -> String {
    let named = match ty {
        Type::Struct(st) => Some(st.name.as_str()),
        Type::GobEncoder(_, name) => Some(name.as_str()),
        _ => None,
    };
    match (ctx, named) {
        (NameCtx::Unnamed, _) => String::new(),
        (NameCtx::Field, Some(name)) if !name.is_empty() => wire_name(name).to_owned(),
        (NameCtx::Field, _) => ty.go_string(),
        (NameCtx::Top | NameCtx::SliceElem, Some(name)) => wire_name(name).to_owned(),
        (NameCtx::Top | NameCtx::SliceElem, None) => String::new(),
    }
}

/// The unqualified name of a Go type name: `Request` for `rpc.Request`.
fn wire_name(name: &str) -> &str {
    if name.contains(|c: char| " []{}()*;".contains(c)) {
        return name;
    }
    name.rsplit('.').next().unwrap_or(name)
}

/// The value of each field of `st`, by name, in the type's order; an error
/// for a value field the type does not have.
fn match_fields<'v>(
    st: &StructType,
    fields: &'v [(String, Value)],
) -> Result<Vec<Option<&'v Value>>, GobError> {
    let mut used = vec![false; fields.len()];
    let mut matched = Vec::with_capacity(st.fields.len());
    for (name, _) in &st.fields {
        let found = fields
            .iter()
            .enumerate()
            .find(|(i, (n, _))| !used[*i] && n == name)
            .map(|(i, (_, value))| {
                used[i] = true;
                value
            });
        matched.push(found);
    }
    if let Some(i) = used.iter().position(|used| !used) {
        return Err(GobError::UnknownField {
            type_name: st.name.clone(),
            field: fields[i].0.clone(),
        });
    }
    Ok(matched)
}

/// Checks that `value` is a value of `ty` that an [`Encoder`] can send: the
/// kinds match, arrays have their type's length, struct values name only
/// fields of their type, non-nil interface values have a type name of at
/// most 1024 bytes, struct fields have names, and nothing nests deeper than
/// 256 levels.
pub fn validate(ty: &Type, value: &Value) -> Result<(), GobError> {
    check_type(ty, 0)?;
    check_value(ty, value, 0)
}

fn check_type(ty: &Type, depth: usize) -> Result<(), GobError> {
    if depth > MAX_DEPTH {
        return Err(GobError::DepthLimit { max: MAX_DEPTH });
    }
    match ty {
        Type::Slice(elem) | Type::Array(_, elem) => check_type(elem, depth + 1),
        Type::Map(key, elem) => {
            check_type(key, depth + 1)?;
            check_type(elem, depth + 1)
        }
        Type::Struct(st) => {
            for (name, field) in &st.fields {
                if name.is_empty() {
                    return Err(GobError::EmptyFieldName {
                        type_name: st.name.clone(),
                    });
                }
                check_type(field, depth + 1)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn mismatch(ty: &Type, value: &Value) -> GobError {
    GobError::TypeMismatch {
        expected: ty.go_string(),
        found: value.kind_name().to_owned(),
    }
}

fn check_value(ty: &Type, value: &Value, depth: usize) -> Result<(), GobError> {
    if depth > MAX_DEPTH {
        return Err(GobError::DepthLimit { max: MAX_DEPTH });
    }
    match (ty, value) {
        (Type::Bool, Value::Bool(_))
        | (Type::Int, Value::Int(_))
        | (Type::Uint, Value::Uint(_))
        | (Type::Float, Value::Float(_))
        | (Type::Complex, Value::Complex(..))
        | (Type::String, Value::String(_))
        | (Type::Bytes | Type::GobEncoder(..), Value::Bytes(_)) => Ok(()),
        (Type::Slice(elem), Value::Slice(items)) => items
            .iter()
            .try_for_each(|item| check_value(elem, item, depth + 1)),
        (Type::Array(len, elem), Value::Array(items)) => {
            if items.len() != *len {
                return Err(GobError::ArrayLength {
                    expected: *len,
                    found: items.len() as u64,
                });
            }
            items
                .iter()
                .try_for_each(|item| check_value(elem, item, depth + 1))
        }
        (Type::Map(key_ty, elem_ty), Value::Map(pairs)) => {
            pairs.iter().try_for_each(|(key, elem)| {
                check_value(key_ty, key, depth + 1)?;
                check_value(elem_ty, elem, depth + 1)
            })
        }
        (Type::Struct(st), Value::Struct(fields)) => {
            let matched = match_fields(st, fields)?;
            for ((name, field_ty), field) in st.fields.iter().zip(matched) {
                if let Some(field) = field {
                    check_value(field_ty, field, depth + 1).map_err(|e| e.in_field(name))?;
                }
            }
            Ok(())
        }
        (Type::Interface, Value::Interface(None)) => Ok(()),
        (Type::Interface, Value::Interface(Some(iv))) => {
            if iv.name.is_empty() {
                return Err(GobError::EmptyInterfaceName);
            }
            if iv.name.len() > MAX_INTERFACE_NAME {
                return Err(GobError::InterfaceNameTooLong { len: iv.name.len() });
            }
            check_type(&iv.ty, depth + 1)?;
            check_value(&iv.ty, &iv.value, depth + 1)
        }
        _ => Err(mismatch(ty, value)),
    }
}

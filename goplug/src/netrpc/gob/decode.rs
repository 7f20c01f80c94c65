//! The decoder: bounded, incremental, and as lenient as Go's.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::wire::{
    MAX_INTERFACE_NAME, UintRead, WIRE_ARRAY, WIRE_BINARY_MARSHALER, WIRE_GOB_ENCODER, WIRE_MAP,
    WIRE_SLICE, WIRE_STRUCT, builtin_type, float_from_bits, read_uint, uint_to_int,
};
use super::{
    FIRST_USER_ID, Gob, GobEncoderKind, GobError, InterfaceValue, Limits, StructType, Type, Value,
};

/// A type definition as received: element types by id.
#[derive(Debug)]
enum WireType {
    Array {
        elem: i64,
        len: usize,
    },
    Slice {
        elem: i64,
    },
    Map {
        key: i64,
        elem: i64,
    },
    Struct {
        name: String,
        fields: Vec<(String, i64)>,
    },
    Encoder {
        kind: GobEncoderKind,
        name: String,
    },
}

/// A gob decoder for one direction of a stream: remembers the type
/// definitions it received.
#[derive(Debug)]
pub struct Decoder {
    limits: Limits,
    types: HashMap<i64, Arc<WireType>>,
    /// After `Ok(None)`: how long the buffer must be before another attempt
    /// can get further (so a large value arriving in small reads is not
    /// parsed again for every read).
    pub(super) wanted: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl Decoder {
    /// A decoder that accepts what `limits` allow.
    pub fn new(limits: Limits) -> Self {
        Decoder {
            limits,
            types: HashMap::new(),
            wanted: 0,
        }
    }

    /// The limits this decoder enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Tries to decode one value from the front of `buf`.
    ///
    /// `Ok(Some((ty, value, consumed)))` once a whole value is there:
    /// `consumed` bytes (any type definitions before the value, which this
    /// decoder now remembers, and the value's messages) are used up.
    /// `Ok(None)` when more bytes are needed: nothing is consumed or
    /// remembered, so call again with the same bytes and more (until the
    /// message it waits for is complete, such calls return `Ok(None)`
    /// without parsing anything). An error means the stream is broken.
    pub fn decode(&mut self, buf: &[u8]) -> Result<Option<(Type, Value, usize)>, GobError> {
        Ok(self
            .decode_many(buf, 1)?
            .and_then(|(mut values, consumed)| {
                values.pop().map(|(ty, value)| (ty, value, consumed))
            }))
    }

    /// [`decode`](Self::decode) for `count` consecutive values, all or
    /// nothing: `Ok(None)` unless all of them are complete.
    #[allow(clippy::type_complexity)]
    pub fn decode_many(
        &mut self,
        buf: &[u8],
        count: usize,
    ) -> Result<Option<(Vec<(Type, Value)>, usize)>, GobError> {
        if buf.len() < self.wanted {
            return Ok(None);
        }
        self.wanted = 0;
        let mut state = State {
            data: buf,
            next: 0,
            pos: 0,
            end: 0,
            committed: &self.types,
            pending: HashMap::new(),
            limits: self.limits,
            budget: 0,
        };
        let mut values = Vec::with_capacity(count.min(16));
        for _ in 0..count {
            match state.decode_one() {
                Ok(value) => values.push(value),
                Err(Stop::More(wanted)) => {
                    self.wanted = wanted;
                    return Ok(None);
                }
                Err(Stop::Fail(e)) => return Err(e),
            }
        }
        let consumed = state.next;
        let pending = state.pending;
        self.types.extend(pending);
        Ok(Some((values, consumed)))
    }

    /// [`decode`](Self::decode) into a [`Gob`] type. A value that does not
    /// convert is an error after it was consumed.
    pub fn decode_gob<T: Gob>(&mut self, buf: &[u8]) -> Result<Option<(T, usize)>, GobError> {
        match self.decode(buf)? {
            Some((_, value, consumed)) => Ok(Some((T::from_gob(value)?, consumed))),
            None => Ok(None),
        }
    }
}

/// Why decoding stopped.
enum Stop {
    /// The input ends before the value does; it must be at least this long
    /// for the next attempt to get further.
    More(usize),
    /// The input is bad.
    Fail(GobError),
}

impl From<GobError> for Stop {
    fn from(e: GobError) -> Self {
        Stop::Fail(e)
    }
}

type R<T> = Result<T, Stop>;

/// One decode attempt over the input, with the type definitions it
/// received so far (committed only when the attempt succeeds).
struct State<'a, 'd> {
    data: &'a [u8],
    /// Where the next message starts.
    next: usize,
    /// The read position in the current message.
    pos: usize,
    /// The end of the current message.
    end: usize,
    committed: &'d HashMap<i64, Arc<WireType>>,
    pending: HashMap<i64, Arc<WireType>>,
    limits: Limits,
    /// What is left of the allowance for building types and copying names:
    /// one unit per input byte, plus `max_type_nodes`.
    budget: usize,
}

impl<'a> State<'a, '_> {
    fn decode_one(&mut self) -> R<(Type, Value)> {
        // Like Go, drop whatever the previous value left in its message.
        self.pos = self.end;
        self.budget = self.limits.max_type_nodes;
        let id = self.type_sequence(false)?;
        let ty = self.expand(id, 0, &mut Vec::new())?;
        let value = self.top(&ty, 0)?;
        Ok((ty, value))
    }

    /// Makes the next length-prefixed message the current one.
    fn next_message(&mut self) -> R<()> {
        let rest = &self.data[self.next..];
        let (len, header) = match read_uint(rest) {
            UintRead::Done(len, header) => (len, header),
            UintRead::Short => return Err(Stop::More(self.data.len() + 1)),
            UintRead::Bad(count) => return Err(GobError::BadUint { count }.into()),
        };
        if len > self.limits.max_message as u64 {
            return Err(GobError::MessageTooLarge {
                len,
                max: self.limits.max_message,
            }
            .into());
        }
        let len = len as usize;
        if rest.len() - header < len {
            return Err(Stop::More(self.next + header + len));
        }
        self.pos = self.next + header;
        self.end = self.pos + len;
        self.next = self.end;
        self.budget = self.budget.saturating_add(len);
        Ok(())
    }

    fn remaining(&self) -> usize {
        self.end - self.pos
    }

    fn charge(&mut self, units: usize) -> R<()> {
        match self.budget.checked_sub(units) {
            Some(left) => {
                self.budget = left;
                Ok(())
            }
            None => Err(GobError::TypeTooLarge {
                max: self.limits.max_type_nodes,
            }
            .into()),
        }
    }

    fn read_uint(&mut self, what: &'static str) -> R<u64> {
        match read_uint(&self.data[self.pos..self.end]) {
            UintRead::Done(x, n) => {
                self.pos += n;
                Ok(x)
            }
            UintRead::Short => Err(GobError::Truncated { what }.into()),
            UintRead::Bad(count) => Err(GobError::BadUint { count }.into()),
        }
    }

    fn read_int(&mut self, what: &'static str) -> R<i64> {
        Ok(uint_to_int(self.read_uint(what)?))
    }

    /// A length-prefixed run of bytes.
    fn read_bytes(&mut self, what: &'static str) -> R<&'a [u8]> {
        let len = self.read_uint(what)?;
        let remaining = self.remaining();
        if len > remaining as u64 {
            return Err(GobError::LengthOutOfRange {
                what,
                len,
                remaining,
            }
            .into());
        }
        let bytes = &self.data[self.pos..self.pos + len as usize];
        self.pos += len as usize;
        Ok(bytes)
    }

    fn read_string(&mut self, what: &'static str) -> R<String> {
        let bytes = self.read_bytes(what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| GobError::InvalidUtf8 { what }.into())
    }

    /// A type id as Go reads it (a 32-bit `typeId`).
    fn read_type_id(&mut self, what: &'static str) -> R<i64> {
        let id = self.read_int(what)?;
        if id > i64::from(i32::MAX) || id < -i64::from(i32::MAX) {
            return Err(GobError::TypeIdOutOfRange { id }.into());
        }
        Ok(id)
    }

    /// Go's `decodeTypeSequence`: type definitions, then the id of the value
    /// that follows. Moves on to the next message whenever the current one
    /// is used up, which is how Go's framing of interface values with new
    /// types works.
    fn type_sequence(&mut self, in_interface: bool) -> R<i64> {
        loop {
            if self.pos == self.end {
                self.next_message()?;
            }
            let id = self.read_type_id("type id")?;
            if id >= 0 {
                return Ok(id);
            }
            self.recv_type(-id)?;
            if self.pos < self.end {
                if !in_interface {
                    return Err(GobError::ExtraData.into());
                }
                // The length of what follows a definition inside an
                // interface value; like Go, skip it.
                self.read_uint("length after a type definition")?;
            }
        }
    }

    fn wire(&self, id: i64) -> Option<Arc<WireType>> {
        self.pending
            .get(&id)
            .or_else(|| self.committed.get(&id))
            .cloned()
    }

    fn recv_type(&mut self, id: i64) -> R<()> {
        if id < FIRST_USER_ID {
            return Err(GobError::ReservedTypeId { id }.into());
        }
        if self.wire(id).is_some() {
            return Err(GobError::TypeRedefined { id }.into());
        }
        if self.committed.len() + self.pending.len() >= self.limits.max_types {
            return Err(GobError::TooManyTypes {
                max: self.limits.max_types,
            }
            .into());
        }
        let wire = self.read_wire_type(id)?;
        self.pending.insert(id, Arc::new(wire));
        Ok(())
    }

    /// Reads a struct of `fields` fields field by field (Go's
    /// `decodeStruct`): a zero delta or the end of the message ends it.
    fn read_struct(
        &mut self,
        type_name: &str,
        fields: usize,
        mut field: impl FnMut(&mut Self, usize) -> R<()>,
    ) -> R<()> {
        let mut last = -1i64;
        loop {
            if self.pos == self.end {
                return Ok(());
            }
            let delta = self.read_uint("field delta")?;
            if delta == 0 {
                return Ok(());
            }
            let left = (fields as i64 - 1 - last) as u64;
            if delta > left {
                return Err(GobError::FieldDeltaOutOfRange {
                    type_name: short(type_name),
                    after: last,
                    delta,
                    fields,
                }
                .into());
            }
            last += delta as i64;
            field(self, last as usize)?;
        }
    }

    /// Go's `wireType`: exactly one of its fields describes the type.
    fn read_wire_type(&mut self, id: i64) -> R<WireType> {
        let bad = |reason| Stop::Fail(GobError::BadTypeDefinition { id, reason });
        let mut found = None;
        self.read_struct("wireType", 7, |s, field| {
            let wire = match field as i64 {
                WIRE_ARRAY => s.read_array_type(id)?,
                WIRE_SLICE => {
                    let mut elem = 0;
                    s.read_struct("sliceType", 2, |s, field| {
                        match field {
                            0 => {
                                s.read_common()?;
                            }
                            _ => elem = s.read_type_id("slice element type")?,
                        }
                        Ok(())
                    })?;
                    WireType::Slice { elem }
                }
                WIRE_STRUCT => s.read_struct_type(id)?,
                WIRE_MAP => {
                    let (mut key, mut elem) = (0, 0);
                    s.read_struct("mapType", 3, |s, field| {
                        match field {
                            0 => {
                                s.read_common()?;
                            }
                            1 => key = s.read_type_id("map key type")?,
                            _ => elem = s.read_type_id("map element type")?,
                        }
                        Ok(())
                    })?;
                    WireType::Map { key, elem }
                }
                field => {
                    let kind = match field {
                        WIRE_GOB_ENCODER => GobEncoderKind::Gob,
                        WIRE_BINARY_MARSHALER => GobEncoderKind::Binary,
                        // WIRE_TEXT_MARSHALER, the last field.
                        _ => GobEncoderKind::Text,
                    };
                    let mut name = String::new();
                    s.read_struct("gobEncoderType", 1, |s, _| {
                        name = s.read_common()?;
                        Ok(())
                    })?;
                    WireType::Encoder { kind, name }
                }
            };
            if found.is_some() {
                return Err(bad("it describes more than one type"));
            }
            found = Some(wire);
            Ok(())
        })?;
        found.ok_or_else(|| bad("it describes no type"))
    }

    /// Go's `CommonType`: the name (the id repeated inside is ignored, as
    /// Go ignores it).
    fn read_common(&mut self) -> R<String> {
        let mut name = String::new();
        self.read_struct("CommonType", 2, |s, field| {
            match field {
                0 => name = s.read_string("type name")?,
                _ => {
                    s.read_int("type id")?;
                }
            }
            Ok(())
        })?;
        Ok(name)
    }

    fn read_array_type(&mut self, id: i64) -> R<WireType> {
        let (mut elem, mut len) = (0, 0);
        self.read_struct("arrayType", 3, |s, field| {
            match field {
                0 => {
                    s.read_common()?;
                }
                1 => elem = s.read_type_id("array element type")?,
                _ => len = s.read_int("array length")?,
            }
            Ok(())
        })?;
        // Every element takes at least a byte, so a longer array could never
        // be received.
        if len < 0 || len as u64 > self.limits.max_message as u64 {
            return Err(GobError::BadTypeDefinition {
                id,
                reason: "array length out of range",
            }
            .into());
        }
        Ok(WireType::Array {
            elem,
            len: len as usize,
        })
    }

    fn read_struct_type(&mut self, id: i64) -> R<WireType> {
        let mut name = String::new();
        let mut fields = Vec::new();
        self.read_struct("structType", 2, |s, field| {
            match field {
                0 => name = s.read_common()?,
                _ => {
                    let count = s.read_uint("field count")?;
                    for _ in 0..count {
                        if s.pos == s.end {
                            return Err(GobError::TooManyElements {
                                what: "field list",
                                len: count,
                            }
                            .into());
                        }
                        let (mut field_name, mut field_id) = (String::new(), 0);
                        s.read_struct("fieldType", 2, |s, field| {
                            match field {
                                0 => field_name = s.read_string("field name")?,
                                _ => field_id = s.read_type_id("field type")?,
                            }
                            Ok(())
                        })?;
                        fields.push((field_name, field_id));
                    }
                }
            }
            Ok(())
        })?;
        let mut names = HashSet::new();
        for (field_name, _) in &fields {
            if field_name.is_empty() {
                return Err(GobError::BadTypeDefinition {
                    id,
                    reason: "a field has no name",
                }
                .into());
            }
            if !names.insert(field_name.as_str()) {
                return Err(GobError::BadTypeDefinition {
                    id,
                    reason: "two fields have the same name",
                }
                .into());
            }
        }
        Ok(WireType::Struct { name, fields })
    }

    /// The [`Type`] of id `id`, built from the definitions received.
    fn expand(&mut self, id: i64, depth: usize, stack: &mut Vec<i64>) -> R<Type> {
        if depth > self.limits.max_depth {
            return Err(GobError::DepthLimit {
                max: self.limits.max_depth,
            }
            .into());
        }
        self.charge(1)?;
        if let Some(ty) = builtin_type(id) {
            return Ok(ty);
        }
        let wire = self.wire(id).ok_or(GobError::UnknownTypeId { id })?;
        if stack.contains(&id) {
            let name = match &*wire {
                WireType::Struct { name, .. } => short(name),
                _ => String::new(),
            };
            return Err(GobError::RecursiveType { id, name }.into());
        }
        stack.push(id);
        let ty = match &*wire {
            WireType::Array { elem, len } => {
                Type::Array(*len, Box::new(self.expand(*elem, depth + 1, stack)?))
            }
            WireType::Slice { elem } => {
                Type::Slice(Box::new(self.expand(*elem, depth + 1, stack)?))
            }
            WireType::Map { key, elem } => Type::Map(
                Box::new(self.expand(*key, depth + 1, stack)?),
                Box::new(self.expand(*elem, depth + 1, stack)?),
            ),
            WireType::Struct { name, fields } => {
                self.charge(name_units(name))?;
                let mut expanded = Vec::with_capacity(fields.len());
                for (field_name, field_id) in fields {
                    self.charge(name_units(field_name))?;
                    expanded.push((
                        field_name.clone(),
                        self.expand(*field_id, depth + 1, stack)?,
                    ));
                }
                Type::Struct(StructType {
                    name: name.clone(),
                    fields: expanded,
                })
            }
            WireType::Encoder { kind, name } => {
                self.charge(name_units(name))?;
                Type::GobEncoder(*kind, name.clone())
            }
        };
        stack.pop();
        Ok(ty)
    }

    /// A value as `Encode` sends it: a struct as its fields, anything else
    /// as a singleton field with delta 0.
    fn top(&mut self, ty: &Type, depth: usize) -> R<Value> {
        if let Type::Struct(st) = ty {
            return self.structure(st, depth);
        }
        let delta = self.read_uint("singleton field delta")?;
        if delta != 0 {
            return Err(GobError::SingletonDelta { delta }.into());
        }
        self.value(ty, depth)
    }

    fn depth_check(&self, depth: usize) -> R<()> {
        if depth > self.limits.max_depth {
            return Err(GobError::DepthLimit {
                max: self.limits.max_depth,
            }
            .into());
        }
        Ok(())
    }

    fn value(&mut self, ty: &Type, depth: usize) -> R<Value> {
        self.depth_check(depth)?;
        Ok(match ty {
            Type::Bool => Value::Bool(self.read_uint("bool")? != 0),
            Type::Int => Value::Int(self.read_int("int")?),
            Type::Uint => Value::Uint(self.read_uint("uint")?),
            Type::Float => Value::Float(float_from_bits(self.read_uint("float")?)),
            Type::Complex => {
                let re = float_from_bits(self.read_uint("complex")?);
                let im = float_from_bits(self.read_uint("complex")?);
                Value::Complex(re, im)
            }
            Type::String => Value::String(self.read_string("string")?),
            Type::Bytes | Type::GobEncoder(..) => {
                Value::Bytes(self.read_bytes("byte slice")?.to_vec())
            }
            Type::Interface => self.interface(depth)?,
            Type::Slice(elem) => {
                let len = self.read_uint("slice length")?;
                Value::Slice(self.elements("slice", len, elem, depth)?)
            }
            Type::Array(expected, elem) => {
                let len = self.read_uint("array length")?;
                if len != *expected as u64 {
                    return Err(GobError::ArrayLength {
                        expected: *expected,
                        found: len,
                    }
                    .into());
                }
                Value::Array(self.elements("array", len, elem, depth)?)
            }
            Type::Map(key_ty, elem_ty) => {
                let len = self.read_uint("map length")?;
                let mut pairs = Vec::with_capacity(self.capacity(len));
                for _ in 0..len {
                    if self.pos == self.end {
                        return Err(GobError::TooManyElements { what: "map", len }.into());
                    }
                    let key = self.value(key_ty, depth + 1)?;
                    let elem = self.value(elem_ty, depth + 1)?;
                    pairs.push((key, elem));
                }
                Value::Map(pairs)
            }
            Type::Struct(st) => self.structure(st, depth)?,
        })
    }

    /// An initial capacity for `len` elements: never more than the bytes
    /// left (each element takes at least one), nor a lot.
    fn capacity(&self, len: u64) -> usize {
        (len.min(4096) as usize).min(self.remaining())
    }

    fn elements(
        &mut self,
        what: &'static str,
        len: u64,
        elem: &Type,
        depth: usize,
    ) -> R<Vec<Value>> {
        let mut items = Vec::with_capacity(self.capacity(len));
        for _ in 0..len {
            // Go's check: every element takes at least one byte.
            if self.pos == self.end {
                return Err(GobError::TooManyElements { what, len }.into());
            }
            items.push(self.value(elem, depth + 1)?);
        }
        Ok(items)
    }

    fn structure(&mut self, st: &StructType, depth: usize) -> R<Value> {
        self.depth_check(depth)?;
        let mut fields = Vec::new();
        self.read_struct(&st.name, st.fields.len(), |s, field| {
            let (name, ty) = &st.fields[field];
            s.charge(name_units(name))?;
            let value = s.value(ty, depth + 1)?;
            fields.push((name.clone(), value));
            Ok(())
        })?;
        Ok(Value::Struct(fields))
    }

    /// Go's `decodeInterface`: the concrete type's name (empty for nil), its
    /// type definitions and id, a length Go ignores, and the value.
    fn interface(&mut self, depth: usize) -> R<Value> {
        let len = self.read_uint("interface type name length")?;
        let remaining = self.remaining();
        if len > remaining as u64 {
            return Err(GobError::LengthOutOfRange {
                what: "interface type name",
                len,
                remaining,
            }
            .into());
        }
        if len == 0 {
            return Ok(Value::Interface(None));
        }
        if len > MAX_INTERFACE_NAME as u64 {
            return Err(GobError::InterfaceNameTooLong { len: len as usize }.into());
        }
        let name = String::from_utf8(self.data[self.pos..self.pos + len as usize].to_vec())
            .map_err(|_| GobError::InvalidUtf8 {
                what: "interface type name",
            })?;
        self.pos += len as usize;
        let id = self.type_sequence(true)?;
        self.read_uint("interface value length")?;
        let ty = self.expand(id, depth + 1, &mut Vec::new())?;
        let value = self.top(&ty, depth + 1)?;
        Ok(Value::Interface(Some(Box::new(InterfaceValue {
            name,
            ty,
            value,
        }))))
    }
}

/// What copying a name costs from the decode's allowance.
fn name_units(name: &str) -> usize {
    name.len() / 32
}

/// A peer-supplied name, shortened for an error message.
fn short(name: &str) -> String {
    match name.char_indices().nth(64) {
        Some((cut, _)) => format!("{}...", &name[..cut]),
        None => name.to_owned(),
    }
}

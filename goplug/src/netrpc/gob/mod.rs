//! Go's [`encoding/gob`] stream format: what `net/rpc` speaks by default, and
//! so what go-plugin's net/rpc protocol speaks.
//!
//! Pure: no I/O. An [`Encoder`] appends to a `Vec<u8>`, a [`Decoder`] reads
//! from the front of a byte slice and says how much it consumed, so both fit
//! any transport (a yamux stream, a socket, a pipe).
//!
//! [`encoding/gob`]: https://pkg.go.dev/encoding/gob
//!
//! # Model
//!
//! gob is self-describing: the first time an encoder sends a value of a
//! composite type it sends the type's definition, and every value is tagged
//! with a type id. This module works on that model directly:
//!
//! - [`Type`] is a gob type (Go's kinds collapse onto it: every signed
//!   integer is [`Type::Int`], every float is [`Type::Float`], `[]byte` is
//!   [`Type::Bytes`]);
//! - [`Value`] is a value of such a type;
//! - the [`Gob`] trait maps Rust types onto them, and [`gob_struct!`]
//!   declares a Rust struct with the Go type and field names of a Go struct.
//!
//! # Compatibility with Go
//!
//! - The encoder reproduces Go's `Encoder.Encode` byte for byte: type ids are
//!   allocated in the order Go allocates them (a struct before its fields,
//!   a slice, array or map after its elements), type definitions are sent in
//!   Go's order, zero-valued struct fields are omitted as Go omits them, and
//!   the odd framing Go produces when an interface value needs a new type
//!   definition mid-message is reproduced too. Go numbers types per process,
//!   not per encoder; [`Encoder::with_first_id`] picks the first id (Go ≥ 1.21
//!   starts at 64, older versions at 65).
//! - Type names inside type definitions are cosmetic (no decoder reads
//!   them). Go derives them from the Go type (`[]string` as a struct field,
//!   nothing at top level, ...); this encoder derives the same names from the
//!   [`Type`], which knows no integer widths and no package names of unnamed
//!   composites, so `map[string]int64` as a struct field is named
//!   `map[string]int` here.
//! - The decoder is as lenient as Go's: integers of any width, fields matched
//!   by name (unknown ones skipped, missing ones zero), a struct that ends
//!   with its message, type definitions anywhere a Go decoder takes them.
//! - Go's `nil` slices and maps: a zero-length slice field is omitted (as Go
//!   omits it) and decodes as empty; a map field is sent whenever it is
//!   present in the [`Value::Struct`], even empty (Go's non-nil empty map),
//!   and [`Option`]`<HashMap<..>>` = `None` omits it (Go's nil map).
//! - A decoded [`Value::Struct`] holds the fields that were on the wire, in
//!   wire order: Go omits zero values, so a missing field means zero.
//!
//! # Why not the `gobwire` crate
//!
//! `gobwire` 0.1 targets the same protocol, but it is a single release by a
//! single author whose Go test corpus is not published, and a go-plugin host
//! decodes whatever a plugin process sends. This implementation is checked
//! byte for byte against Go in goplug's interop tests, and its decoder is
//! bounded and fuzzed (the `gob_decode` target under `fuzz/`):
//!
//! - every message length is checked against [`Limits::max_message`] before
//!   anything is buffered, and every string, slice, array or map length
//!   against the bytes actually left in the message before anything is
//!   allocated, so the memory a decode uses is proportional to its input;
//! - nesting is limited ([`Limits::max_depth`]), and so are the number of
//!   type definitions a peer may send ([`Limits::max_types`]) and the size
//!   of the [`Type`]s a decode builds ([`Limits::max_type_nodes`]);
//! - nothing a peer sends can panic: every problem is a [`GobError`] that
//!   names what was wrong.
//!
//! # Not supported
//!
//! - Recursive types (`type Node struct { Kids []Node }`) cannot be a
//!   [`Type`] tree: decoding a value of one is [`GobError::RecursiveType`].
//! - Values of types implementing `GobEncoder`, `BinaryMarshaler` or
//!   `TextMarshaler` (such as `time.Time`) are carried as their opaque bytes
//!   ([`Type::GobEncoder`]), not interpreted.

mod convert;
mod decode;
mod encode;
#[cfg(any(test, fuzzing))]
mod fuzz;
#[cfg(test)]
mod tests;
mod wire;

use std::fmt;

pub use crate::gob_struct;
pub use convert::{GoInterface, Gob};
#[doc(hidden)]
pub use convert::{take_field, wrong_kind};
pub use decode::Decoder;
pub use encode::{Encoder, validate};

/// The lowest type id Go (≥ 1.21) gives a user type; older Go starts at 65.
pub const FIRST_USER_ID: i64 = 64;

/// A gob type.
///
/// Go's types collapse onto these: every signed integer type is `Int`,
/// every unsigned one `Uint`, `float32`/`float64` are `Float`, `[]byte` (and
/// `[]uint8`) is `Bytes`, every interface type is `Interface`, and pointers
/// are transparent.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    /// `bool`.
    Bool,
    /// Any signed integer.
    Int,
    /// Any unsigned integer.
    Uint,
    /// `float32` or `float64`.
    Float,
    /// `complex64` or `complex128`.
    Complex,
    /// `string`.
    String,
    /// `[]byte`.
    Bytes,
    /// Any interface type, such as `interface{}`.
    Interface,
    /// `[]T` (other than `[]byte`).
    Slice(Box<Type>),
    /// `[N]T`.
    Array(usize, Box<Type>),
    /// `map[K]V`.
    Map(Box<Type>, Box<Type>),
    /// A struct.
    Struct(StructType),
    /// A type that encodes itself (`GobEncoder`, `BinaryMarshaler` or
    /// `TextMarshaler`), with its Go name; its values are opaque
    /// [`Value::Bytes`].
    GobEncoder(GobEncoderKind, String),
}

/// Which method a self-encoding type ([`Type::GobEncoder`]) uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GobEncoderKind {
    /// `GobEncode`/`GobDecode`.
    Gob,
    /// `MarshalBinary`/`UnmarshalBinary`.
    Binary,
    /// `MarshalText`/`UnmarshalText`.
    Text,
}

/// A struct type: its Go name and its exported fields in declaration order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StructType {
    /// The Go type as Go prints it, `pkg.Name` (`rpc.Request`,
    /// `main.Args`), or just `Name`; empty for an anonymous struct such as
    /// `struct{}`. Type definitions carry the part after the last dot, and
    /// a decoded type has only that part.
    pub name: String,
    /// The Go field names (`ServiceMethod`) and their types.
    pub fields: Vec<(String, Type)>,
}

impl StructType {
    /// A struct type named `name` with `fields`.
    pub fn new(name: impl Into<String>, fields: Vec<(String, Type)>) -> Self {
        StructType {
            name: name.into(),
            fields,
        }
    }
}

impl Type {
    /// `[]elem`.
    pub fn slice(elem: Type) -> Self {
        Type::Slice(Box::new(elem))
    }

    /// `[len]elem`.
    pub fn array(len: usize, elem: Type) -> Self {
        Type::Array(len, Box::new(elem))
    }

    /// `map[key]elem`.
    pub fn map(key: Type, elem: Type) -> Self {
        Type::Map(Box::new(key), Box::new(elem))
    }

    /// A struct type.
    pub fn structure(name: impl Into<String>, fields: Vec<(&str, Type)>) -> Self {
        Type::Struct(StructType::new(
            name,
            fields
                .into_iter()
                .map(|(name, ty)| (name.to_owned(), ty))
                .collect(),
        ))
    }

    /// The type as Go prints it (`map[string]interface {}`, `[]uint8`),
    /// with `int`, `uint`, `float64` and `complex128` for the collapsed
    /// kinds.
    pub fn go_string(&self) -> String {
        let mut out = String::new();
        self.write_go(&mut out);
        out
    }

    fn write_go(&self, out: &mut String) {
        match self {
            Type::Bool => out.push_str("bool"),
            Type::Int => out.push_str("int"),
            Type::Uint => out.push_str("uint"),
            Type::Float => out.push_str("float64"),
            Type::Complex => out.push_str("complex128"),
            Type::String => out.push_str("string"),
            Type::Bytes => out.push_str("[]uint8"),
            Type::Interface => out.push_str("interface {}"),
            Type::Slice(elem) => {
                out.push_str("[]");
                elem.write_go(out);
            }
            Type::Array(len, elem) => {
                out.push_str(&format!("[{len}]"));
                elem.write_go(out);
            }
            Type::Map(key, elem) => {
                out.push_str("map[");
                key.write_go(out);
                out.push(']');
                elem.write_go(out);
            }
            Type::Struct(st) if !st.name.is_empty() => out.push_str(&st.name),
            Type::Struct(st) if st.fields.is_empty() => out.push_str("struct {}"),
            Type::Struct(st) => {
                out.push_str("struct { ");
                for (i, (name, ty)) in st.fields.iter().enumerate() {
                    if i > 0 {
                        out.push_str("; ");
                    }
                    out.push_str(name);
                    out.push(' ');
                    ty.write_go(out);
                }
                out.push_str(" }");
            }
            Type::GobEncoder(_, name) => out.push_str(name),
        }
    }

    /// A short name of the kind, for error messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Type::Bool => "bool",
            Type::Int => "int",
            Type::Uint => "uint",
            Type::Float => "float",
            Type::Complex => "complex",
            Type::String => "string",
            Type::Bytes => "bytes",
            Type::Interface => "interface",
            Type::Slice(_) => "slice",
            Type::Array(..) => "array",
            Type::Map(..) => "map",
            Type::Struct(_) => "struct",
            Type::GobEncoder(..) => "GobEncoder",
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.go_string())
    }
}

/// A value of a gob [`Type`].
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A [`Type::Bool`].
    Bool(bool),
    /// A [`Type::Int`].
    Int(i64),
    /// A [`Type::Uint`].
    Uint(u64),
    /// A [`Type::Float`].
    Float(f64),
    /// A [`Type::Complex`]: real and imaginary parts.
    Complex(f64, f64),
    /// A [`Type::String`]. Go strings may hold any bytes; this decoder
    /// rejects strings that are not UTF-8.
    String(String),
    /// A [`Type::Bytes`], or the payload of a [`Type::GobEncoder`].
    Bytes(Vec<u8>),
    /// A [`Type::Slice`].
    Slice(Vec<Value>),
    /// A [`Type::Array`]: exactly as many elements as the type says.
    Array(Vec<Value>),
    /// A [`Type::Map`]: key/element pairs.
    Map(Vec<(Value, Value)>),
    /// A [`Type::Struct`]: fields by Go name. A field that is absent is
    /// not sent (Go's nil pointer, nil map); present fields are omitted
    /// when zero as Go omits them.
    Struct(Vec<(String, Value)>),
    /// A [`Type::Interface`]; `None` is a nil interface.
    Interface(Option<Box<InterfaceValue>>),
}

/// A non-nil interface value: the concrete type's registered name, the
/// concrete type, and the value.
#[derive(Clone, Debug, PartialEq)]
pub struct InterfaceValue {
    /// The name the concrete type is registered under on the Go side
    /// (`gob.Register`): `"string"`, `"int"`, `"[]uint8"`, `"main.Args"`.
    /// gob pre-registers the basic types and slices of them (see
    /// [`Gob::interface_name`]); `map[string]interface {}` and structs are
    /// only known to a Go peer that registers them.
    pub name: String,
    /// The concrete type.
    pub ty: Type,
    /// The concrete value.
    pub value: Value,
}

impl Value {
    /// Go's zero value of `ty`.
    pub fn zero(ty: &Type) -> Value {
        match ty {
            Type::Bool => Value::Bool(false),
            Type::Int => Value::Int(0),
            Type::Uint => Value::Uint(0),
            Type::Float => Value::Float(0.0),
            Type::Complex => Value::Complex(0.0, 0.0),
            Type::String => Value::String(String::new()),
            Type::Bytes | Type::GobEncoder(..) => Value::Bytes(Vec::new()),
            Type::Interface => Value::Interface(None),
            Type::Slice(_) => Value::Slice(Vec::new()),
            Type::Array(len, elem) => Value::Array(vec![Value::zero(elem); *len]),
            Type::Map(..) => Value::Map(Vec::new()),
            Type::Struct(_) => Value::Struct(Vec::new()),
        }
    }

    /// The field `name` of a struct value, if present.
    pub fn field(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Struct(fields) => fields.iter().find(|(n, _)| n == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// A short name of the kind, for error messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Uint(_) => "uint",
            Value::Float(_) => "float",
            Value::Complex(..) => "complex",
            Value::String(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::Slice(_) => "slice",
            Value::Array(_) => "array",
            Value::Map(_) => "map",
            Value::Struct(_) => "struct",
            Value::Interface(_) => "interface",
        }
    }
}

impl InterfaceValue {
    /// An interface value holding `value`, with the concrete type's
    /// registered name (see [`Gob::interface_name`]);
    /// [`GobError::NotRegistered`] for types without one.
    pub fn of<T: Gob>(value: &T) -> Result<Self, GobError> {
        let name = T::interface_name().ok_or_else(|| GobError::NotRegistered {
            type_name: T::gob_type().go_string(),
        })?;
        Ok(Self::named(name, value))
    }

    /// An interface value holding `value` under the registered name
    /// `name` (as given to Go's `gob.RegisterName`).
    pub fn named<T: Gob>(name: impl Into<String>, value: &T) -> Self {
        InterfaceValue {
            name: name.into(),
            ty: T::gob_type(),
            value: value.to_gob(),
        }
    }

    /// A Go `string`.
    pub fn string(value: impl Into<String>) -> Self {
        Self::basic("string", Type::String, Value::String(value.into()))
    }

    /// A Go `[]byte` (registered as `[]uint8`).
    pub fn bytes(value: impl Into<Vec<u8>>) -> Self {
        Self::basic("[]uint8", Type::Bytes, Value::Bytes(value.into()))
    }

    /// A Go `int` (not `int64`: a Go peer's type switch tells them apart).
    pub fn int(value: i64) -> Self {
        Self::basic("int", Type::Int, Value::Int(value))
    }

    /// A Go `uint`.
    pub fn uint(value: u64) -> Self {
        Self::basic("uint", Type::Uint, Value::Uint(value))
    }

    /// A Go `float64`.
    pub fn float64(value: f64) -> Self {
        Self::basic("float64", Type::Float, Value::Float(value))
    }

    /// A Go `bool`.
    pub fn bool(value: bool) -> Self {
        Self::basic("bool", Type::Bool, Value::Bool(value))
    }

    fn basic(name: &str, ty: Type, value: Value) -> Self {
        InterfaceValue {
            name: name.to_owned(),
            ty,
            value,
        }
    }

    /// The concrete value as a `T`.
    pub fn get<T: Gob>(&self) -> Result<T, GobError> {
        T::from_gob(self.value.clone())
    }

    /// The concrete value as a `T`, consuming the interface value.
    pub fn into_gob<T: Gob>(self) -> Result<T, GobError> {
        T::from_gob(self.value)
    }
}

/// Bounds on what a [`Decoder`] accepts from its peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The longest message (one length-prefixed gob message: a type
    /// definition or a value) accepted. Default 64 MiB.
    pub max_message: usize,
    /// How deeply values and types may nest. Default 100.
    pub max_depth: usize,
    /// How many type definitions a peer may send over the stream's life.
    /// Default 10 000.
    pub max_types: usize,
    /// How many [`Type`] nodes one decode may build (for the value's type and
    /// the concrete types of its interface values), on top of one per byte
    /// of input; copying a name from a type definition (into a type or a
    /// struct value) counts one node per 32 bytes. Default 100 000.
    pub max_type_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message: 64 << 20,
            max_depth: 100,
            max_types: 10_000,
            max_type_nodes: 100_000,
        }
    }
}

/// What went wrong encoding or decoding gob.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GobError {
    /// A message length over [`Limits::max_message`].
    #[error("gob: message of {len} bytes is over the limit of {max} bytes")]
    MessageTooLarge {
        /// The length the peer announced.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// Data ran past the end of its message.
    #[error("gob: truncated message: {what} runs past the end of the message")]
    Truncated {
        /// What was being read.
        what: &'static str,
    },
    /// An unsigned integer announcing more than 8 bytes.
    #[error("gob: bad unsigned integer encoding: {count} bytes")]
    BadUint {
        /// The byte count it announced.
        count: usize,
    },
    /// A type id that was never defined (or is not a gob type at all).
    #[error("gob: unknown type id {id}")]
    UnknownTypeId {
        /// The id.
        id: i64,
    },
    /// A type id outside Go's 32-bit range.
    #[error("gob: type id {id} is out of range")]
    TypeIdOutOfRange {
        /// The id.
        id: i64,
    },
    /// A definition for a type id the stream already defined.
    #[error("gob: type id {id} redefined")]
    TypeRedefined {
        /// The id.
        id: i64,
    },
    /// A definition for one of gob's predefined ids (below 64).
    #[error("gob: type id {id} is reserved for predefined types")]
    ReservedTypeId {
        /// The id.
        id: i64,
    },
    /// More type definitions than [`Limits::max_types`].
    #[error("gob: more than {max} type definitions")]
    TooManyTypes {
        /// The limit.
        max: usize,
    },
    /// A type definition that does not describe one type.
    #[error("gob: bad definition of type id {id}: {reason}")]
    BadTypeDefinition {
        /// The id being defined.
        id: i64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Values or types nested deeper than [`Limits::max_depth`].
    #[error("gob: nesting deeper than {max}")]
    DepthLimit {
        /// The limit.
        max: usize,
    },
    /// A type refers to itself, which a [`Type`] tree cannot express.
    #[error("gob: type id {id} ({name:?}) is recursive, which is not supported")]
    RecursiveType {
        /// The id.
        id: i64,
        /// Its name.
        name: String,
    },
    /// Types larger than [`Limits::max_type_nodes`] allows.
    #[error("gob: the types of this value are larger than the limit of {max} nodes")]
    TypeTooLarge {
        /// The limit.
        max: usize,
    },
    /// A struct field number past the type's last field.
    #[error(
        "gob: field delta {delta} after field {after} is out of range for {type_name:?} with {fields} fields"
    )]
    FieldDeltaOutOfRange {
        /// The struct type's name.
        type_name: String,
        /// The field number before the delta (-1 at the start).
        after: i64,
        /// The delta.
        delta: u64,
        /// How many fields the type has.
        fields: usize,
    },
    /// A top-level non-struct value whose field delta is not 0.
    #[error("gob: non-zero field delta {delta} for a singleton value")]
    SingletonDelta {
        /// The delta.
        delta: u64,
    },
    /// Bytes left in a type definition's message outside an interface value.
    #[error("gob: extra data in the message after a type definition")]
    ExtraData,
    /// A string, byte slice or name longer than what is left in the message.
    #[error("gob: {what} length {len} exceeds the {remaining} bytes left in the message")]
    LengthOutOfRange {
        /// What was being read.
        what: &'static str,
        /// The length announced.
        len: u64,
        /// The bytes left.
        remaining: usize,
    },
    /// A slice, array or map announcing more elements than were sent.
    #[error("gob: {what} of {len} elements runs past the end of the message")]
    TooManyElements {
        /// `slice`, `array` or `map`.
        what: &'static str,
        /// The element count announced.
        len: u64,
    },
    /// An array value whose length is not its type's.
    #[error("gob: array of {found} elements for a type of length {expected}")]
    ArrayLength {
        /// The type's length.
        expected: usize,
        /// The value's length.
        found: u64,
    },
    /// A string or name that is not UTF-8.
    #[error("gob: {what} is not valid UTF-8")]
    InvalidUtf8 {
        /// What it was.
        what: &'static str,
    },
    /// An interface value's type name over Go's 1024-byte limit.
    #[error("gob: interface type name of {len} bytes is too long (Go's limit is 1024)")]
    InterfaceNameTooLong {
        /// The name's length.
        len: usize,
    },
    /// A non-nil interface value without a type name.
    #[error("gob: a non-nil interface value needs a concrete type name")]
    EmptyInterfaceName,
    /// A value that does not have the expected type.
    #[error("gob: type mismatch: expected {expected}, found {found}")]
    TypeMismatch {
        /// What was expected.
        expected: String,
        /// What was there.
        found: String,
    },
    /// An integer or float that does not fit the Rust type.
    #[error("gob: value {value} out of range for {target}")]
    Overflow {
        /// The value.
        value: String,
        /// The Rust type.
        target: &'static str,
    },
    /// A received struct with fields, none of which the Rust struct has
    /// (Go: "type mismatch: no fields matched").
    #[error("gob: type mismatch: no fields of the received struct match {type_name}")]
    NoFieldsMatched {
        /// The Rust struct's Go name.
        type_name: String,
    },
    /// A struct value with a field its type does not have.
    #[error("gob: struct {type_name:?} has no field {field:?}")]
    UnknownField {
        /// The struct type's name.
        type_name: String,
        /// The field.
        field: String,
    },
    /// A struct type with a field without a name.
    #[error("gob: struct {type_name:?} has a field with an empty name")]
    EmptyFieldName {
        /// The struct type's name.
        type_name: String,
    },
    /// A Rust type without a name registered for interface values.
    #[error("gob: type {type_name} has no registered name for interface values")]
    NotRegistered {
        /// The type.
        type_name: String,
    },
    /// An error in one field of a struct.
    #[error("gob: field {field}: {source}")]
    Field {
        /// The Go field name.
        field: String,
        /// The error.
        source: Box<GobError>,
    },
}

impl GobError {
    /// This error, as found in struct field `field`.
    pub fn in_field(self, field: &str) -> GobError {
        GobError::Field {
            field: field.to_owned(),
            source: Box::new(self),
        }
    }
}

/// Feeds arbitrary bytes to a [`Decoder`] (with small limits) and to the
/// [`Gob`] conversions, checks that what decodes re-encodes and decodes
/// again, and never panics unless this module has a bug. For the
/// `gob_decode` cargo-fuzz target only: `cargo fuzz` sets `--cfg fuzzing`,
/// so this is not part of the public API.
#[cfg(fuzzing)]
#[doc(hidden)]
pub fn fuzz_decode(data: &[u8]) {
    fuzz::fuzz(data);
}

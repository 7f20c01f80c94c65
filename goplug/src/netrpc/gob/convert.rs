//! The [`Gob`] trait: Rust types as gob types and values.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use super::{GobError, InterfaceValue, Type, Value};

/// A Rust type with a gob [`Type`], convertible to and from [`Value`]s.
///
/// Conversions from values are as lenient as Go's decoder: any integer
/// width (with a range check), struct fields matched by name with unknown
/// ones skipped and missing ones zero. Go's signed and unsigned integers
/// do not mix, as in Go.
///
/// Implement it for structs with [`gob_struct!`](crate::gob_struct).
pub trait Gob: Sized {
    /// The gob type of every value of this type.
    fn gob_type() -> Type;

    /// This value as a gob value of [`gob_type`](Self::gob_type).
    fn to_gob(&self) -> Value;

    /// The Rust value of a received gob value.
    fn from_gob(value: Value) -> Result<Self, GobError>;

    /// The name Go's gob registry knows this type by, for interface values
    /// ([`InterfaceValue::of`]). gob pre-registers the basic types under
    /// their Go names (`int64` for [`i64`], `int` for [`isize`], `string`,
    /// `[]uint8` for `Vec<u8>`, and slices of basic types such as
    /// `[]string`); other types have none unless they say so.
    fn interface_name() -> Option<&'static str> {
        None
    }

    /// This value as a struct field: `None` leaves the field out (Go's nil
    /// pointer), as [`Option`] does for `None`.
    #[doc(hidden)]
    fn to_gob_field(&self) -> Option<Value> {
        Some(self.to_gob())
    }

    /// The Rust value of a struct field, `None` when it was not sent (zero).
    #[doc(hidden)]
    fn from_gob_field(value: Option<Value>) -> Result<Self, GobError> {
        match value {
            Some(value) => Self::from_gob(value),
            None => Self::from_gob(Value::zero(&Self::gob_type())),
        }
    }

    /// The gob type of `Vec<Self>` (so that `Vec<u8>` can be `[]byte`).
    #[doc(hidden)]
    fn slice_type() -> Type {
        Type::Slice(Box::new(Self::gob_type()))
    }

    /// `Vec<Self>` as a gob value.
    #[doc(hidden)]
    fn slice_to_gob(items: &[Self]) -> Value {
        Value::Slice(items.iter().map(Self::to_gob).collect())
    }

    /// `Vec<Self>` from a gob value.
    #[doc(hidden)]
    fn slice_from_gob(value: Value) -> Result<Vec<Self>, GobError> {
        match value {
            Value::Slice(items) => items.into_iter().map(Self::from_gob).collect(),
            other => Err(wrong_kind(&Self::slice_type().go_string(), &other)),
        }
    }

    /// The registered name of `[]Self`, if gob pre-registers it.
    #[doc(hidden)]
    fn slice_interface_name() -> Option<&'static str> {
        None
    }
}

/// A type mismatch error: `expected` (a Go type), found `found`.
#[doc(hidden)]
pub fn wrong_kind(expected: &str, found: &Value) -> GobError {
    GobError::TypeMismatch {
        expected: expected.to_owned(),
        found: found.kind_name().to_owned(),
    }
}

/// Removes and returns the field `name` of a struct value's fields.
#[doc(hidden)]
pub fn take_field(fields: &mut Vec<(String, Value)>, name: &str) -> Option<Value> {
    let i = fields.iter().position(|(n, _)| n == name)?;
    Some(fields.swap_remove(i).1)
}

macro_rules! signed {
    ($($ty:ty => $name:literal),* $(,)?) => {$(
        impl Gob for $ty {
            fn gob_type() -> Type {
                Type::Int
            }
            fn to_gob(&self) -> Value {
                Value::Int(*self as i64)
            }
            fn from_gob(value: Value) -> Result<Self, GobError> {
                match value {
                    Value::Int(i) => <$ty>::try_from(i).map_err(|_| GobError::Overflow {
                        value: i.to_string(),
                        target: stringify!($ty),
                    }),
                    other => Err(wrong_kind($name, &other)),
                }
            }
            fn interface_name() -> Option<&'static str> {
                Some($name)
            }
            fn slice_interface_name() -> Option<&'static str> {
                Some(concat!("[]", $name))
            }
        }
    )*};
}

macro_rules! unsigned {
    ($($ty:ty => $name:literal),* $(,)?) => {$(
        impl Gob for $ty {
            fn gob_type() -> Type {
                Type::Uint
            }
            fn to_gob(&self) -> Value {
                Value::Uint(*self as u64)
            }
            fn from_gob(value: Value) -> Result<Self, GobError> {
                match value {
                    Value::Uint(u) => <$ty>::try_from(u).map_err(|_| GobError::Overflow {
                        value: u.to_string(),
                        target: stringify!($ty),
                    }),
                    other => Err(wrong_kind($name, &other)),
                }
            }
            fn interface_name() -> Option<&'static str> {
                Some($name)
            }
            fn slice_interface_name() -> Option<&'static str> {
                Some(concat!("[]", $name))
            }
        }
    )*};
}

signed!(i8 => "int8", i16 => "int16", i32 => "int32", i64 => "int64", isize => "int");
unsigned!(u16 => "uint16", u32 => "uint32", u64 => "uint64", usize => "uint");

/// `u8` is a Go `uint8`, and `Vec<u8>` a Go `[]byte`.
impl Gob for u8 {
    fn gob_type() -> Type {
        Type::Uint
    }
    fn to_gob(&self) -> Value {
        Value::Uint(u64::from(*self))
    }
    fn from_gob(value: Value) -> Result<Self, GobError> {
        match value {
            Value::Uint(u) => u8::try_from(u).map_err(|_| GobError::Overflow {
                value: u.to_string(),
                target: "u8",
            }),
            other => Err(wrong_kind("uint8", &other)),
        }
    }
    fn interface_name() -> Option<&'static str> {
        Some("uint8")
    }
    fn slice_type() -> Type {
        Type::Bytes
    }
    fn slice_to_gob(items: &[Self]) -> Value {
        Value::Bytes(items.to_vec())
    }
    fn slice_from_gob(value: Value) -> Result<Vec<Self>, GobError> {
        match value {
            Value::Bytes(bytes) => Ok(bytes),
            other => Err(wrong_kind("[]uint8", &other)),
        }
    }
    fn slice_interface_name() -> Option<&'static str> {
        Some("[]uint8")
    }
}

impl Gob for bool {
    fn gob_type() -> Type {
        Type::Bool
    }
    fn to_gob(&self) -> Value {
        Value::Bool(*self)
    }
    fn from_gob(value: Value) -> Result<Self, GobError> {
        match value {
            Value::Bool(b) => Ok(b),
            other => Err(wrong_kind("bool", &other)),
        }
    }
    fn interface_name() -> Option<&'static str> {
        Some("bool")
    }
    fn slice_interface_name() -> Option<&'static str> {
        Some("[]bool")
    }
}

impl Gob for f64 {
    fn gob_type() -> Type {
        Type::Float
    }
    fn to_gob(&self) -> Value {
        Value::Float(*self)
    }
    fn from_gob(value: Value) -> Result<Self, GobError> {
        match value {
            Value::Float(f) => Ok(f),
            other => Err(wrong_kind("float64", &other)),
        }
    }
    fn interface_name() -> Option<&'static str> {
        Some("float64")
    }
    fn slice_interface_name() -> Option<&'static str> {
        Some("[]float64")
    }
}

impl Gob for f32 {
    fn gob_type() -> Type {
        Type::Float
    }
    fn to_gob(&self) -> Value {
        Value::Float(f64::from(*self))
    }
    fn from_gob(value: Value) -> Result<Self, GobError> {
        match value {
            // Go's check: infinities and NaN pass, finite values must fit.
            Value::Float(f) if f.is_finite() && f.abs() > f64::from(f32::MAX) => {
                Err(GobError::Overflow {
                    value: f.to_string(),
                    target: "f32",
                })
            }
            Value::Float(f) => Ok(f as f32),
            other => Err(wrong_kind("float32", &other)),
        }
    }
    fn interface_name() -> Option<&'static str> {
        Some("float32")
    }
    fn slice_interface_name() -> Option<&'static str> {
        Some("[]float32")
    }
}

impl Gob for String {
    fn gob_type() -> Type {
        Type::String
    }
    fn to_gob(&self) -> Value {
        Value::String(self.clone())
    }
    fn from_gob(value: Value) -> Result<Self, GobError> {
        match value {
            Value::String(s) => Ok(s),
            other => Err(wrong_kind("string", &other)),
        }
    }
    fn interface_name() -> Option<&'static str> {
        Some("string")
    }
    fn slice_interface_name() -> Option<&'static str> {
        Some("[]string")
    }
}

/// Go's `struct{}` (net/rpc's reply to calls that fail, go-plugin's
/// `Control.Ping` reply). Receives any struct.
impl Gob for () {
    fn gob_type() -> Type {
        Type::Struct(super::StructType::new("", Vec::new()))
    }
    fn to_gob(&self) -> Value {
        Value::Struct(Vec::new())
    }
    fn from_gob(value: Value) -> Result<Self, GobError> {
        match value {
            Value::Struct(_) => Ok(()),
            other => Err(wrong_kind("struct {}", &other)),
        }
    }
}

/// A Go pointer (`*T`): `None` is nil, which leaves a struct field out;
/// elsewhere (where Go cannot send nil) it is sent as `T`'s zero value.
impl<T: Gob> Gob for Option<T> {
    fn gob_type() -> Type {
        T::gob_type()
    }
    fn to_gob(&self) -> Value {
        match self {
            Some(value) => value.to_gob(),
            None => Value::zero(&T::gob_type()),
        }
    }
    fn from_gob(value: Value) -> Result<Self, GobError> {
        T::from_gob(value).map(Some)
    }
    fn to_gob_field(&self) -> Option<Value> {
        self.as_ref().map(Gob::to_gob)
    }
    fn from_gob_field(value: Option<Value>) -> Result<Self, GobError> {
        value.map(T::from_gob).transpose()
    }
}

/// A Go pointer that is never nil.
impl<T: Gob> Gob for Box<T> {
    fn gob_type() -> Type {
        T::gob_type()
    }
    fn to_gob(&self) -> Value {
        (**self).to_gob()
    }
    fn from_gob(value: Value) -> Result<Self, GobError> {
        T::from_gob(value).map(Box::new)
    }
    fn interface_name() -> Option<&'static str> {
        T::interface_name()
    }
}

/// `[]T`; `Vec<u8>` is `[]byte`.
impl<T: Gob> Gob for Vec<T> {
    fn gob_type() -> Type {
        T::slice_type()
    }
    fn to_gob(&self) -> Value {
        T::slice_to_gob(self)
    }
    fn from_gob(value: Value) -> Result<Self, GobError> {
        T::slice_from_gob(value)
    }
    fn interface_name() -> Option<&'static str> {
        T::slice_interface_name()
    }
}

/// `[N]T`.
impl<T: Gob, const N: usize> Gob for [T; N] {
    fn gob_type() -> Type {
        Type::Array(N, Box::new(T::gob_type()))
    }
    fn to_gob(&self) -> Value {
        Value::Array(self.iter().map(Gob::to_gob).collect())
    }
    fn from_gob(value: Value) -> Result<Self, GobError> {
        match value {
            Value::Array(items) if items.len() == N => items
                .into_iter()
                .map(T::from_gob)
                .collect::<Result<Vec<T>, _>>()?
                .try_into()
                .map_err(|_| GobError::ArrayLength {
                    expected: N,
                    found: 0,
                }),
            Value::Array(items) => Err(GobError::ArrayLength {
                expected: N,
                found: items.len() as u64,
            }),
            other => Err(wrong_kind(&Self::gob_type().go_string(), &other)),
        }
    }
}

fn map_pairs(value: Value, ty: impl FnOnce() -> Type) -> Result<Vec<(Value, Value)>, GobError> {
    match value {
        Value::Map(pairs) => Ok(pairs),
        other => Err(wrong_kind(&ty().go_string(), &other)),
    }
}

/// `map[K]V`; a received key that appears twice keeps its last element, as
/// in Go.
impl<K: Gob + Eq + Hash, V: Gob> Gob for HashMap<K, V> {
    fn gob_type() -> Type {
        Type::Map(Box::new(K::gob_type()), Box::new(V::gob_type()))
    }
    fn to_gob(&self) -> Value {
        Value::Map(self.iter().map(|(k, v)| (k.to_gob(), v.to_gob())).collect())
    }
    fn from_gob(value: Value) -> Result<Self, GobError> {
        map_pairs(value, Self::gob_type)?
            .into_iter()
            .map(|(k, v)| Ok((K::from_gob(k)?, V::from_gob(v)?)))
            .collect()
    }
}

/// `map[K]V`, sent in key order (deterministic, unlike Go's maps).
impl<K: Gob + Ord, V: Gob> Gob for BTreeMap<K, V> {
    fn gob_type() -> Type {
        Type::Map(Box::new(K::gob_type()), Box::new(V::gob_type()))
    }
    fn to_gob(&self) -> Value {
        Value::Map(self.iter().map(|(k, v)| (k.to_gob(), v.to_gob())).collect())
    }
    fn from_gob(value: Value) -> Result<Self, GobError> {
        map_pairs(value, Self::gob_type)?
            .into_iter()
            .map(|(k, v)| Ok((K::from_gob(k)?, V::from_gob(v)?)))
            .collect()
    }
}

/// Go's `interface{}` (any interface type): `None` is nil.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GoInterface(pub Option<InterfaceValue>);

impl GoInterface {
    /// A nil interface value.
    pub fn nil() -> Self {
        GoInterface(None)
    }

    /// An interface value holding `value`, under its registered name
    /// ([`Gob::interface_name`]).
    pub fn of<T: Gob>(value: &T) -> Result<Self, GobError> {
        InterfaceValue::of(value).map(|iv| GoInterface(Some(iv)))
    }

    /// Whether this is nil.
    pub fn is_nil(&self) -> bool {
        self.0.is_none()
    }

    /// The concrete value as a `T`; `None` for nil.
    pub fn get<T: Gob>(&self) -> Result<Option<T>, GobError> {
        self.0.as_ref().map(InterfaceValue::get).transpose()
    }
}

impl From<InterfaceValue> for GoInterface {
    fn from(value: InterfaceValue) -> Self {
        GoInterface(Some(value))
    }
}

impl Gob for GoInterface {
    fn gob_type() -> Type {
        Type::Interface
    }
    fn to_gob(&self) -> Value {
        Value::Interface(self.0.clone().map(Box::new))
    }
    fn from_gob(value: Value) -> Result<Self, GobError> {
        match value {
            Value::Interface(iv) => Ok(GoInterface(iv.map(|iv| *iv))),
            other => Err(wrong_kind("interface {}", &other)),
        }
    }
}

/// Declares a Rust struct that is a Go struct for gob, and implements
/// [`Gob`](crate::netrpc::gob::Gob) for it.
///
/// `#[gob(name = "pkg.Name")]` gives the Go type as Go prints it (type
/// definitions carry the part after the dot; without the attribute, the
/// Rust name). `register = "..."` adds the name the Go side registers the
/// type under (`gob.Register`: `main.Args` for a type of package main),
/// for sending it in interface values. Each field gives its Go name; a
/// field of type `Option<T>` is a Go pointer, left out when `None`.
///
/// ```
/// goplug::gob_struct! {
///     /// go-plugin's KV example arguments, say.
///     #[derive(Clone, Debug, Default, PartialEq)]
///     #[gob(name = "main.Args", register = "main.Args")]
///     pub struct Args {
///         "Key" => pub key: String,
///         "Value" => pub value: Vec<u8>,
///         "Note" => note: Option<String>,
///     }
/// }
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! gob_struct {
    (@attrs [$($attr:tt)*] [$($gob:tt)*] #[gob($($g:tt)*)] $($rest:tt)*) => {
        $crate::gob_struct!(@attrs [$($attr)*] [$($g)*] $($rest)*);
    };
    (@attrs [$($attr:tt)*] [$($gob:tt)*] #[$meta:meta] $($rest:tt)*) => {
        $crate::gob_struct!(@attrs [$($attr)* #[$meta]] [$($gob)*] $($rest)*);
    };
    (@attrs [$($attr:tt)*] [$($gob:tt)*]
        $vis:vis struct $name:ident {
            $( $(#[$fattr:meta])* $goname:literal => $fvis:vis $field:ident : $fty:ty ),* $(,)?
        }
    ) => {
        $($attr)*
        $vis struct $name {
            $( $(#[$fattr])* $fvis $field: $fty, )*
        }
        $crate::gob_struct!(@impl $name [$($gob)*] [$($goname => $field : $fty),*]);
    };
    (@impl $name:ident [] [$($fields:tt)*]) => {
        $crate::gob_struct!(@impl $name [name = stringify!($name)] [$($fields)*]);
    };
    (@impl $name:ident [name = $gname:expr $(, register = $reg:expr)? $(,)?]
        [$($goname:literal => $field:ident : $fty:ty),*]
    ) => {
        impl $crate::netrpc::gob::Gob for $name {
            fn gob_type() -> $crate::netrpc::gob::Type {
                $crate::netrpc::gob::Type::Struct($crate::netrpc::gob::StructType {
                    name: ::std::string::String::from($gname),
                    fields: ::std::vec![$((
                        ::std::string::String::from($goname),
                        <$fty as $crate::netrpc::gob::Gob>::gob_type(),
                    )),*],
                })
            }
            fn to_gob(&self) -> $crate::netrpc::gob::Value {
                #[allow(unused_mut)]
                let mut fields = ::std::vec::Vec::new();
                $(
                    if let ::std::option::Option::Some(value) =
                        <$fty as $crate::netrpc::gob::Gob>::to_gob_field(&self.$field)
                    {
                        fields.push((::std::string::String::from($goname), value));
                    }
                )*
                $crate::netrpc::gob::Value::Struct(fields)
            }
            fn from_gob(
                value: $crate::netrpc::gob::Value,
            ) -> ::std::result::Result<Self, $crate::netrpc::gob::GobError> {
                #[allow(unused_mut)]
                let mut fields = match value {
                    $crate::netrpc::gob::Value::Struct(fields) => fields,
                    other => return ::std::result::Result::Err(
                        $crate::netrpc::gob::wrong_kind($gname, &other),
                    ),
                };
                let received = fields.len();
                let result = Self {
                    $($field: <$fty as $crate::netrpc::gob::Gob>::from_gob_field(
                        $crate::netrpc::gob::take_field(&mut fields, $goname),
                    )
                    .map_err(|e| e.in_field($goname))?,)*
                };
                let ours: &[&str] = &[$($goname),*];
                if received > 0 && fields.len() == received && !ours.is_empty() {
                    return ::std::result::Result::Err(
                        $crate::netrpc::gob::GobError::NoFieldsMatched {
                            type_name: ::std::string::String::from($gname),
                        },
                    );
                }
                ::std::result::Result::Ok(result)
            }
            $(
                fn interface_name() -> ::std::option::Option<&'static str> {
                    ::std::option::Option::Some($reg)
                }
            )?
        }
    };
    (@$($bad:tt)*) => {
        ::std::compile_error!(
            "gob_struct!: expected `#[gob(name = \"pkg.Name\")] struct Name { \"GoField\" => field: Type, ... }`"
        );
    };
    ($($input:tt)*) => {
        $crate::gob_struct!(@attrs [] [] $($input)*);
    };
}

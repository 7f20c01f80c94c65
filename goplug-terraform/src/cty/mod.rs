//! cty, Terraform's type system: [`Type`]s, [`Value`]s (null and unknown
//! included) and the two encodings hosts use, [`msgpack`] (plans, state
//! and configuration on the wire) and [`json`] (state files).
//!
//! Both codecs are type-directed, as go-cty's: the same bytes mean
//! different values under different types, so decoding needs the schema's
//! type (see [`Schema::value_type`](crate::schema::Schema::value_type)).
//!
//! ```
//! use goplug_terraform::cty::{self, Type, Value};
//!
//! let ty = Type::object([("id", Type::String), ("value", Type::String)]);
//! let value = Value::object([("id", Value::Unknown), ("value", "x".into())]);
//! let bytes = cty::msgpack::encode(&value, &ty)?;
//! assert_eq!(bytes, b"\x82\xa2id\xd4\x00\x00\xa5value\xa1x");
//! assert_eq!(cty::msgpack::decode(&bytes, &ty)?, value);
//! # Ok::<(), goplug_terraform::Error>(())
//! ```

pub mod json;
mod json_text;
pub mod msgpack;
mod number;
mod path;
mod types;
mod value;

#[cfg(test)]
mod tests;

pub use number::Number;
pub use path::{AttributePath, PathStep};
pub use types::Type;
pub use value::Value;

/// How deeply values (and types) may nest before the codecs refuse them:
/// far beyond any schema, low enough that hostile input cannot exhaust
/// the stack.
pub const MAX_DEPTH: usize = 128;

//! gob's primitive encodings and predefined type ids.

use super::{GobEncoderKind, Type};

/// Predefined type ids (`encoding/gob` type.go).
pub(super) const ID_BOOL: i64 = 1;
pub(super) const ID_INT: i64 = 2;
pub(super) const ID_UINT: i64 = 3;
pub(super) const ID_FLOAT: i64 = 4;
pub(super) const ID_BYTES: i64 = 5;
pub(super) const ID_STRING: i64 = 6;
pub(super) const ID_COMPLEX: i64 = 7;
pub(super) const ID_INTERFACE: i64 = 8;

/// Field numbers of Go's `wireType` struct.
pub(super) const WIRE_ARRAY: i64 = 0;
pub(super) const WIRE_SLICE: i64 = 1;
pub(super) const WIRE_STRUCT: i64 = 2;
pub(super) const WIRE_MAP: i64 = 3;
pub(super) const WIRE_GOB_ENCODER: i64 = 4;
pub(super) const WIRE_BINARY_MARSHALER: i64 = 5;
pub(super) const WIRE_TEXT_MARSHALER: i64 = 6;

/// Go's limit on an interface value's type name.
pub(super) const MAX_INTERFACE_NAME: usize = 1024;

/// The predefined id of a basic type; `None` for types that need a
/// definition.
pub(super) fn builtin_id(ty: &Type) -> Option<i64> {
    Some(match ty {
        Type::Bool => ID_BOOL,
        Type::Int => ID_INT,
        Type::Uint => ID_UINT,
        Type::Float => ID_FLOAT,
        Type::Bytes => ID_BYTES,
        Type::String => ID_STRING,
        Type::Complex => ID_COMPLEX,
        Type::Interface => ID_INTERFACE,
        _ => return None,
    })
}

/// The basic type with predefined id `id`.
pub(super) fn builtin_type(id: i64) -> Option<Type> {
    Some(match id {
        ID_BOOL => Type::Bool,
        ID_INT => Type::Int,
        ID_UINT => Type::Uint,
        ID_FLOAT => Type::Float,
        ID_BYTES => Type::Bytes,
        ID_STRING => Type::String,
        ID_COMPLEX => Type::Complex,
        ID_INTERFACE => Type::Interface,
        _ => return None,
    })
}

/// The `wireType` field of a self-encoding kind.
pub(super) fn encoder_field(kind: GobEncoderKind) -> i64 {
    match kind {
        GobEncoderKind::Gob => WIRE_GOB_ENCODER,
        GobEncoderKind::Binary => WIRE_BINARY_MARSHALER,
        GobEncoderKind::Text => WIRE_TEXT_MARSHALER,
    }
}

/// Appends `x` as a gob unsigned integer: one byte below 128, otherwise the
/// negated byte count and the minimal big-endian bytes.
pub(super) fn put_uint(out: &mut Vec<u8>, x: u64) {
    if x <= 0x7f {
        out.push(x as u8);
        return;
    }
    let bytes = x.to_be_bytes();
    let skip = (x.leading_zeros() / 8) as usize;
    let len = bytes.len() - skip;
    out.push((len as u8).wrapping_neg());
    out.extend_from_slice(&bytes[skip..]);
}

/// Appends `i` as a gob signed integer: shifted left, complemented when
/// negative, with the complement flag in bit 0.
pub(super) fn put_int(out: &mut Vec<u8>, i: i64) {
    put_uint(out, int_to_uint(i));
}

pub(super) fn int_to_uint(i: i64) -> u64 {
    if i < 0 {
        ((!i as u64) << 1) | 1
    } else {
        (i as u64) << 1
    }
}

pub(super) fn uint_to_int(x: u64) -> i64 {
    let i = (x >> 1) as i64;
    if x & 1 != 0 { !i } else { i }
}

/// A float's gob representation: its bits byte-reversed.
pub(super) fn float_bits(f: f64) -> u64 {
    f.to_bits().swap_bytes()
}

pub(super) fn float_from_bits(x: u64) -> f64 {
    f64::from_bits(x.swap_bytes())
}

/// Appends a length-prefixed message.
pub(super) fn put_message(out: &mut Vec<u8>, message: &[u8]) {
    put_uint(out, message.len() as u64);
    out.extend_from_slice(message);
}

/// How an unsigned integer at the front of `data` reads.
pub(super) enum UintRead {
    /// The value and the bytes it took.
    Done(u64, usize),
    /// More bytes are needed.
    Short,
    /// The first byte announces more than 8 bytes.
    Bad(usize),
}

/// Reads an unsigned integer from the front of `data`. Like Go it accepts
/// non-minimal encodings.
pub(super) fn read_uint(data: &[u8]) -> UintRead {
    let Some(&first) = data.first() else {
        return UintRead::Short;
    };
    if first <= 0x7f {
        return UintRead::Done(u64::from(first), 1);
    }
    let n = 256 - usize::from(first);
    if n > 8 {
        return UintRead::Bad(n);
    }
    let Some(bytes) = data.get(1..=n) else {
        return UintRead::Short;
    };
    let x = bytes.iter().fold(0u64, |x, &b| (x << 8) | u64::from(b));
    UintRead::Done(x, n + 1)
}

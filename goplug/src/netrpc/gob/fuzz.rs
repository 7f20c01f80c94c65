//! The fuzz oracle behind the `gob_decode` target: arbitrary bytes into a
//! [`Decoder`] with small limits; what decodes must convert without
//! panicking and re-encode to a fixed point.

use std::collections::{BTreeMap, HashMap};

use super::{Decoder, Encoder, GoInterface, Gob, Limits, Type, Value};

/// Decodes arbitrary bytes with small limits and checks that what
/// decodes re-encodes; for the fuzz target and the unit tests.
pub(super) fn fuzz(data: &[u8]) {
    let limits = Limits {
        max_message: 1 << 16,
        max_depth: 32,
        max_types: 64,
        max_type_nodes: 10_000,
    };
    let mut decoder = Decoder::new(limits);
    let mut pos = 0;
    while pos < data.len() {
        let Ok(Some((ty, value, consumed))) = decoder.decode(&data[pos..]) else {
            break;
        };
        assert!(consumed > 0 && consumed <= data.len() - pos);
        pos += consumed;
        convert_all(&value);
        // What decodes re-encodes; after one round trip (which drops
        // zero-valued fields and package qualifiers) it is a fixed point.
        let once = round_trip(&ty, &value);
        let (ty1, value1) = decode_all(&once);
        let twice = round_trip(&ty1, &value1);
        let (ty2, value2) = decode_all(&twice);
        assert_eq!(round_trip(&ty2, &value2), twice, "not a fixed point");
    }
}

#[expect(
    clippy::expect_used,
    reason = "a fuzz oracle: a failed check must crash"
)]
fn round_trip(ty: &Type, value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    Encoder::new()
        .encode(ty, value, &mut out)
        .expect("a decoded value re-encodes");
    out
}

#[expect(
    clippy::expect_used,
    reason = "a fuzz oracle: a failed check must crash"
)]
fn decode_all(bytes: &[u8]) -> (Type, Value) {
    let (ty, value, consumed) = Decoder::default()
        .decode(bytes)
        .expect("a re-encoded value decodes")
        .expect("a re-encoded value is complete");
    assert_eq!(consumed, bytes.len());
    (ty, value)
}

/// Runs the [`Gob`] conversions on `value`; they may fail but not panic.
fn convert_all(value: &Value) {
    let _ = super::super::codec::RequestHeader::from_gob(value.clone());
    let _ = super::super::codec::ResponseHeader::from_gob(value.clone());
    let _ = HashMap::<String, GoInterface>::from_gob(value.clone());
    let _ = BTreeMap::<i64, Vec<u8>>::from_gob(value.clone());
    let _ = Vec::<i32>::from_gob(value.clone());
    let _ = Vec::<Option<String>>::from_gob(value.clone());
    let _ = <[u16; 3]>::from_gob(value.clone());
    let _ = String::from_gob(value.clone());
    let _ = f32::from_gob(value.clone());
    let _ = <()>::from_gob(value.clone());
    let _ = GoInterface::from_gob(value.clone());
}

//! Table tests of both codecs: bytes as go-cty writes them, and input
//! no value may come from.

use super::*;
use crate::error::Error;

fn hex(text: &str) -> Vec<u8> {
    let digits: String = text.split_whitespace().collect();
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect()
}

fn num(text: &str) -> Value {
    Value::Number(Number::parse(text).unwrap())
}

fn resource_type() -> Type {
    Type::object([
        ("id", Type::String),
        ("size", Type::Number),
        ("tags", Type::map(Type::String)),
        (
            "rule",
            Type::list(Type::object([("name", Type::String), ("on", Type::Bool)])),
        ),
    ])
}

/// Values and the exact bytes go-cty writes for them (checked against
/// go-cty v1.14.1's `msgpack.Marshal`).
fn msgpack_goldens() -> Vec<(&'static str, Type, Value, &'static str)> {
    vec![
        ("null string", Type::String, Value::Null, "c0"),
        ("unknown string", Type::String, Value::Unknown, "d4 00 00"),
        ("string", Type::String, "x".into(), "a1 78"),
        ("empty string", Type::String, "".into(), "a0"),
        (
            "str8 from 32 bytes",
            Type::String,
            "abcdefghijklmnopqrstuvwxyz012345".into(),
            "d9 20 6162636465666768696a6b6c6d6e6f707172737475767778797a303132333435",
        ),
        ("true", Type::Bool, true.into(), "c3"),
        ("false", Type::Bool, false.into(), "c2"),
        ("fixint", Type::Number, 1.into(), "01"),
        ("negative fixint", Type::Number, (-1).into(), "ff"),
        ("uint8", Type::Number, 200.into(), "cc c8"),
        ("uint16", Type::Number, 300.into(), "cd 01 2c"),
        ("int8", Type::Number, (-100).into(), "d0 9c"),
        ("int16", Type::Number, (-200).into(), "d1 ff 38"),
        ("uint32", Type::Number, 70_000.into(), "ce 00 01 11 70"),
        (
            "int64",
            Type::Number,
            i64::MIN.into(),
            "d3 80 00 00 00 00 00 00 00",
        ),
        (
            "float64",
            Type::Number,
            Value::Number(Number::from_f64(1.5).unwrap()),
            "cb 3f f8 00 00 00 00 00 00",
        ),
        ("decimal as text", Type::Number, num("0.1"), "a3 30 2e 31"),
        (
            "exact decimal as float64",
            Type::Number,
            num("-2.5"),
            "cb c0 04 00 00 00 00 00 00",
        ),
        // As go-cty writes it today; v1.14 (OpenTofu 1.6) wrote a float64
        // when exact, which reads back the same (below).
        (
            "integer beyond 64 bits as text",
            Type::Number,
            num("18446744073709551616"),
            "b4 3138343436373434303733373039353531363136",
        ),
        (
            "list",
            Type::list(Type::String),
            Value::List(vec!["a".into(), Value::Unknown]),
            "92 a1 61 d4 00 00",
        ),
        (
            "empty set",
            Type::set(Type::Number),
            Value::Set(vec![]),
            "90",
        ),
        (
            "map",
            Type::map(Type::Number),
            Value::Map([("a".to_owned(), 1.into())].into()),
            "81 a1 61 01",
        ),
        (
            "tuple",
            Type::Tuple(vec![Type::String, Type::Bool]),
            Value::Tuple(vec!["s".into(), Value::Null]),
            "92 a1 73 c0",
        ),
        (
            "object with an unknown attribute",
            Type::object([("id", Type::String), ("value", Type::String)]),
            Value::object([("id", Value::Unknown), ("value", "x".into())]),
            "82 a2 69 64 d4 00 00 a5 76 61 6c 75 65 a1 78",
        ),
        (
            "object with a nested block list",
            resource_type(),
            Value::object([
                ("id", "i".into()),
                ("size", Value::Null),
                ("tags", Value::Map([("k".to_owned(), "v".into())].into())),
                (
                    "rule",
                    Value::List(vec![Value::object([
                        ("name", "n".into()),
                        ("on", true.into()),
                    ])]),
                ),
            ]),
            "84 a2 6964 a1 69 a4 72756c65 91 82 a4 6e616d65 a1 6e a2 6f6e c3 a4 73697a65 c0 a4 74616773 81 a1 6b a1 76",
        ),
        (
            "dynamic string",
            Type::Dynamic,
            Value::Dynamic(Type::String, Box::new("x".into())),
            "92 c4 08 22737472696e6722 a1 78",
        ),
        (
            "dynamic list of numbers",
            Type::Dynamic,
            Value::Dynamic(
                Type::list(Type::Number),
                Box::new(Value::List(vec![1.into()])),
            ),
            "92 c4 11 5b226c697374222c226e756d626572225d 91 01",
        ),
        ("dynamic null", Type::Dynamic, Value::Null, "c0"),
        ("dynamic unknown", Type::Dynamic, Value::Unknown, "d4 00 00"),
    ]
}

#[test]
fn msgpack_writes_and_reads_what_go_cty_does() {
    for (name, ty, value, bytes) in msgpack_goldens() {
        let bytes = hex(bytes);
        assert_eq!(
            msgpack::encode(&value, &ty).unwrap(),
            bytes,
            "encode {name}"
        );
        assert_eq!(
            msgpack::decode(&bytes, &ty).unwrap(),
            value,
            "decode {name}"
        );
    }
}

/// What other writers send: every encoding of a number, refined unknowns,
/// binary strings.
#[test]
fn msgpack_reads_every_form_a_host_may_send() {
    let cases: Vec<(&str, Type, &str, Value)> = vec![
        ("uint8 number", Type::Number, "cc 05", 5.into()),
        ("int32 number", Type::Number, "d2 00 00 00 05", 5.into()),
        (
            "uint64 number",
            Type::Number,
            "cf ff ff ff ff ff ff ff ff",
            Value::Number(Number::from_u64(u64::MAX)),
        ),
        (
            "float32 number",
            Type::Number,
            "ca 3f c0 00 00",
            Value::Number(Number::from_f64(1.5).unwrap()),
        ),
        (
            "integral float",
            Type::Number,
            "cb 40 00 00 00 00 00 00 00",
            2.into(),
        ),
        (
            "2^64 as go-cty v1.14 writes it",
            Type::Number,
            "cb 43 f0 00 00 00 00 00 00",
            num("18446744073709551616"),
        ),
        (
            "infinity",
            Type::Number,
            "cb 7f f0 00 00 00 00 00 00",
            Value::Number(Number::from_f64(f64::INFINITY).unwrap()),
        ),
        (
            "number as text",
            Type::Number,
            "a4 31 65 2d 33",
            num("0.001"),
        ),
        ("string as bin", Type::String, "c4 01 78", "x".into()),
        (
            "refined unknown: not null",
            Type::String,
            "c7 03 0c 81 01 c2",
            Value::Unknown,
        ),
        (
            "refined unknown with a prefix",
            Type::String,
            "c7 07 0c 82 01 c2 02 a2 62 2d",
            Value::Unknown,
        ),
        (
            "refined unknown number range",
            Type::Number,
            "c7 07 0c 81 03 92 00 c3 00 00",
            Value::Unknown,
        ),
        (
            "fixext4 unknown",
            Type::list(Type::String),
            "d6 00 00 00 00 00",
            Value::Unknown,
        ),
        (
            "ext32 unknown",
            Type::Bool,
            "c9 00 00 00 01 05 00",
            Value::Unknown,
        ),
        (
            "unknown attribute inside an object",
            Type::object([("a", Type::String)]),
            "81 a1 61 c7 03 0c 81 01 c2",
            Value::object([("a", Value::Unknown)]),
        ),
        (
            "dynamic type as str",
            Type::Dynamic,
            "92 a6 22626f6f6c22 c3",
            Value::Dynamic(Type::Bool, Box::new(true.into())),
        ),
        (
            "dynamic typed null",
            Type::Dynamic,
            "92 a8 22737472696e6722 c0",
            Value::Dynamic(Type::String, Box::new(Value::Null)),
        ),
        (
            "map16",
            Type::map(Type::Bool),
            "de 00 01 a1 6b c3",
            Value::Map([("k".to_owned(), true.into())].into()),
        ),
        (
            "array32",
            Type::set(Type::Bool),
            "dd 00 00 00 01 c2",
            Value::Set(vec![false.into()]),
        ),
    ];
    for (name, ty, bytes, want) in cases {
        assert_eq!(msgpack::decode(&hex(bytes), &ty).unwrap(), want, "{name}");
    }
}

#[test]
fn msgpack_rejects_malformed_and_mistyped_input_with_the_path() {
    let object = Type::object([("a", Type::String), ("b", Type::Number)]);
    let cases: Vec<(&str, Type, Vec<u8>, &str, &str)> = vec![
        (
            "empty input",
            Type::String,
            vec![],
            "(root)",
            "unexpected end",
        ),
        (
            "truncated string",
            Type::String,
            hex("a3 61"),
            "(root)",
            "unexpected end",
        ),
        ("never-used marker", Type::Bool, hex("c1"), "(root)", "0xc1"),
        (
            "trailing bytes",
            Type::Bool,
            hex("c3 c3"),
            "(root)",
            "bytes left",
        ),
        (
            "string for a number",
            Type::Number,
            hex("a1 78"),
            "(root)",
            "number is required",
        ),
        (
            "number for a bool",
            Type::Bool,
            hex("01"),
            "(root)",
            "bool is required",
        ),
        (
            "missing attribute",
            object.clone(),
            hex("81 a1 61 a1 78"),
            "(root)",
            "2 attributes is required, got 1",
        ),
        (
            "extra attribute",
            object.clone(),
            hex("83 a1 61 c0 a1 62 c0 a1 63 c0"),
            "(root)",
            "got 3",
        ),
        (
            "unknown attribute",
            object.clone(),
            hex("82 a1 61 c0 a1 7a c0"),
            "(root)",
            "unsupported attribute \"z\"",
        ),
        (
            "repeated attribute",
            object.clone(),
            hex("82 a1 61 c0 a1 61 c0"),
            "(root)",
            "twice",
        ),
        (
            "mistyped attribute",
            object,
            hex("82 a1 61 c0 a1 62 a1 78"),
            ".b",
            "number is required",
        ),
        (
            "bad element",
            Type::list(Type::Bool),
            hex("92 c3 01"),
            "[1]",
            "bool is required",
        ),
        (
            "bad map element",
            Type::map(Type::Bool),
            hex("81 a1 6b 01"),
            "[\"k\"]",
            "bool is required",
        ),
        (
            "tuple length",
            Type::Tuple(vec![Type::Bool]),
            hex("92 c3 c3"),
            "(root)",
            "length 1",
        ),
        (
            "huge array header",
            Type::list(Type::Bool),
            hex("dd ff ff ff ff"),
            "[0]",
            "unexpected end",
        ),
        (
            "huge string header",
            Type::String,
            hex("db ff ff ff ff 61"),
            "(root)",
            "unexpected end",
        ),
        (
            "huge ext header",
            Type::String,
            hex("c9 ff ff ff ff 00"),
            "(root)",
            "unexpected end",
        ),
        (
            "invalid UTF-8",
            Type::String,
            hex("a1 ff"),
            "(root)",
            "not UTF-8",
        ),
        (
            "NaN",
            Type::Number,
            hex("cb 7f f8 00 00 00 00 00 00"),
            "(root)",
            "NaN",
        ),
        (
            "bad number text",
            Type::Number,
            hex("a2 31 78"),
            "(root)",
            "number is required",
        ),
        (
            "dynamic not a pair",
            Type::Dynamic,
            hex("91 c3"),
            "(root)",
            "exactly two",
        ),
        (
            "dynamic bad type",
            Type::Dynamic,
            hex("92 a3 22 78 22 c3"),
            "(root)",
            "not a cty type",
        ),
        (
            "deep nesting",
            Type::Dynamic,
            [vec![0x92, 0xa9], br#""dynamic""#.to_vec()]
                .concat()
                .repeat(200),
            "(root)",
            "levels deep",
        ),
    ];
    for (name, ty, bytes, path, reason) in cases {
        let e = msgpack::decode(&bytes, &ty).unwrap_err();
        let Error::Decode {
            path: at,
            reason: why,
            ..
        } = &e
        else {
            panic!("{name}: {e:?}");
        };
        assert_eq!(at.to_string(), path, "{name}: {e}");
        assert!(why.contains(reason), "{name}: {why:?} lacks {reason:?}");
    }
}

#[test]
fn msgpack_writes_every_attribute_and_refuses_values_that_do_not_fit() {
    // Attributes the value lacks are written as null.
    let ty = Type::object([("a", Type::String), ("b", Type::Bool)]);
    let bytes = msgpack::encode(&Value::object([("a", Value::from("x"))]), &ty).unwrap();
    assert_eq!(bytes, hex("82 a1 61 a1 78 a1 62 c0"));

    let cases: Vec<(&str, Value, Type, &str)> = vec![
        (
            "extra attribute",
            Value::object([("c", Value::Null)]),
            ty.clone(),
            "\"c\" is not in the object type",
        ),
        (
            "string for a bool",
            Value::object([("b", Value::from("x"))]),
            ty,
            "string value cannot be written as \"bool\"",
        ),
        (
            "tuple length",
            Value::Tuple(vec![]),
            Type::Tuple(vec![Type::Bool]),
            "length 1",
        ),
    ];
    for (name, value, ty, reason) in cases {
        let e = msgpack::encode(&value, &ty).unwrap_err();
        assert!(matches!(e, Error::Encode { .. }), "{name}: {e:?}");
        assert!(e.to_string().contains(reason), "{name}: {e}");
    }
}

#[test]
fn msgpack_dynamic_positions_carry_the_type_a_plain_value_implies() {
    let value = Value::object([("n", Value::from(3)), ("s", Value::List(vec!["a".into()]))]);
    let bytes = msgpack::encode(&value, &Type::Dynamic).unwrap();
    let decoded = msgpack::decode(&bytes, &Type::Dynamic).unwrap();
    let ty = Type::object([("n", Type::Number), ("s", Type::list(Type::String))]);
    assert_eq!(decoded, Value::Dynamic(ty, Box::new(value)));
}

#[test]
fn json_reads_and_writes_state_as_go_cty_does() {
    let cases: Vec<(&str, Type, &str, Value)> = vec![
        ("string", Type::String, r#""x""#, "x".into()),
        ("null", Type::String, "null", Value::Null),
        (
            "big number",
            Type::Number,
            "123456789012345678901234567890",
            num("123456789012345678901234567890"),
        ),
        ("fraction", Type::Number, "0.1", num("0.1")),
        ("bool", Type::Bool, "true", true.into()),
        (
            "list",
            Type::list(Type::Number),
            "[1,2]",
            Value::List(vec![1.into(), 2.into()]),
        ),
        (
            "set",
            Type::set(Type::String),
            r#"["a"]"#,
            Value::Set(vec!["a".into()]),
        ),
        (
            "tuple",
            Type::Tuple(vec![Type::String, Type::Number]),
            r#"["a",1]"#,
            Value::Tuple(vec!["a".into(), 1.into()]),
        ),
        (
            "map",
            Type::map(Type::Bool),
            r#"{"k":false}"#,
            Value::Map([("k".to_owned(), false.into())].into()),
        ),
        (
            "object",
            Type::object([("a", Type::String), ("b", Type::Number)]),
            r#"{"a":"x","b":null}"#,
            Value::object([("a", Value::from("x")), ("b", Value::Null)]),
        ),
        (
            "dynamic",
            Type::Dynamic,
            r#"{"value":["a"],"type":["list","string"]}"#,
            Value::Dynamic(
                Type::list(Type::String),
                Box::new(Value::List(vec!["a".into()])),
            ),
        ),
    ];
    for (name, ty, text, value) in cases {
        assert_eq!(
            json::decode(text.as_bytes(), &ty).unwrap(),
            value,
            "decode {name}"
        );
        assert_eq!(json::encode(&value, &ty).unwrap(), text, "encode {name}");
    }
}

#[test]
fn json_fills_missing_attributes_with_null_and_accepts_loose_scalars() {
    let ty = Type::object([
        ("a", Type::String),
        ("b", Type::Number),
        ("c", Type::String),
    ]);
    let value = json::decode(br#" {"b": "12", "c": 5} "#, &ty).unwrap();
    assert_eq!(
        value,
        Value::object([
            ("a", Value::Null),
            ("b", Value::from(12)),
            ("c", Value::from("5"))
        ])
    );
}

#[test]
fn json_rejects_what_no_value_of_the_type_can_be() {
    let ty = Type::object([("a", Type::String)]);
    let cases: Vec<(&str, Type, &str, &str, &str)> = vec![
        ("not json", ty.clone(), "{", "(root)", "object key"),
        (
            "unknown attribute",
            ty.clone(),
            r#"{"z":1}"#,
            "(root)",
            "unsupported attribute \"z\"",
        ),
        (
            "array for a string",
            ty.clone(),
            r#"{"a":[]}"#,
            ".a",
            "is required, got an array",
        ),
        (
            "bad number",
            Type::Number,
            r#""x""#,
            "(root)",
            "number is required",
        ),
        (
            "dynamic without type",
            Type::Dynamic,
            r#"{"value":1}"#,
            "(root)",
            "both",
        ),
        (
            "dynamic bad key",
            Type::Dynamic,
            r#"{"v":1}"#,
            "(root)",
            "invalid key",
        ),
        (
            "tuple length",
            Type::Tuple(vec![Type::Bool]),
            "[]",
            "(root)",
            "length 1",
        ),
    ];
    for (name, ty, text, path, reason) in cases {
        let e = json::decode(text.as_bytes(), &ty).unwrap_err();
        let Error::Decode {
            path: at,
            reason: why,
            ..
        } = &e
        else {
            panic!("{name}: {e:?}");
        };
        assert_eq!(at.to_string(), path, "{name}: {e}");
        assert!(why.contains(reason), "{name}: {why:?} lacks {reason:?}");
    }
    let e = json::encode(&Value::object([("a", Value::Unknown)]), &ty).unwrap_err();
    assert!(e.to_string().contains("at .a"), "{e}");
    assert!(e.to_string().contains("unknown"), "{e}");
}

#[test]
fn msgpack_and_json_agree_on_every_golden_without_unknowns() {
    for (name, ty, value, _) in msgpack_goldens() {
        if !value.is_wholly_known() {
            continue;
        }
        let text = json::encode(&value, &ty).unwrap();
        let back = json::decode(text.as_bytes(), &ty).unwrap();
        assert_eq!(
            msgpack::encode(&back, &ty).unwrap(),
            msgpack::encode(&value, &ty).unwrap(),
            "{name}: {text}"
        );
    }
}

use std::collections::{BTreeMap, HashMap};

use super::wire::{put_int, put_uint};
use super::*;
use crate::netrpc::codec::{ClientCodec, RequestHeader, ResponseHeader, ServerCodec};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn encode_with(enc: &mut Encoder, ty: &Type, value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    enc.encode(ty, value, &mut out).expect("encodes");
    out
}

fn decode_one(bytes: &[u8]) -> Result<(Type, Value), GobError> {
    let (ty, value, consumed) = Decoder::default().decode(bytes)?.expect("a complete value");
    assert_eq!(consumed, bytes.len(), "consumed everything");
    Ok((ty, value))
}

fn decode_err(limits: Limits, bytes: &[u8]) -> GobError {
    let mut dec = Decoder::new(limits);
    let mut pos = 0;
    loop {
        match dec.decode(&bytes[pos..]) {
            Ok(Some((_, _, n))) => pos += n,
            Ok(None) => panic!("wanted an error, got a request for more bytes"),
            Err(e) => return e,
        }
    }
}

#[test]
fn primitives_match_go() {
    let uints: &[(u64, &str)] = &[
        (0, "00"),
        (7, "07"),
        (127, "7f"),
        (128, "ff80"),
        (256, "fe0100"),
        (65, "41"),
        (u64::MAX, "f8ffffffffffffffff"),
    ];
    for &(x, want) in uints {
        let mut out = Vec::new();
        put_uint(&mut out, x);
        assert_eq!(to_hex(&out), want, "uint {x}");
        assert!(
            matches!(wire::read_uint(&out), wire::UintRead::Done(y, n) if y == x && n == out.len())
        );
    }
    let ints: &[(i64, &str)] = &[
        (0, "00"),
        (3, "06"),
        (-1, "01"),
        (-129, "fe0101"),
        (-65, "ff81"),
        (65, "ff82"),
        (i64::MIN, "f8ffffffffffffffff"),
        (i64::MAX, "f8fffffffffffffffe"),
    ];
    for &(i, want) in ints {
        let mut out = Vec::new();
        put_int(&mut out, i);
        assert_eq!(to_hex(&out), want, "int {i}");
        assert_eq!(wire::uint_to_int(wire::int_to_uint(i)), i);
    }
    let mut out = Vec::new();
    put_uint(&mut out, wire::float_bits(17.0));
    assert_eq!(to_hex(&out), "fe3140", "17.0 (doc.go)");
}

#[test]
fn go_doc_examples() {
    // doc.go: Point{22, 33} on a fresh encoder (Go ≤ 1.20 numbering: 65).
    let point = Type::structure("Point", vec![("X", Type::Int), ("Y", Type::Int)]);
    let value = Value::Struct(vec![
        ("X".into(), Value::Int(22)),
        ("Y".into(), Value::Int(33)),
    ]);
    let doc = "1fff81030101055 06f696e7401ff8200010201015801040001015901040000000 7ff82012c014200"
        .replace(' ', "");
    let mut enc = Encoder::with_first_id(65);
    assert_eq!(to_hex(&encode_with(&mut enc, &point, &value)), doc);
    assert_eq!(
        to_hex(&encode_with(&mut enc, &point, &value)),
        "07ff82012c014200"
    );
    // A top-level int.
    assert_eq!(
        to_hex(&encode_with(
            &mut Encoder::new(),
            &Type::Int,
            &Value::Int(3)
        )),
        "03040006"
    );
    let (ty, decoded) = decode_one(&hex(&doc)).unwrap();
    assert_eq!(ty, point);
    assert_eq!(decoded, value);
}

/// §6.4 of the go-plugin inventory: go-plugin's net/rpc traffic, from Go
/// 1.19 with client and server in one process (so the server's types are
/// numbered after the client's).
const PING_REQ: &str = "2fff81030101075265717565737401ff82000102010d536572766963654d6574686f64010c000103536571010600000011ff82010c436f6e74726f6c2e50696e670003020001";
const PING_RESP: &str = "3aff8303010108526573706f6e736501ff84000103010d536572766963654d6574686f64010c00010353657101060001054572726f72010c00000011ff84010c436f6e74726f6c2e50696e67000aff85030102ff8600000003ff8600";
const DISPENSE_REQ: &str = "19ff82011244697370656e7365722e44697370656e7365010100070c000474657374";
const DISPENSE_RESP: &str = "19ff84011244697370656e7365722e44697370656e736501010003060001";
const DISPENSE_ERR: &str = "34ff84011244697370656e7365722e44697370656e736501020119756e6b6e6f776e20706c7567696e20747970653a206e6f70650003ff8600";
const QUIT_REQ: &str = "13ff82010c436f6e74726f6c2e5175697401030003020001";
const QUIT_RESP: &str = "13ff84010c436f6e74726f6c2e5175697401030003ff8600";

fn request(method: &str, seq: u64) -> RequestHeader {
    RequestHeader {
        service_method: method.into(),
        seq,
    }
}

fn response(method: &str, seq: u64, error: &str) -> ResponseHeader {
    ResponseHeader {
        service_method: method.into(),
        seq,
        error: error.into(),
    }
}

#[test]
fn go_plugin_net_rpc_bytes() {
    let limits = Limits::default();
    let mut host = ClientCodec::from_parts(Encoder::with_first_id(65), Decoder::new(limits));
    let mut plugin = ServerCodec::from_parts(Encoder::with_first_id(66), Decoder::new(limits));
    let unit = (<()>::gob_type(), ().to_gob());
    type Call = (RequestHeader, Type, Value, &'static str);
    type Reply = (ResponseHeader, Type, Value, &'static str);
    let exchanges: Vec<(Call, Reply)> = vec![
        (
            (
                request("Control.Ping", 0),
                Type::Bool,
                Value::Bool(true),
                PING_REQ,
            ),
            (
                response("Control.Ping", 0, ""),
                unit.0.clone(),
                unit.1.clone(),
                PING_RESP,
            ),
        ),
        (
            (
                request("Dispenser.Dispense", 1),
                Type::String,
                "test".to_string().to_gob(),
                DISPENSE_REQ,
            ),
            (
                response("Dispenser.Dispense", 1, ""),
                Type::Uint,
                1u32.to_gob(),
                DISPENSE_RESP,
            ),
        ),
        (
            (
                request("Dispenser.Dispense", 2),
                Type::String,
                "nope".to_string().to_gob(),
                "",
            ),
            (
                response("Dispenser.Dispense", 2, "unknown plugin type: nope"),
                unit.0.clone(),
                unit.1.clone(),
                DISPENSE_ERR,
            ),
        ),
        (
            (
                request("Control.Quit", 3),
                Type::Bool,
                Value::Bool(true),
                QUIT_REQ,
            ),
            (
                response("Control.Quit", 3, ""),
                unit.0.clone(),
                unit.1,
                QUIT_RESP,
            ),
        ),
    ];
    for ((req, req_ty, req_body, req_hex), (resp, resp_ty, resp_body, resp_hex)) in exchanges {
        let mut wire = Vec::new();
        host.encode_request(&req, &req_ty, &req_body, &mut wire)
            .unwrap();
        if !req_hex.is_empty() {
            assert_eq!(to_hex(&wire), req_hex, "{req:?}");
        }
        let (got, ty, body, consumed) = plugin.decode_request(&wire).unwrap().unwrap();
        assert_eq!(
            (got, ty, body, consumed),
            (req.clone(), req_ty, req_body, wire.len())
        );

        let mut wire = Vec::new();
        if resp.error.is_empty() {
            plugin
                .encode_response(&resp, &resp_ty, &resp_body, &mut wire)
                .unwrap();
        } else {
            plugin.encode_error(&resp, &mut wire).unwrap();
        }
        assert_eq!(to_hex(&wire), resp_hex, "{resp:?}");
        // Fed byte by byte, the host sees nothing until the pair is complete.
        for cut in 0..wire.len() {
            assert_eq!(host.decode_response(&wire[..cut]).unwrap(), None, "{cut}");
        }
        let (got, ty, body, consumed) = host.decode_response(&wire).unwrap().unwrap();
        assert_eq!(
            (got, ty, body, consumed),
            (resp, resp_ty, resp_body, wire.len())
        );
    }
}

#[test]
fn decodes_a_whole_go_stream_in_pieces() {
    let stream = hex(&[PING_RESP, DISPENSE_RESP, DISPENSE_ERR, QUIT_RESP].concat());
    let mut host = ClientCodec::new(Limits::default());
    let (mut pos, mut end) = (0, 0);
    let mut seen = Vec::new();
    // Feed a growing window, as a reader would.
    loop {
        if let Some((header, _, _, n)) = host.decode_response(&stream[pos..end]).unwrap() {
            seen.push((header.seq, header.error));
            pos += n;
            continue;
        }
        if end == stream.len() {
            break;
        }
        end = (end + 7).min(stream.len());
    }
    assert_eq!(pos, stream.len());
    assert_eq!(
        seen,
        vec![
            (0, String::new()),
            (1, String::new()),
            (2, "unknown plugin type: nope".to_string()),
            (3, String::new()),
        ]
    );
}

/// Bytes from Go 1.26 (`encoding/gob`), one encoder per group.
#[test]
fn interfaces_match_go_framing() {
    // type W struct{ X interface{} }; S struct{ A int; I interface{} };
    // T struct{ B string }; gob.Register(S{}), gob.Register(T{});
    // enc.Encode(W{X: S{A: 1, I: T{B: "x"}}}) twice.
    let t = Type::structure("main.T", vec![("B", Type::String)]);
    let s = Type::structure("main.S", vec![("A", Type::Int), ("I", Type::Interface)]);
    let w = Type::structure("main.W", vec![("X", Type::Interface)]);
    let t_value = Value::Struct(vec![("B".into(), Value::String("x".into()))]);
    let s_value = Value::Struct(vec![
        ("A".into(), Value::Int(1)),
        (
            "I".into(),
            Value::Interface(Some(Box::new(InterfaceValue {
                name: "main.T".into(),
                ty: t,
                value: t_value,
            }))),
        ),
    ]);
    let w_value = Value::Struct(vec![(
        "X".into(),
        Value::Interface(Some(Box::new(InterfaceValue {
            name: "main.S".into(),
            ty: s,
            value: s_value,
        }))),
    )]);
    let first = "147f030101015701ff80000101010158011000000025ff8001066d61696e2e53ff81030101015301ff8200010201014101040001014901100000002cff821f010201066d61696e2e54ff83030101015401ff84000101010142010c00000008ff8404010178000000";
    let second = "20ff8001066d61696e2e53ff8212010201066d61696e2e54ff8404010178000000";
    let mut enc = Encoder::new();
    assert_eq!(to_hex(&encode_with(&mut enc, &w, &w_value)), first);
    assert_eq!(to_hex(&encode_with(&mut enc, &w, &w_value)), second);

    // Go's decoder reads this framing; so does ours, in one go or not.
    let stream = hex(&[first, second].concat());
    let mut dec = Decoder::default();
    for cut in 0..hex(first).len() {
        assert_eq!(dec.decode(&stream[..cut]).unwrap(), None);
    }
    let (ty, value, n) = dec.decode(&stream).unwrap().unwrap();
    assert_eq!(n, hex(first).len());
    assert_eq!(ty, Type::structure("W", vec![("X", Type::Interface)]));
    let (_, again, m) = dec.decode(&stream[n..]).unwrap().unwrap();
    assert_eq!(n + m, stream.len());
    assert_eq!(value, again);
    let Some(Value::Interface(Some(s_iv))) = value.field("X") else {
        panic!("{value:?}")
    };
    assert_eq!(s_iv.name, "main.S");
    let Some(Value::Interface(Some(t_iv))) = s_iv.value.field("I") else {
        panic!("{value:?}")
    };
    assert_eq!(t_iv.ty, Type::structure("T", vec![("B", Type::String)]));
    assert_eq!(t_iv.value.field("B"), Some(&Value::String("x".into())));

    // One encoder, first type 67: interface{}("hi") at top level,
    // map[string]interface{}{"key": "k"}, struct{}{}, []string{"a"}.
    let mut enc = Encoder::with_first_id(67);
    let cases = [
        (
            Type::Interface,
            Value::Interface(Some(Box::new(InterfaceValue::string("hi")))),
            "0f100006737472696e670c0400026869",
        ),
        (
            Type::map(Type::String, Type::Interface),
            Value::Map(vec![(
                Value::String("key".into()),
                Value::Interface(Some(Box::new(InterfaceValue::string("k")))),
            )]),
            "0eff85040102ff8600010c0110000014ff860001036b657906737472696e670c0300016b",
        ),
        (
            <()>::gob_type(),
            ().to_gob(),
            "0aff87030102ff8800000003ff8800",
        ),
        (
            Vec::<String>::gob_type(),
            vec!["a".to_string()].to_gob(),
            "0cff89020102ff8a00010c000006ff8a00010161",
        ),
    ];
    for (ty, value, want) in cases {
        assert_eq!(to_hex(&encode_with(&mut enc, &ty, &value)), want, "{ty}");
        assert_eq!(decode_one_of(want, ty.clone()), value);
    }
}

/// Decodes `hex` after teaching a decoder no types: only for values whose
/// types come with them.
fn decode_one_of(hex_str: &str, ty: Type) -> Value {
    let (got_ty, value) = decode_one(&hex(hex_str)).unwrap();
    assert_eq!(got_ty, ty);
    value
}

#[test]
fn type_names_follow_go() {
    // A struct with composite fields: Go names field types by their Go
    // string, slice elements by their name, map parts and array elements
    // not at all.
    let inner = Type::structure("main.Inner", vec![("N", Type::Int)]);
    let outer = Type::structure(
        "main.Outer",
        vec![
            ("Items", Type::slice(inner)),
            ("Tags", Type::map(Type::String, Type::slice(Type::String))),
            ("Grid", Type::array(2, Type::Int)),
            ("Anon", Type::structure("", vec![("A", Type::Int)])),
        ],
    );
    let mut enc = Encoder::new();
    let mut out = Vec::new();
    enc.encode(&outer, &Value::Struct(vec![]), &mut out)
        .unwrap();
    let text = String::from_utf8_lossy(&out);
    for name in [
        "Outer",
        "[]main.Inner",
        "Inner",
        "map[string][]string",
        "[2]int",
        "struct { A int }",
    ] {
        assert!(text.contains(name), "{name} in {text:?}");
    }
    assert!(!text.contains("main.Outer"), "{text:?}");
}

#[test]
fn struct_first_met_as_a_map_element_has_no_name() {
    // Go 1.26: type Inner struct{ N int };
    // type Outer struct { M map[string]Inner; S []Inner }; Encode(Outer{}).
    let inner = Type::structure("main.Inner", vec![("N", Type::Int)]);
    let outer = Type::structure(
        "main.Outer",
        vec![
            ("M", Type::map(Type::String, inner.clone())),
            ("S", Type::slice(inner)),
        ],
    );
    let mut want = b" \x7f\x03\x01\x01\x05Outer\x01\xff\x80\x00\x01\x02\x01\x01M\x01\xff\x84\x00\x01\x01S\x01\xff\x86\x00\x00\x00&\xff\x83\x04\x01\x01\x15map[string]main.Inner\x01\xff\x84\x00\x01\x0c\x01\xff\x82\x00\x00\x12\xff\x81\x03\x01\x02\xff\x82\x00\x01\x01\x01\x01N\x01\x04\x00\x00\x00\x1b\xff\x85\x02\x01\x01\x0c[]main.Inner\x01\xff\x86\x00\x01\xff\x82\x00\x00".to_vec();
    // An empty map is sent (Go's was nil, so Go sent no field).
    want.extend(b"\x05\xff\x80\x01\x00\x00");
    let value = Value::Struct(vec![("M".into(), Value::Map(vec![]))]);
    assert_eq!(encode_with(&mut Encoder::new(), &outer, &value), want);
}

#[test]
fn zero_fields_are_omitted_like_go() {
    let ty = Type::structure(
        "Z",
        vec![
            ("B", Type::Bool),
            ("I", Type::Int),
            ("U", Type::Uint),
            ("F", Type::Float),
            ("C", Type::Complex),
            ("S", Type::String),
            ("Y", Type::Bytes),
            ("L", Type::slice(Type::Int)),
            ("M", Type::map(Type::String, Type::Int)),
            ("A", Type::array(1, Type::Int)),
            ("E", Type::Interface),
            ("T", <()>::gob_type()),
            ("G", Type::Int),
        ],
    );
    let value = Value::Struct(
        [
            ("B", Value::Bool(false)),
            ("I", Value::Int(0)),
            ("U", Value::Uint(0)),
            ("F", Value::Float(-0.0)),
            ("C", Value::Complex(0.0, 0.0)),
            ("S", Value::String(String::new())),
            ("Y", Value::Bytes(Vec::new())),
            ("L", Value::Slice(Vec::new())),
            ("M", Value::Map(Vec::new())),
            ("A", Value::Array(vec![Value::Int(0)])),
            ("E", Value::Interface(None)),
            ("T", Value::Struct(Vec::new())),
            ("G", Value::Int(7)),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_string(), v))
        .collect(),
    );
    let out = encode_with(&mut Encoder::new(), &ty, &value);
    let (_, decoded) = decode_one(&out).unwrap();
    let names: Vec<&str> = match &decoded {
        Value::Struct(fields) => fields.iter().map(|(n, _)| n.as_str()).collect(),
        other => panic!("{other:?}"),
    };
    // Maps (non-nil), arrays and structs are always sent.
    assert_eq!(names, ["M", "A", "T", "G"]);
}

crate::gob_struct! {
    #[derive(Clone, Debug, Default, PartialEq)]
    #[gob(name = "main.Inner", register = "main.Inner")]
    struct Inner {
        "ID" => id: i32,
        "Note" => note: String,
        "Data" => data: Vec<u8>,
    }
}

crate::gob_struct! {
    /// Everything at once.
    #[derive(Clone, Debug, Default, PartialEq)]
    struct Everything {
        "B" => b: bool,
        "I8" => i8_: i8,
        "I64" => i64_: i64,
        "U8" => u8_: u8,
        "U64" => u64_: u64,
        "Size" => size: usize,
        "F32" => f32_: f32,
        "F64" => f64_: f64,
        "S" => s: String,
        "Bytes" => bytes: Vec<u8>,
        "Strings" => strings: Vec<String>,
        "Nested" => nested: Vec<Vec<i16>>,
        "Map" => map: BTreeMap<String, Inner>,
        "Hash" => hash: HashMap<u32, bool>,
        "Arr" => arr: [u8; 3],
        "Opt" => opt: Option<Inner>,
        "Boxed" => boxed: Box<Inner>,
        "Any" => any: GoInterface,
        "Unit" => unit: (),
    }
}

#[test]
fn rust_types_round_trip() {
    let inner = Inner {
        id: -5,
        note: "n".into(),
        data: vec![1, 2],
    };
    let full = Everything {
        b: true,
        i8_: i8::MIN,
        i64_: i64::MIN,
        u8_: u8::MAX,
        u64_: u64::MAX,
        size: 12345,
        f32_: 1.5,
        f64_: f64::MIN_POSITIVE,
        s: "héllo".into(),
        bytes: vec![0, 255],
        strings: vec!["".into(), "a".into()],
        nested: vec![vec![], vec![-1, 1]],
        map: BTreeMap::from([("k".to_string(), inner.clone())]),
        hash: HashMap::from([(7, true)]),
        arr: [1, 2, 3],
        opt: Some(inner.clone()),
        boxed: Box::new(inner.clone()),
        any: GoInterface::of(&inner).unwrap(),
        unit: (),
    };
    for value in [full, Everything::default()] {
        let mut out = Vec::new();
        let mut enc = Encoder::new();
        enc.encode_gob(&value, &mut out).unwrap();
        enc.encode_gob(&value, &mut out).unwrap();
        let mut dec = Decoder::default();
        let (first, n) = dec.decode_gob::<Everything>(&out).unwrap().unwrap();
        let (second, m) = dec.decode_gob::<Everything>(&out[n..]).unwrap().unwrap();
        assert_eq!(n + m, out.len());
        // The interface's concrete type comes back without its name: like
        // Go, the encoder first met `Inner` as a map element, and Go names
        // no map elements.
        let mut want = value.clone();
        if let Some(iv) = &mut want.any.0 {
            iv.ty = Type::structure(
                "",
                vec![
                    ("ID", Type::Int),
                    ("Note", Type::String),
                    ("Data", Type::Bytes),
                ],
            );
        }
        assert_eq!(first, want);
        assert_eq!(second, want);
        assert_eq!(
            first.any.get::<Inner>().unwrap(),
            value.any.get::<Inner>().unwrap()
        );
    }
}

#[test]
fn conversions_are_lenient_like_go() {
    // Any width, with range checks.
    assert_eq!(u8::from_gob(Value::Uint(255)), Ok(255));
    assert!(matches!(
        u8::from_gob(Value::Uint(256)),
        Err(GobError::Overflow { target: "u8", .. })
    ));
    assert!(matches!(
        i8::from_gob(Value::Int(-129)),
        Err(GobError::Overflow { .. })
    ));
    assert_eq!(i16::from_gob(Value::Int(-32768)), Ok(i16::MIN));
    // Signedness does not mix.
    assert!(matches!(
        u32::from_gob(Value::Int(1)),
        Err(GobError::TypeMismatch { .. })
    ));
    assert!(matches!(
        f32::from_gob(Value::Float(1e300)),
        Err(GobError::Overflow { .. })
    ));
    assert_eq!(
        f32::from_gob(Value::Float(f64::INFINITY)),
        Ok(f32::INFINITY)
    );
    // Fields by name: unknown skipped, missing zero.
    let value = Value::Struct(vec![
        ("Extra".into(), Value::Int(1)),
        ("Note".into(), Value::String("n".into())),
    ]);
    assert_eq!(
        Inner::from_gob(value),
        Ok(Inner {
            note: "n".into(),
            ..Inner::default()
        })
    );
    // But a struct with nothing in common is Go's "no fields matched".
    let value = Value::Struct(vec![("Other".into(), Value::Int(1))]);
    assert!(matches!(
        Inner::from_gob(value),
        Err(GobError::NoFieldsMatched { .. })
    ));
    // Errors name the field.
    let value = Value::Struct(vec![("ID".into(), Value::Int(1 << 40))]);
    match Inner::from_gob(value) {
        Err(GobError::Field { field, source }) => {
            assert_eq!(field, "ID");
            assert!(matches!(*source, GobError::Overflow { .. }));
        }
        other => panic!("{other:?}"),
    }
    // Registered names of the basic types.
    assert_eq!(<Vec<u8>>::interface_name(), Some("[]uint8"));
    assert_eq!(<Vec<String>>::interface_name(), Some("[]string"));
    assert_eq!(isize::interface_name(), Some("int"));
    assert_eq!(<Vec<Vec<u8>>>::interface_name(), None);
    assert_eq!(Inner::interface_name(), Some("main.Inner"));
    assert!(matches!(
        GoInterface::of(&HashMap::<String, i32>::new()),
        Err(GobError::NotRegistered { .. })
    ));
}

#[test]
fn encoder_rejects_bad_values_and_writes_nothing() {
    let mut enc = Encoder::new();
    let mut out = vec![9];
    let ty = Type::structure("S", vec![("A", Type::Int)]);
    let cases = [
        (Type::Int, Value::Uint(1)),
        (Type::array(2, Type::Int), Value::Array(vec![Value::Int(1)])),
        (ty, Value::Struct(vec![("B".into(), Value::Int(1))])),
        (
            Type::Interface,
            Value::Interface(Some(Box::new(InterfaceValue {
                name: String::new(),
                ty: Type::Int,
                value: Value::Int(1),
            }))),
        ),
        (
            Type::Interface,
            Value::Interface(Some(Box::new(InterfaceValue {
                name: "x".repeat(1025),
                ty: Type::Int,
                value: Value::Int(1),
            }))),
        ),
        (
            Type::structure("E", vec![("", Type::Int)]),
            Value::Struct(vec![]),
        ),
    ];
    for (ty, value) in cases {
        assert!(enc.encode(&ty, &value, &mut out).is_err(), "{ty} {value:?}");
    }
    assert_eq!(out, [9]);
    // The codec checks the body before writing the header.
    let mut codec = ClientCodec::new(Limits::default());
    assert!(
        codec
            .encode_request(&request("A.B", 1), &Type::Int, &Value::Bool(true), &mut out)
            .is_err()
    );
    assert_eq!(out, [9]);
}

/// A struct type definition with fields of the given type ids.
fn struct_def(id: i64, name: &str, fields: &[(&str, i64)]) -> Vec<u8> {
    let mut m = Vec::new();
    put_int(&mut m, -id);
    m.extend([3, 1, 1]);
    put_uint(&mut m, name.len() as u64);
    m.extend(name.as_bytes());
    m.push(1);
    put_int(&mut m, id);
    m.push(0);
    m.push(1);
    put_uint(&mut m, fields.len() as u64);
    for (field, field_id) in fields {
        m.push(1);
        put_uint(&mut m, field.len() as u64);
        m.extend(field.as_bytes());
        m.push(1);
        put_int(&mut m, *field_id);
        m.push(0);
    }
    m.extend([0, 0]);
    framed(&m)
}

fn slice_def(id: i64, elem: i64) -> Vec<u8> {
    let mut m = Vec::new();
    put_int(&mut m, -id);
    m.extend([2, 1, 2]);
    put_int(&mut m, id);
    m.extend([0, 1]);
    put_int(&mut m, elem);
    m.extend([0, 0]);
    framed(&m)
}

fn framed(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    wire::put_message(&mut out, message);
    out
}

#[test]
fn malformed_input_is_a_named_error() {
    let small = Limits {
        max_message: 64,
        max_depth: 5,
        max_types: 2,
        max_type_nodes: 100,
    };
    let def = struct_def(64, "S", &[("A", 2), ("B", 6)]);
    let nested = {
        let mut ty = Type::Int;
        for _ in 0..8 {
            ty = Type::slice(ty);
        }
        let mut value = Value::Slice(vec![]);
        for _ in 0..7 {
            value = Value::Slice(vec![value]);
        }
        encode_with(&mut Encoder::new(), &ty, &value)
    };
    type Check = fn(&GobError) -> bool;
    let cases: Vec<(&str, Vec<u8>, Check)> = vec![
        ("message over the limit", hex("41"), |e| {
            matches!(e, GobError::MessageTooLarge { len: 65, max: 64 })
        }),
        ("uint of 9 bytes", hex("f7"), |e| {
            matches!(e, GobError::BadUint { count: 9 })
        }),
        ("uint of 128 bytes", hex("80"), |e| {
            matches!(e, GobError::BadUint { count: 128 })
        }),
        ("undefined type", hex("03ff8000"), |e| {
            matches!(e, GobError::UnknownTypeId { id: 64 })
        }),
        ("id 0", hex("020000"), |e| {
            matches!(e, GobError::UnknownTypeId { id: 0 })
        }),
        ("id out of range", hex("06fb0200000000"), |e| {
            matches!(e, GobError::TypeIdOutOfRange { .. })
        }),
        ("redefined", [def.clone(), def.clone()].concat(), |e| {
            matches!(e, GobError::TypeRedefined { id: 64 })
        }),
        ("reserved id", struct_def(16, "W", &[]), |e| {
            matches!(e, GobError::ReservedTypeId { id: 16 })
        }),
        (
            "too many types",
            [
                struct_def(64, "A", &[]),
                struct_def(65, "B", &[]),
                struct_def(66, "C", &[]),
            ]
            .concat(),
            |e| matches!(e, GobError::TooManyTypes { max: 2 }),
        ),
        (
            "field without a name",
            struct_def(64, "S", &[("", 2)]),
            |e| matches!(e, GobError::BadTypeDefinition { id: 64, .. }),
        ),
        (
            "duplicate field",
            struct_def(64, "S", &[("A", 2), ("A", 2)]),
            |e| matches!(e, GobError::BadTypeDefinition { id: 64, .. }),
        ),
        ("empty wireType", hex("027f00"), |e| {
            matches!(e, GobError::BadTypeDefinition { .. })
        }),
        ("wireType field out of range", hex("027f08"), |e| {
            matches!(e, GobError::FieldDeltaOutOfRange { fields: 7, .. })
        }),
        ("truncated int", hex("020400"), |e| {
            matches!(e, GobError::Truncated { .. })
        }),
        ("empty message", hex("00"), |e| {
            matches!(e, GobError::Truncated { .. })
        }),
        ("string past its message", hex("040c000561"), |e| {
            matches!(
                e,
                GobError::LengthOutOfRange {
                    len: 5,
                    remaining: 1,
                    ..
                }
            )
        }),
        ("invalid UTF-8", hex("040c0001ff"), |e| {
            matches!(e, GobError::InvalidUtf8 { .. })
        }),
        ("singleton delta", hex("03040106"), |e| {
            matches!(e, GobError::SingletonDelta { delta: 1 })
        }),
        (
            "field delta out of range",
            [def.clone(), hex("03ff8003")].concat(),
            |e| {
                matches!(
                    e,
                    GobError::FieldDeltaOutOfRange {
                        delta: 3,
                        fields: 2,
                        ..
                    }
                )
            },
        ),
        (
            "extra data after a definition",
            {
                let mut d = def;
                d[0] += 1;
                d.push(0);
                d
            },
            |e| matches!(e, GobError::ExtraData),
        ),
        (
            "slice longer than its message",
            [slice_def(64, 2), hex("05ff80000502")].concat(),
            |e| {
                matches!(
                    e,
                    GobError::TooManyElements {
                        what: "slice",
                        len: 5
                    }
                )
            },
        ),
        (
            "map longer than its message",
            {
                let ty = Type::map(Type::Int, Type::Int);
                let mut out = encode_with(
                    &mut Encoder::new(),
                    &ty,
                    &Value::Map(vec![(Value::Int(1), Value::Int(2))]),
                );
                let pos = out.len() - 3;
                out[pos] = 3;
                out
            },
            |e| {
                matches!(
                    e,
                    GobError::TooManyElements {
                        what: "map",
                        len: 3
                    }
                )
            },
        ),
        (
            "recursive type",
            [
                struct_def(64, "Node", &[("Kids", 65)]),
                slice_def(65, 64),
                hex("03ff8000"),
            ]
            .concat(),
            |e| matches!(e, GobError::RecursiveType { id: 64, .. }),
        ),
        ("interface name past its message", hex("03100005"), |e| {
            matches!(
                e,
                GobError::LengthOutOfRange {
                    what: "interface type name",
                    ..
                }
            )
        }),
    ];
    for (what, bytes, check) in cases {
        let e = decode_err(small, &bytes);
        assert!(check(&e), "{what}: {e:?}");
        // Errors render.
        assert!(e.to_string().starts_with("gob: "), "{e}");
    }
    let e = decode_err(
        Limits {
            max_depth: 5,
            ..Limits::default()
        },
        &nested,
    );
    assert!(matches!(e, GobError::DepthLimit { max: 5 }), "{e:?}");
    // Go's 1024-byte limit on interface type names.
    let mut m = hex("1000");
    put_uint(&mut m, 1025);
    m.extend([b'x'; 1025]);
    let e = decode_err(Limits::default(), &framed(&m));
    assert!(
        matches!(e, GobError::InterfaceNameTooLong { len: 1025 }),
        "{e:?}"
    );
    // Array length mismatch.
    let ty = Type::array(2, Type::Int);
    let mut out = encode_with(
        &mut Encoder::new(),
        &ty,
        &Value::Array(vec![Value::Int(1), Value::Int(2)]),
    );
    let pos = out.len() - 3;
    assert_eq!(out[pos], 2);
    out[pos] = 3;
    let e = decode_err(Limits::default(), &out);
    assert!(
        matches!(
            e,
            GobError::ArrayLength {
                expected: 2,
                found: 3
            }
        ),
        "{e:?}"
    );
}

#[test]
fn type_budget_bounds_amplification() {
    // A wide struct type, then a []interface{} with many values of it: the
    // types built would dwarf the input.
    let fields = (0..50).map(|i| (format!("F{i}"), Type::Int)).collect();
    let wide = Type::Struct(StructType::new("main.Wide", fields));
    let iv = Value::Interface(Some(Box::new(InterfaceValue {
        name: "main.Wide".into(),
        ty: wide,
        value: Value::Struct(vec![]),
    })));
    let value = Value::Slice(vec![iv; 1000]);
    let out = encode_with(&mut Encoder::new(), &Type::slice(Type::Interface), &value);
    let limits = Limits {
        max_type_nodes: 1000,
        ..Limits::default()
    };
    let e = decode_err(limits, &out);
    assert!(matches!(e, GobError::TypeTooLarge { max: 1000 }), "{e:?}");
    // With the default allowance it decodes.
    let (_, decoded) = decode_one(&out).unwrap();
    assert_eq!(decoded, value_with_unqualified(&value));
}

fn value_with_unqualified(value: &Value) -> Value {
    match value {
        Value::Slice(items) => Value::Slice(items.iter().map(value_with_unqualified).collect()),
        Value::Interface(Some(iv)) => {
            let mut iv = iv.clone();
            if let Type::Struct(st) = &mut iv.ty {
                st.name = st.name.rsplit('.').next().unwrap_or_default().to_owned();
            }
            Value::Interface(Some(iv))
        }
        other => other.clone(),
    }
}

#[test]
fn fuzz_entry_point_survives_samples() {
    let samples = [
        hex(&[PING_REQ, DISPENSE_REQ, QUIT_REQ].concat()),
        hex(&[PING_RESP, DISPENSE_RESP, DISPENSE_ERR, QUIT_RESP].concat()),
        hex(
            "147f030101015701ff80000101010158011000000025ff8001066d61696e2e53ff81030101015301ff8200010201014101040001014901100000002cff821f010201066d61696e2e54ff83030101015401ff84000101010142010c00000008ff8404010178000000",
        ),
        hex("0eff85040102ff8600010c0110000014ff860001036b657906737472696e670c0300016b"),
        Vec::new(),
        vec![0xff; 3],
        vec![0; 20],
    ];
    for sample in &samples {
        super::fuzz::fuzz(sample);
        // And every prefix and every single-byte corruption.
        for cut in 0..sample.len() {
            super::fuzz::fuzz(&sample[..cut]);
            let mut bad = sample.clone();
            bad[cut] ^= 0x41;
            super::fuzz::fuzz(&bad);
        }
    }
}

#[test]
fn codecs_can_move_between_tasks() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Encoder>();
    send_sync::<Decoder>();
    send_sync::<ClientCodec>();
    send_sync::<ServerCodec>();
    send_sync::<GobError>();
}

#[test]
fn waiting_for_a_message_does_not_reparse() {
    // A typedef message, then a large value message arriving in pieces:
    // until the value message is complete, the decoder does not parse.
    let ty = Type::slice(Type::String);
    let value = Value::Slice(vec![Value::String("x".repeat(1000)); 100]);
    let out = encode_with(&mut Encoder::new(), &ty, &value);
    let mut dec = Decoder::default();
    assert_eq!(dec.decode(&out[..20]).unwrap(), None);
    assert!(dec.wanted > 20 && dec.wanted == out.len(), "{}", dec.wanted);
    // Garbage in the part not yet needed is not even looked at.
    let mut partial = out[..out.len() - 1].to_vec();
    partial[30] ^= 0xff;
    assert_eq!(dec.decode(&partial).unwrap(), None);
    let (_, got, n) = dec.decode(&out).unwrap().unwrap();
    assert_eq!((got, n), (value, out.len()));
    assert_eq!(dec.wanted, 0);
}

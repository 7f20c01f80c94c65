//! goplug's gob encoder/decoder and net/rpc codec against Go's
//! `encoding/gob` and `net/rpc` (`interop/go`'s `gob-peer`; see its doc
//! comment for the cases and services):
//!
//! - for every case, the Rust encoder's bytes equal Go's (where Go's output
//!   is deterministic: maps with several keys are not, so those are compared
//!   decoded), the Rust decoder reads Go's stream into the expected values,
//!   and Go decodes the Rust stream into what it decodes from its own;
//! - net/rpc calls from a Rust [`ClientCodec`] to Go's net/rpc server, and
//!   from Go's net/rpc client to a Rust loop over [`ServerCodec`], including
//!   error replies and out-of-order replies.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use goplug::gob_struct;
use goplug::netrpc::codec::{ClientCodec, RequestHeader, ResponseHeader, ServerCodec};
use goplug::netrpc::gob::{
    Decoder, Encoder, GoInterface, Gob, InterfaceValue, Limits, StructType, Type, Value,
};
use goplug_test::go_bin;

/// The limit on every wait in these tests.
const LIMIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// A Go child process with binary stdin/stdout, killed if the test fails.

struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Receiver<Vec<u8>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    what: String,
}

impl Peer {
    fn spawn(args: &[&str]) -> Peer {
        let bin = go_bin("gob-peer");
        let mut child = Command::new(&bin)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", bin.display()));
        let mut stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut buf = vec![0; 64 << 10];
            loop {
                match stdout.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = tx.send(Vec::new());
                        return;
                    }
                    Ok(n) => {
                        if tx.send(buf[..n].to_vec()).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut pipe = child.stderr.take().expect("piped stderr");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut all = Vec::new();
            let _ = pipe.read_to_end(&mut all);
            sink.lock().expect("stderr lock").extend(all);
        });
        Peer {
            stdin: child.stdin.take(),
            child,
            stdout: rx,
            stderr,
            what: format!("gob-peer {}", args.join(" ")),
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        let what = &self.what;
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin
            .write_all(bytes)
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("{what}: writing: {e}"));
    }

    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The next chunk of stdout; `None` at EOF. Panics after `deadline`.
    fn recv(&self, deadline: Instant) -> Option<Vec<u8>> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.stdout.recv_timeout(left) {
            Ok(chunk) if chunk.is_empty() => None,
            Ok(chunk) => Some(chunk),
            Err(RecvTimeoutError::Disconnected) => None,
            Err(RecvTimeoutError::Timeout) => {
                panic!(
                    "{}: no output within {LIMIT:?}; stderr: {}",
                    self.what,
                    self.stderr()
                )
            }
        }
    }

    /// All of stdout, to EOF.
    fn read_all(&self) -> Vec<u8> {
        let deadline = Instant::now() + LIMIT;
        let mut all = Vec::new();
        while let Some(chunk) = self.recv(deadline) {
            all.extend(chunk);
        }
        all
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().expect("stderr lock")).into_owned()
    }

    fn wait(&mut self) -> ExitStatus {
        self.close_stdin();
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for gob-peer") {
                // Let the stderr thread finish.
                std::thread::sleep(Duration::from_millis(20));
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {LIMIT:?}",
                self.what
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `gob-peer args` with `input` on stdin; its stdout. Panics when it
/// fails.
fn go(args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut peer = Peer::spawn(args);
    if !input.is_empty() {
        peer.write(input);
    }
    peer.close_stdin();
    let out = peer.read_all();
    let status = peer.wait();
    assert!(
        status.success(),
        "gob-peer {args:?}: {status}: {}",
        peer.stderr()
    );
    out
}

/// The type id the Go peer gives its first type (64 since Go 1.21).
fn first_id() -> i64 {
    static ID: OnceLock<i64> = OnceLock::new();
    *ID.get_or_init(|| {
        let out = go(&["first-id"], &[]);
        String::from_utf8_lossy(&out)
            .trim()
            .parse()
            .expect("first-id prints a number")
    })
}

// ---------------------------------------------------------------------------
// The cases, as in gob-peer.

gob_struct! {
    #[derive(Clone, Debug, Default, PartialEq)]
    #[gob(name = "main.Inner", register = "main.Inner")]
    struct Inner {
        "ID" => id: i64,
        "Note" => note: String,
        "Data" => data: Vec<u8>,
    }
}

gob_struct! {
    #[derive(Clone, Debug, Default, PartialEq)]
    #[gob(name = "main.Outer")]
    struct Outer {
        "Name" => name: String,
        "Items" => items: Vec<Inner>,
        "Tags" => tags: Option<BTreeMap<String, i64>>,
        "Matrix" => matrix: Vec<Vec<i64>>,
        "Opt" => opt: Option<Inner>,
        "Arr" => arr: [i64; 3],
        "Big" => big: Vec<u64>,
        "Words" => words: Vec<String>,
    }
}

gob_struct! {
    #[derive(Clone, Debug, Default, PartialEq)]
    #[gob(name = "main.Ints")]
    struct Ints {
        "I8" => i8_: i8,
        "I16" => i16_: i16,
        "I32" => i32_: i32,
        "I64" => i64_: i64,
        "I" => int: isize,
        "U8" => u8_: u8,
        "U16" => u16_: u16,
        "U32" => u32_: u32,
        "U64" => u64_: u64,
        "U" => uint: usize,
        "Uptr" => uptr: u64,
    }
}

gob_struct! {
    #[derive(Clone, Debug, Default, PartialEq)]
    #[gob(name = "main.Neg")]
    struct Neg {
        "A" => a: i64,
        "B" => b: i32,
    }
}

gob_struct! {
    #[derive(Clone, Debug, Default, PartialEq)]
    #[gob(name = "main.Empty")]
    struct Empty {
        "S" => s: Vec<String>,
        "E" => e: Vec<String>,
        "M" => m: Option<HashMap<String, i64>>,
        "EM" => em: HashMap<String, i64>,
        "B" => b: Vec<u8>,
        "Str" => str_: String,
        "P" => p: Option<Inner>,
        "I" => i: GoInterface,
    }
}

gob_struct! {
    #[derive(Clone, Debug, Default, PartialEq)]
    #[gob(name = "main.Sparse")]
    struct Sparse {
        "A" => a: i64,
        "B" => b: String,
        "C" => c: bool,
        "D" => d: f64,
        "E" => e: Vec<i64>,
        "F" => f: Option<i64>,
        "G" => g: i64,
    }
}

gob_struct! {
    #[derive(Clone, Debug, Default, PartialEq)]
    #[gob(name = "main.Holder")]
    struct Holder {
        "Any" => any: GoInterface,
        "More" => more: Vec<GoInterface>,
    }
}

gob_struct! {
    #[derive(Clone, Debug, Default, PartialEq)]
    #[gob(name = "main.Wrapper", register = "main.Wrapper")]
    struct Wrapper {
        "Label" => label: String,
        "Inner" => inner: GoInterface,
    }
}

gob_struct! {
    #[derive(Clone, Debug, Default, PartialEq)]
    #[gob(name = "main.Texts")]
    struct Texts {
        "Long" => long: String,
        "All" => all: Vec<String>,
    }
}

gob_struct! {
    #[derive(Clone, Debug, Default, PartialEq)]
    #[gob(name = "main.Args")]
    struct Args {
        "A" => a: i64,
        "B" => b: i64,
    }
}

gob_struct! {
    #[derive(Clone, Debug, Default, PartialEq)]
    #[gob(name = "main.Quotient")]
    struct Quotient {
        "Quo" => quo: i64,
        "Rem" => rem: i64,
    }
}

/// One value of a case: its type and value, and a check of a decoded value.
struct Slot {
    ty: Type,
    value: Value,
    check: Box<dyn Fn(Value) -> Result<(), String>>,
}

/// A value of a [`Gob`] type: decoded values must convert back to it.
fn typed<T: Gob + PartialEq + std::fmt::Debug + 'static>(value: T) -> Slot {
    let (ty, gob) = (T::gob_type(), value.to_gob());
    Slot {
        ty,
        value: gob,
        check: Box::new(move |decoded| {
            let got = T::from_gob(decoded).map_err(|e| e.to_string())?;
            if normalize(got.to_gob()) == normalize(value.to_gob()) {
                Ok(())
            } else {
                Err(format!("got {got:?}\nwant {value:?}"))
            }
        }),
    }
}

/// A dynamic value: decoded values must equal it (zero fields left out).
fn raw(ty: Type, value: Value) -> Slot {
    let want = value.clone();
    Slot {
        ty,
        value,
        check: Box::new(move |decoded| {
            if normalize(decoded.clone()) == normalize(want.clone()) {
                Ok(())
            } else {
                Err(format!("got {decoded:?}\nwant {want:?}"))
            }
        }),
    }
}

/// Values as gob sees them: struct fields that gob does not send (zero
/// values) left out, maps in key order, and interface values' types
/// without struct names (they depend on where the encoder first met the
/// type).
fn normalize(value: Value) -> Value {
    match value {
        Value::Slice(items) => Value::Slice(items.into_iter().map(normalize).collect()),
        Value::Array(items) => Value::Array(items.into_iter().map(normalize).collect()),
        Value::Struct(fields) => Value::Struct(
            fields
                .into_iter()
                .filter(|(_, v)| is_sent(v))
                .map(|(n, v)| (n, normalize(v)))
                .collect(),
        ),
        Value::Map(pairs) => {
            let mut pairs: Vec<_> = pairs
                .into_iter()
                .map(|(k, v)| (normalize(k), normalize(v)))
                .collect();
            pairs.sort_by_key(|(k, _)| format!("{k:?}"));
            Value::Map(pairs)
        }
        Value::Interface(Some(iv)) => {
            let iv = *iv;
            Value::Interface(Some(Box::new(InterfaceValue {
                name: iv.name,
                ty: unnamed(iv.ty),
                value: normalize(iv.value),
            })))
        }
        other => other,
    }
}

/// Whether gob sends a struct field holding `value`.
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
        _ => true,
    }
}

fn unnamed(ty: Type) -> Type {
    match ty {
        Type::Slice(elem) => Type::slice(unnamed(*elem)),
        Type::Array(len, elem) => Type::array(len, unnamed(*elem)),
        Type::Map(key, elem) => Type::map(unnamed(*key), unnamed(*elem)),
        Type::Struct(st) => Type::Struct(StructType::new(
            "",
            st.fields
                .into_iter()
                .map(|(n, t)| (n, unnamed(t)))
                .collect(),
        )),
        other => other,
    }
}

fn iface<T: Gob>(value: &T) -> GoInterface {
    GoInterface::of(value).expect("a registered type")
}

fn kv_put_args() -> HashMap<String, GoInterface> {
    HashMap::from([
        ("key".to_string(), InterfaceValue::string("k").into()),
        ("value".to_string(), InterfaceValue::bytes(*b"v").into()),
    ])
}

fn outer() -> Outer {
    Outer {
        name: "outer".into(),
        items: vec![
            Inner {
                id: 1,
                note: "a".into(),
                data: vec![1, 2],
            },
            Inner {
                id: -2,
                ..Inner::default()
            },
        ],
        tags: Some(BTreeMap::from([("x".to_string(), 1)])),
        matrix: vec![vec![1, 2], vec![], vec![3]],
        opt: Some(Inner {
            id: 3,
            ..Inner::default()
        }),
        arr: [1, 0, -1],
        big: (0..200).map(|i| i * i).collect(),
        words: vec!["α".into(), "βγ".into()],
    }
}

/// Each case: its name, whether Go's bytes are deterministic, its values.
fn cases() -> Vec<(&'static str, bool, Vec<Slot>)> {
    let request = |method: &str, seq| RequestHeader {
        service_method: method.into(),
        seq,
    };
    let response = |method: &str, seq, error: &str| ResponseHeader {
        service_method: method.into(),
        seq,
        error: error.into(),
    };
    let floats_ty = Type::structure(
        "main.Floats",
        vec![
            ("F32", Type::Float),
            ("F64", Type::Float),
            ("C64", Type::Complex),
            ("C", Type::Complex),
        ],
    );
    let e = std::f64::consts::E;
    vec![
        (
            "rpc-requests",
            true,
            vec![
                typed(request("Control.Ping", 0)),
                typed(true),
                typed(request("Dispenser.Dispense", 1)),
                typed("test".to_string()),
                typed(request("Control.Quit", 2)),
                typed(true),
            ],
        ),
        (
            "rpc-responses",
            true,
            vec![
                typed(response("Control.Ping", 0, "")),
                typed(()),
                typed(response("Dispenser.Dispense", 1, "")),
                typed(1u32),
                typed(response(
                    "Dispenser.Dispense",
                    2,
                    "unknown plugin type: nope",
                )),
                typed(()),
                typed(response("Control.Quit", 3, "")),
                typed(()),
            ],
        ),
        ("kv-put-args", false, vec![typed(kv_put_args())]),
        (
            "kv-replies",
            true,
            vec![
                typed(GoInterface::nil()),
                typed("k".to_string()),
                typed(b"v".to_vec()),
            ],
        ),
        (
            "greeter",
            true,
            vec![typed(GoInterface::nil()), typed("Hello!".to_string())],
        ),
        (
            "nested",
            true,
            vec![typed(outer()), typed(Outer::default())],
        ),
        (
            "ints",
            true,
            vec![
                typed(Ints {
                    i8_: i8::MIN,
                    i16_: i16::MIN,
                    i32_: i32::MIN,
                    i64_: i64::MIN,
                    int: -1,
                    u8_: u8::MAX,
                    u16_: u16::MAX,
                    u32_: u32::MAX,
                    u64_: u64::MAX,
                    uint: 1,
                    uptr: 0,
                }),
                typed(Ints {
                    i8_: i8::MAX,
                    i16_: i16::MAX,
                    i32_: i32::MAX,
                    i64_: i64::MAX,
                    int: isize::MAX,
                    u8_: 1,
                    u16_: 128,
                    u32_: 1 << 16,
                    u64_: 1 << 32,
                    uint: usize::MAX,
                    uptr: u64::MAX,
                }),
                typed(i64::MIN),
                typed(u64::MAX),
                typed(-128i8),
                typed(255u8),
                typed(0isize),
                typed(0usize),
                typed(-1i32),
            ],
        ),
        (
            "floats",
            true,
            vec![
                typed(vec![
                    0.0,
                    1.5,
                    -2.25,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    f64::MAX,
                    f64::from_bits(1),
                    -0.0,
                    1e-300,
                ]),
                typed(3.25f32),
                typed(17.0f64),
                typed(0.0f64),
                raw(Type::Complex, Value::Complex(1.0, 2.0)),
                raw(Type::Complex, Value::Complex(0.0, -1.5)),
                raw(
                    floats_ty.clone(),
                    Value::Struct(vec![
                        ("F32".into(), Value::Float(-0.5)),
                        ("F64".into(), Value::Float(std::f64::consts::PI)),
                        ("C64".into(), Value::Complex(1.0, -1.0)),
                        ("C".into(), Value::Complex(e, -e)),
                    ]),
                ),
                raw(floats_ty, Value::Struct(vec![])),
            ],
        ),
        (
            "negative",
            true,
            vec![
                typed(vec![-1i64, 0, 1, -128, -129, 127, 128, -1 << 40, 1 << 40]),
                typed(-7isize),
                typed(Neg { a: -1, b: i32::MIN }),
            ],
        ),
        (
            "empty",
            true,
            vec![
                typed(Empty::default()),
                typed(Vec::<String>::new()),
                typed(HashMap::<String, i64>::new()),
                typed(Vec::<u8>::new()),
                typed(String::new()),
                typed(()),
                typed(Vec::<Inner>::new()),
            ],
        ),
        (
            "interfaces",
            true,
            vec![
                typed(vec![
                    InterfaceValue::string("s").into(),
                    InterfaceValue::int(1).into(),
                    iface(&-2i64),
                    iface(&3u8),
                    InterfaceValue::float64(1.5).into(),
                    InterfaceValue::bool(true).into(),
                    InterfaceValue::bytes(*b"b").into(),
                    iface(&vec!["x".to_string()]),
                    GoInterface::nil(),
                    iface(&Inner {
                        id: 7,
                        ..Inner::default()
                    }),
                ]),
                typed(Holder {
                    any: iface(&Wrapper {
                        label: "w".into(),
                        inner: iface(&Inner {
                            id: 1,
                            note: "n".into(),
                            data: vec![],
                        }),
                    }),
                    more: vec![
                        iface(&5i32),
                        InterfaceValue::named(
                            "map[string]interface {}",
                            &HashMap::from([("one".to_string(), iface(&1u16))]),
                        )
                        .into(),
                        iface(&Wrapper {
                            label: String::new(),
                            inner: InterfaceValue::string("deep").into(),
                        }),
                    ],
                }),
                typed(Holder::default()),
                typed(iface(&Inner {
                    id: 9,
                    ..Inner::default()
                })),
            ],
        ),
        (
            "omitted",
            true,
            vec![
                typed(Sparse {
                    g: 7,
                    ..Sparse::default()
                }),
                typed(Sparse::default()),
                // Go's pointer to a zero int is not sent either.
                typed(Sparse {
                    f: Some(0),
                    ..Sparse::default()
                }),
            ],
        ),
        (
            "strings",
            true,
            vec![
                typed(Texts {
                    long: "x".repeat(300),
                    all: ["", "a", "héllo", "日本語", "\0"]
                        .map(String::from)
                        .to_vec(),
                }),
                typed("é".repeat(100)),
            ],
        ),
        (
            "maps-multi",
            false,
            vec![
                typed(BTreeMap::from([
                    ("a".to_string(), 1i64),
                    ("b".to_string(), 2),
                    ("c".to_string(), 3),
                ])),
                typed(BTreeMap::from([
                    (1i64, "x".to_string()),
                    (-2, "y".to_string()),
                ])),
                typed(kv_put_args()),
            ],
        ),
    ]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_stream(bytes: &[u8]) -> Vec<(Type, Value)> {
    let mut decoder = Decoder::default();
    let mut pos = 0;
    let mut values = Vec::new();
    while pos < bytes.len() {
        let (ty, value, n) = decoder
            .decode(&bytes[pos..])
            .unwrap_or_else(|e| panic!("decoding at byte {pos}: {e}"))
            .unwrap_or_else(|| panic!("incomplete value at byte {pos}"));
        values.push((ty, value));
        pos += n;
    }
    values
}

#[test]
fn gob_peer_knows_the_same_cases() {
    let listed = go(&["list"], &[]);
    let mut listed: Vec<String> = String::from_utf8_lossy(&listed)
        .lines()
        .map(str::to_owned)
        .collect();
    listed.sort();
    let mut ours: Vec<String> = cases().iter().map(|(name, ..)| name.to_string()).collect();
    ours.sort();
    assert_eq!(listed, ours);
}

#[test]
fn every_case_both_ways() {
    let first = first_id();
    for (name, deterministic, slots) in cases() {
        let ours = {
            let mut encoder = Encoder::with_first_id(first);
            let mut out = Vec::new();
            for slot in &slots {
                encoder
                    .encode(&slot.ty, &slot.value, &mut out)
                    .unwrap_or_else(|e| panic!("{name}: encoding: {e}"));
            }
            out
        };
        let theirs = go(&["emit", name], &[]);
        if deterministic {
            assert_eq!(
                hex(&ours),
                hex(&theirs),
                "{name}: Rust's bytes (left) differ from Go's"
            );
        }

        // Go's stream decodes into the case's values.
        let decoded = decode_stream(&theirs);
        assert_eq!(decoded.len(), slots.len(), "{name}: number of values");
        for (i, ((ty, value), slot)) in decoded.into_iter().zip(&slots).enumerate() {
            assert_eq!(
                unnamed(ty),
                unnamed(slot.ty.clone()),
                "{name}: type of value {i}"
            );
            if let Err(e) = (slot.check)(value) {
                panic!("{name}: value {i} from Go: {e}");
            }
        }
        // So does ours (for the non-deterministic cases, this is the check).
        for (i, ((_, value), slot)) in decode_stream(&ours).into_iter().zip(&slots).enumerate() {
            if let Err(e) = (slot.check)(value) {
                panic!("{name}: value {i} from Rust: {e}");
            }
        }

        // Go decodes ours into what it decodes from its own.
        let mut peer = Peer::spawn(&["check", name]);
        peer.write(&ours);
        let status = peer.wait();
        assert!(
            status.success(),
            "{name}: Go's check of Rust's bytes: {}",
            peer.stderr()
        );
    }
}

// ---------------------------------------------------------------------------
// net/rpc.

/// A check of a reply, or the error text expected instead.
type Expected = Result<Box<dyn Fn(Type, Value)>, &'static str>;

/// One call: method, arguments, and the expected reply or error.
struct Call {
    method: &'static str,
    args: (Type, Value),
    reply: Expected,
}

fn args<T: Gob>(value: T) -> (Type, Value) {
    (T::gob_type(), value.to_gob())
}

fn reply<T: Gob + PartialEq + std::fmt::Debug + 'static>(want: T) -> Expected {
    Ok(Box::new(move |ty, value| {
        assert_eq!(unnamed(ty), unnamed(T::gob_type()));
        assert_eq!(T::from_gob(value).expect("the reply converts"), want);
    }))
}

fn echo() -> Outer {
    Outer {
        name: "e".into(),
        items: vec![Inner {
            id: 4,
            data: b"d".to_vec(),
            ..Inner::default()
        }],
        tags: Some(BTreeMap::from([("t".to_string(), -1)])),
        arr: [0, 0, 9],
        ..Outer::default()
    }
}

/// gob-peer's `rpcCalls`: the first (Put) is made alone, the others
/// pipelined after its reply.
fn calls() -> Vec<Call> {
    vec![
        Call {
            method: "Plugin.Put",
            args: args(kv_put_args()),
            reply: reply(GoInterface::nil()),
        },
        Call {
            method: "Control.Ping",
            args: args(true),
            reply: reply(()),
        },
        Call {
            method: "Dispenser.Dispense",
            args: args("kv".to_string()),
            reply: reply(1u32),
        },
        Call {
            method: "Dispenser.Dispense",
            args: args("nope".to_string()),
            reply: Err("unknown plugin type: nope"),
        },
        Call {
            method: "Arith.Multiply",
            args: args(Args { a: 6, b: -7 }),
            reply: reply(-42i64),
        },
        Call {
            method: "Arith.Divide",
            args: args(Args { a: 7, b: 2 }),
            reply: reply(Quotient { quo: 3, rem: 1 }),
        },
        Call {
            method: "Arith.Divide",
            args: args(Args { a: 1, b: 0 }),
            reply: Err("divide by zero"),
        },
        Call {
            method: "Plugin.Get",
            args: args("k".to_string()),
            reply: reply(b"v".to_vec()),
        },
        Call {
            method: "Plugin.Get",
            args: args("missing".to_string()),
            reply: Err("no such key: missing"),
        },
        Call {
            method: "Plugin.Greet",
            args: args(GoInterface::nil()),
            reply: reply("Hello!".to_string()),
        },
        Call {
            method: "Plugin.Echo",
            args: args(echo()),
            reply: reply(echo()),
        },
        Call {
            method: "Nope.Method",
            args: args(true),
            reply: Err("rpc: can't find service Nope.Method"),
        },
        Call {
            method: "Control.Ping",
            args: args(true),
            reply: reply(()),
        },
    ]
}

#[test]
fn rust_client_go_server() {
    let mut server = Peer::spawn(&["rpc-server"]);
    let mut codec = ClientCodec::new(Limits::default());
    let calls = calls();
    let deadline = Instant::now() + LIMIT;
    let mut buf = Vec::new();
    let mut answered = vec![false; calls.len()];
    // The first call alone, then the others pipelined: net/rpc's server
    // answers each call from its own goroutine, so replies come in any
    // order.
    let mut wire = Vec::new();
    for (seq, call) in calls.iter().enumerate() {
        let header = RequestHeader {
            service_method: call.method.into(),
            seq: seq as u64,
        };
        codec
            .encode_request(&header, &call.args.0, &call.args.1, &mut wire)
            .unwrap();
        if seq == 0 {
            server.write(&wire);
            wire.clear();
            receive(
                &mut server,
                &mut codec,
                &calls,
                &mut buf,
                &mut answered,
                deadline,
                1,
            );
        }
    }
    server.write(&wire);
    receive(
        &mut server,
        &mut codec,
        &calls,
        &mut buf,
        &mut answered,
        deadline,
        calls.len(),
    );
    assert!(buf.is_empty());
    let status = server.wait();
    assert!(
        status.success(),
        "rpc-server: {status}: {}",
        server.stderr()
    );
}

/// Reads replies until `until` calls have been answered, checking each.
fn receive(
    server: &mut Peer,
    codec: &mut ClientCodec,
    calls: &[Call],
    buf: &mut Vec<u8>,
    answered: &mut [bool],
    deadline: Instant,
    until: usize,
) {
    while answered.iter().filter(|a| **a).count() < until {
        let Some(chunk) = server.recv(deadline) else {
            panic!("the Go server hung up; stderr: {}", server.stderr())
        };
        buf.extend(chunk);
        while let Some((header, ty, value, n)) = codec.decode_response(buf).unwrap() {
            buf.drain(..n);
            let seq = header.seq as usize;
            let call = &calls[seq];
            assert_eq!(header.service_method, call.method);
            assert!(!answered[seq], "two replies to {seq}");
            answered[seq] = true;
            match &call.reply {
                Ok(check) => {
                    assert_eq!(header.error, "", "{}", call.method);
                    check(ty, value);
                }
                Err(error) => {
                    assert_eq!(header.error, *error, "{}", call.method);
                    // net/rpc's invalidRequest.
                    assert_eq!((ty, value), (<()>::gob_type(), ().to_gob()));
                }
            }
        }
    }
}

/// The Rust side of gob-peer's services.
fn serve(
    method: &str,
    body: Value,
    store: &mut HashMap<String, Vec<u8>>,
) -> Result<(Type, Value), String> {
    let bad = |e: goplug::netrpc::gob::GobError| e.to_string();
    match method {
        "Control.Ping" => Ok(args(())),
        "Dispenser.Dispense" => match String::from_gob(body).map_err(bad)?.as_str() {
            "kv" => Ok(args(1u32)),
            name => Err(format!("unknown plugin type: {name}")),
        },
        "Arith.Multiply" => {
            let Args { a, b } = Args::from_gob(body).map_err(bad)?;
            Ok(args(a * b))
        }
        "Arith.Divide" => match Args::from_gob(body).map_err(bad)? {
            Args { b: 0, .. } => Err("divide by zero".into()),
            Args { a, b } => Ok(args(Quotient {
                quo: a / b,
                rem: a % b,
            })),
        },
        "Plugin.Put" => {
            let mut args_map = HashMap::<String, GoInterface>::from_gob(body).map_err(bad)?;
            let field =
                |m: &mut HashMap<String, GoInterface>, k: &str| m.remove(k).unwrap_or_default();
            let key = field(&mut args_map, "key").get::<String>().map_err(bad)?;
            let value = field(&mut args_map, "value")
                .get::<Vec<u8>>()
                .map_err(bad)?;
            let (Some(key), Some(value)) = (key, value) else {
                return Err("bad Put args".into());
            };
            store.insert(key, value);
            Ok(args(GoInterface::nil()))
        }
        "Plugin.Get" => {
            let key = String::from_gob(body).map_err(bad)?;
            match store.get(&key) {
                Some(value) => Ok(args(value.clone())),
                None => Err(format!("no such key: {key}")),
            }
        }
        "Plugin.Greet" => {
            GoInterface::from_gob(body).map_err(bad)?;
            Ok(args("Hello!".to_string()))
        }
        "Plugin.Echo" => Ok(args(Outer::from_gob(body).map_err(bad)?)),
        _ => Err(format!("rpc: can't find service {method}")),
    }
}

#[test]
fn go_client_rust_server() {
    let mut client = Peer::spawn(&["rpc-client"]);
    let mut codec = ServerCodec::new(Limits::default());
    let mut store = HashMap::new();
    let deadline = Instant::now() + LIMIT;
    let mut buf = Vec::new();
    let mut served = 0;
    // Until the client hangs up (it closes its end after the last reply).
    while let Some(chunk) = client.recv(deadline) {
        buf.extend(chunk);
        let mut out = Vec::new();
        while let Some((header, _ty, body, n)) = codec.decode_request(&buf).unwrap() {
            buf.drain(..n);
            served += 1;
            let mut response = ResponseHeader {
                service_method: header.service_method.clone(),
                seq: header.seq,
                error: String::new(),
            };
            match serve(&header.service_method, body, &mut store) {
                Ok((ty, value)) => codec
                    .encode_response(&response, &ty, &value, &mut out)
                    .unwrap(),
                Err(error) => {
                    response.error = error;
                    codec.encode_error(&response, &mut out).unwrap();
                }
            }
        }
        if !out.is_empty() {
            client.write(&out);
        }
    }
    let status = client.wait();
    assert!(
        status.success(),
        "rpc-client against Rust: {status}:\n{}",
        client.stderr()
    );
    assert_eq!(served, calls().len());
    assert!(buf.is_empty());
}

/// The Go peer's own expectations hold against Go's server (so a failure of
/// the test above is Rust's).
#[test]
fn go_client_go_server() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let socket = dir.path().join("rpc.sock");
    let socket = socket.to_str().expect("a UTF-8 path");
    let server = Peer::spawn(&["rpc-server", "-listen", socket]);
    let deadline = Instant::now() + LIMIT;
    while !std::path::Path::new(socket).exists() {
        assert!(
            Instant::now() < deadline,
            "rpc-server did not listen: {}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut client = Peer::spawn(&["rpc-client", "-dial", socket]);
    let status = client.wait();
    assert!(
        status.success(),
        "rpc-client against Go: {status}:\n{}",
        client.stderr()
    );
    drop(server);
}

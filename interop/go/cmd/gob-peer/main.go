// Command gob-peer is Go's encoding/gob and net/rpc for goplug's gob
// interop tests (goplug-test/tests/interop/gob.rs). Standard library only.
//
//	gob-peer list                    the case names, one a line
//	gob-peer first-id                the type id this Go gives the first user type
//	gob-peer emit CASE               CASE's values as one gob stream (one Encoder) on stdout
//	gob-peer check CASE              reads a gob stream from stdin, decodes CASE's values into
//	                                 fresh values of their Go types and compares each with what
//	                                 Go decodes from its own encoding; exit 0 when all match,
//	                                 1 with a diff on stderr
//	gob-peer rpc-server [-listen P]  a net/rpc server (services below) on stdin/stdout, or on
//	                                 every connection to Unix socket P; ends at EOF
//	gob-peer rpc-client [-dial P]    runs the calls in rpcCalls (the first alone, then the
//	                                 others pipelined) against a net/rpc server on
//	                                 stdin/stdout (or Unix socket P) and checks the replies;
//	                                 exit 0 when all match, 1 otherwise (details on stderr)
//
// The services (go-plugin shaped): Control.Ping(bool) struct{}, Dispenser.Dispense(string)
// uint32 ("kv" is 1, else "unknown plugin type: NAME"), Plugin.Put(map[string]interface{}
// {"key": string, "value": []byte}) interface{} (nil), Plugin.Get(string) []byte ("no such
// key: KEY" when missing), Plugin.Greet(interface{}) string ("Hello!"), Plugin.Echo(Outer)
// Outer, Arith.Multiply(Args) int, Arith.Divide(Args) Quotient ("divide by zero").
package main

import (
	"bytes"
	"encoding/gob"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/rpc"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"
)

type Inner struct {
	ID   int
	Note string
	Data []byte
}

type Outer struct {
	Name   string
	Items  []Inner
	Tags   map[string]int
	Matrix [][]int
	Opt    *Inner
	Arr    [3]int
	Big    []uint
	Words  []string
}

type Ints struct {
	I8   int8
	I16  int16
	I32  int32
	I64  int64
	I    int
	U8   uint8
	U16  uint16
	U32  uint32
	U64  uint64
	U    uint
	Uptr uintptr
}

type Floats struct {
	F32 float32
	F64 float64
	C64 complex64
	C   complex128
}

type Neg struct {
	A int
	B int32
}

type Empty struct {
	S   []string
	E   []string
	M   map[string]int
	EM  map[string]int
	B   []byte
	Str string
	P   *Inner
	I   interface{}
}

type Sparse struct {
	A int
	B string
	C bool
	D float64
	E []int
	F *int
	G int
}

type Holder struct {
	Any  interface{}
	More []interface{}
}

type Wrapper struct {
	Label string
	Inner interface{}
}

type Texts struct {
	Long string
	All  []string
}

func init() {
	gob.Register(Inner{})
	gob.Register(Wrapper{})
	gob.Register(map[string]interface{}{})
}

func ptr[T any](v T) *T { return &v }

// cases are the values of each case, in the order they are encoded. A
// pointer to an interface encodes the interface value (Go's `new(interface{})`).
var cases = map[string]func() []any{
	// net/rpc as go-plugin's host writes it: Ping, Dispense("test"), Quit.
	"rpc-requests": func() []any {
		return []any{
			rpc.Request{ServiceMethod: "Control.Ping", Seq: 0}, true,
			rpc.Request{ServiceMethod: "Dispenser.Dispense", Seq: 1}, "test",
			rpc.Request{ServiceMethod: "Control.Quit", Seq: 2}, true,
		}
	},
	// ... and the plugin's replies, including an error (body struct{}).
	"rpc-responses": func() []any {
		return []any{
			rpc.Response{ServiceMethod: "Control.Ping", Seq: 0}, struct{}{},
			rpc.Response{ServiceMethod: "Dispenser.Dispense", Seq: 1}, uint32(1),
			rpc.Response{ServiceMethod: "Dispenser.Dispense", Seq: 2, Error: "unknown plugin type: nope"}, struct{}{},
			rpc.Response{ServiceMethod: "Control.Quit", Seq: 3}, struct{}{},
		}
	},
	// go-plugin's KV example over net/rpc: Put's args (two keys: map order
	// varies), Put's reply (a nil interface{}), Get's args and reply.
	"kv-put-args": func() []any {
		return []any{map[string]interface{}{"key": "k", "value": []byte("v")}}
	},
	"kv-replies": func() []any {
		return []any{new(interface{}), "k", []byte("v")}
	},
	// go-plugin's greeter example: new(interface{}) args, a string reply.
	"greeter": func() []any {
		return []any{new(interface{}), "Hello!"}
	},
	"nested": func() []any {
		big := make([]uint, 200)
		for i := range big {
			big[i] = uint(i * i)
		}
		return []any{
			Outer{
				Name:   "outer",
				Items:  []Inner{{ID: 1, Note: "a", Data: []byte{1, 2}}, {ID: -2}},
				Tags:   map[string]int{"x": 1},
				Matrix: [][]int{{1, 2}, {}, {3}},
				Opt:    &Inner{ID: 3},
				Arr:    [3]int{1, 0, -1},
				Big:    big,
				Words:  []string{"α", "βγ"},
			},
			Outer{},
		}
	},
	"ints": func() []any {
		return []any{
			Ints{math.MinInt8, math.MinInt16, math.MinInt32, math.MinInt64, -1, math.MaxUint8, math.MaxUint16, math.MaxUint32, math.MaxUint64, 1, 0},
			Ints{math.MaxInt8, math.MaxInt16, math.MaxInt32, math.MaxInt64, math.MaxInt, 1, 128, 1 << 16, 1 << 32, math.MaxUint, math.MaxUint64},
			int64(math.MinInt64), uint64(math.MaxUint64), int8(-128), uint8(255), int(0), uint(0), int32(-1),
		}
	},
	"floats": func() []any {
		return []any{
			[]float64{0, 1.5, -2.25, math.Inf(1), math.Inf(-1), math.MaxFloat64, math.SmallestNonzeroFloat64, math.Copysign(0, -1), 1e-300},
			float32(3.25), float64(17), float64(0), complex128(1 + 2i), complex64(-1.5i),
			Floats{F32: -0.5, F64: math.Pi, C64: 1 - 1i, C: complex(math.E, -math.E)},
			Floats{},
		}
	},
	"negative": func() []any {
		return []any{
			[]int{-1, 0, 1, -128, -129, 127, 128, -1 << 40, 1 << 40},
			int(-7),
			Neg{A: -1, B: math.MinInt32},
		}
	},
	"empty": func() []any {
		return []any{
			Empty{E: []string{}, EM: map[string]int{}, B: []byte{}},
			[]string{}, map[string]int{}, []byte{}, "", struct{}{}, []Inner{},
		}
	},
	"interfaces": func() []any {
		return []any{
			[]interface{}{"s", int(1), int64(-2), uint8(3), float64(1.5), true, []byte("b"), []string{"x"}, nil, Inner{ID: 7}},
			Holder{
				Any: Wrapper{Label: "w", Inner: Inner{ID: 1, Note: "n"}},
				More: []interface{}{
					int32(5),
					map[string]interface{}{"one": uint16(1)},
					Wrapper{Inner: "deep"},
				},
			},
			Holder{},
			ptr[interface{}](Inner{ID: 9}),
		}
	},
	"omitted": func() []any {
		return []any{Sparse{G: 7}, Sparse{}, Sparse{F: ptr(0)}}
	},
	"strings": func() []any {
		return []any{
			Texts{Long: strings.Repeat("x", 300), All: []string{"", "a", "héllo", "日本語", "\x00"}},
			strings.Repeat("é", 100),
		}
	},
	// Maps with several keys: Go's order varies.
	"maps-multi": func() []any {
		return []any{
			map[string]int{"a": 1, "b": 2, "c": 3},
			map[int]string{1: "x", -2: "y"},
			map[string]interface{}{"key": "k", "value": []byte("v")},
		}
	},
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: gob-peer list|first-id|emit CASE|check CASE|rpc-server|rpc-client")
	}
	switch mode := os.Args[1]; mode {
	case "list":
		var names []string
		for name := range cases {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			fmt.Println(name)
		}
	case "first-id":
		firstID()
	case "emit":
		values := caseValues()
		enc := gob.NewEncoder(os.Stdout)
		for i, v := range values {
			if err := enc.Encode(v); err != nil {
				fail("encoding value %d: %v", i, err)
			}
		}
	case "check":
		check(caseValues())
	case "rpc-server":
		flags := flag.NewFlagSet(mode, flag.ExitOnError)
		listen := flags.String("listen", "", "Unix socket to listen on")
		_ = flags.Parse(os.Args[2:])
		rpcServer(*listen)
	case "rpc-client":
		flags := flag.NewFlagSet(mode, flag.ExitOnError)
		dial := flags.String("dial", "", "Unix socket to dial")
		_ = flags.Parse(os.Args[2:])
		rpcClient(*dial)
	default:
		fail("unknown mode %q", mode)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "gob-peer: "+format+"\n", args...)
	os.Exit(1)
}

func caseValues() []any {
	if len(os.Args) < 3 {
		fail("which case?")
	}
	values, ok := cases[os.Args[2]]
	if !ok {
		fail("unknown case %q", os.Args[2])
	}
	return values()
}

// firstID prints the id of the first type this process defines.
func firstID() {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(struct{ X int }{1}); err != nil {
		fail("%v", err)
	}
	// Length, then the negated id of the definition.
	dec := buf.Bytes()[1:]
	var u uint64
	if dec[0] < 0x80 {
		u = uint64(dec[0])
	} else {
		for _, b := range dec[1 : 1+int(-int8(dec[0]))] {
			u = u<<8 | uint64(b)
		}
	}
	id := int64(u >> 1)
	if u&1 != 0 {
		id = ^id
	}
	fmt.Println(-id)
}

// destination returns a fresh pointer to decode a value encoded from v into.
func destination(v any) reflect.Value {
	t := reflect.TypeOf(v)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return reflect.New(t)
}

func check(values []any) {
	// What Go decodes from its own encoding of the case.
	var own bytes.Buffer
	enc := gob.NewEncoder(&own)
	for i, v := range values {
		if err := enc.Encode(v); err != nil {
			fail("encoding value %d: %v", i, err)
		}
	}
	ownDec := gob.NewDecoder(&own)
	theirs := gob.NewDecoder(os.Stdin)
	ok := true
	for i, v := range values {
		want := destination(v)
		if err := ownDec.Decode(want.Interface()); err != nil {
			fail("decoding our own value %d: %v", i, err)
		}
		got := destination(v)
		if err := theirs.Decode(got.Interface()); err != nil {
			fail("decoding value %d (%T): %v", i, v, err)
		}
		if !equal(got.Elem(), want.Elem()) {
			ok = false
			fmt.Fprintf(os.Stderr, "value %d (%T) differs:\n   got %s\n  want %s\n", i, v, show(got.Elem()), show(want.Elem()))
		}
	}
	if n, _ := io.Copy(io.Discard, os.Stdin); n != 0 {
		ok = false
		fmt.Fprintf(os.Stderr, "%d bytes after the last value\n", n)
	}
	if !ok {
		os.Exit(1)
	}
}

// equal is reflect.DeepEqual, except that NaN equals NaN.
func equal(a, b reflect.Value) bool {
	if a.IsValid() != b.IsValid() {
		return false
	}
	if !a.IsValid() {
		return true
	}
	if a.Type() != b.Type() {
		return false
	}
	switch a.Kind() {
	case reflect.Float32, reflect.Float64:
		x, y := a.Float(), b.Float()
		return x == y && math.Signbit(x) == math.Signbit(y) || math.IsNaN(x) && math.IsNaN(y)
	case reflect.Complex64, reflect.Complex128:
		return a.Complex() == b.Complex()
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return equal(a.Elem(), b.Elem())
	case reflect.Slice:
		if a.IsNil() != b.IsNil() {
			return false
		}
		fallthrough
	case reflect.Array:
		if a.Len() != b.Len() {
			return false
		}
		for i := 0; i < a.Len(); i++ {
			if !equal(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Struct:
		for i := 0; i < a.NumField(); i++ {
			if !equal(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		for _, k := range a.MapKeys() {
			if !equal(a.MapIndex(k), b.MapIndex(k)) {
				return false
			}
		}
		return true
	default:
		return reflect.DeepEqual(a.Interface(), b.Interface())
	}
}

// show prints a value with pointers followed and nil told apart from empty.
func show(v reflect.Value) string {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return "nil"
		}
		return "&" + show(v.Elem())
	case reflect.Slice:
		if v.IsNil() {
			return "nil"
		}
		fallthrough
	case reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return fmt.Sprintf("%q", fmt.Sprint(v.Interface()))
		}
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = show(v.Index(i))
		}
		return "[" + strings.Join(parts, " ") + "]"
	case reflect.Struct:
		parts := make([]string, v.NumField())
		for i := range parts {
			parts[i] = v.Type().Field(i).Name + ":" + show(v.Field(i))
		}
		return v.Type().String() + "{" + strings.Join(parts, " ") + "}"
	case reflect.Map:
		if v.IsNil() {
			return "nil map"
		}
		var parts []string
		for _, k := range v.MapKeys() {
			parts = append(parts, show(k)+":"+show(v.MapIndex(k)))
		}
		sort.Strings(parts)
		return "map[" + strings.Join(parts, " ") + "]"
	default:
		return fmt.Sprintf("%#v", v.Interface())
	}
}

// The net/rpc services.

type Args struct{ A, B int }
type Quotient struct{ Quo, Rem int }
type Arith int

func (t *Arith) Multiply(args *Args, reply *int) error {
	*reply = args.A * args.B
	return nil
}

func (t *Arith) Divide(args *Args, quo *Quotient) error {
	if args.B == 0 {
		return errors.New("divide by zero")
	}
	quo.Quo = args.A / args.B
	quo.Rem = args.A % args.B
	return nil
}

type Control struct{}

func (c *Control) Ping(null bool, response *struct{}) error { return nil }

type Dispenser struct{}

func (d *Dispenser) Dispense(name string, id *uint32) error {
	if name != "kv" {
		return fmt.Errorf("unknown plugin type: %s", name)
	}
	*id = 1
	return nil
}

type Plugin struct {
	mu    sync.Mutex
	store map[string][]byte
}

func (p *Plugin) Put(args map[string]interface{}, resp *interface{}) error {
	key, ok1 := args["key"].(string)
	value, ok2 := args["value"].([]byte)
	if !ok1 || !ok2 {
		return fmt.Errorf("bad Put args: %#v", args)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.store[key] = value
	return nil
}

func (p *Plugin) Get(key string, resp *[]byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.store[key]
	if !ok {
		return fmt.Errorf("no such key: %s", key)
	}
	*resp = v
	return nil
}

func (p *Plugin) Greet(args interface{}, resp *string) error {
	*resp = "Hello!"
	return nil
}

func (p *Plugin) Echo(args Outer, resp *Outer) error {
	*resp = args
	return nil
}

type stdio struct{}

func (stdio) Read(p []byte) (int, error)  { return os.Stdin.Read(p) }
func (stdio) Write(p []byte) (int, error) { return os.Stdout.Write(p) }
func (stdio) Close() error                { return os.Stdout.Close() }

func rpcServer(listen string) {
	server := rpc.NewServer()
	for name, service := range map[string]any{
		"Arith":     new(Arith),
		"Control":   new(Control),
		"Dispenser": new(Dispenser),
		"Plugin":    &Plugin{store: map[string][]byte{}},
	} {
		if err := server.RegisterName(name, service); err != nil {
			fail("registering %s: %v", name, err)
		}
	}
	if listen == "" {
		server.ServeConn(stdio{})
		return
	}
	l, err := net.Listen("unix", listen)
	if err != nil {
		fail("%v", err)
	}
	for {
		conn, err := l.Accept()
		if err != nil {
			fail("%v", err)
		}
		go server.ServeConn(conn)
	}
}

// rpcCall is one call of rpcCalls: the arguments, a fresh reply, and the
// reply or error text expected.
type rpcCall struct {
	method string
	args   any
	reply  any
	want   any
	err    string
}

func rpcCalls() []rpcCall {
	echo := Outer{Name: "e", Items: []Inner{{ID: 4, Data: []byte("d")}}, Tags: map[string]int{"t": -1}, Arr: [3]int{0, 0, 9}}
	return []rpcCall{
		{method: "Plugin.Put", args: map[string]interface{}{"key": "k", "value": []byte("v")}, reply: new(interface{}), want: nil},
		{method: "Control.Ping", args: true, reply: new(struct{}), want: struct{}{}},
		{method: "Dispenser.Dispense", args: "kv", reply: new(uint32), want: uint32(1)},
		{method: "Dispenser.Dispense", args: "nope", reply: new(uint32), err: "unknown plugin type: nope"},
		{method: "Arith.Multiply", args: Args{A: 6, B: -7}, reply: new(int), want: -42},
		{method: "Arith.Divide", args: Args{A: 7, B: 2}, reply: new(Quotient), want: Quotient{Quo: 3, Rem: 1}},
		{method: "Arith.Divide", args: Args{A: 1}, reply: new(Quotient), err: "divide by zero"},
		{method: "Plugin.Get", args: "k", reply: new([]byte), want: []byte("v")},
		{method: "Plugin.Get", args: "missing", reply: new([]byte), err: "no such key: missing"},
		{method: "Plugin.Greet", args: new(interface{}), reply: new(string), want: "Hello!"},
		{method: "Plugin.Echo", args: echo, reply: new(Outer), want: echo},
		{method: "Nope.Method", args: true, reply: new(struct{}), err: "rpc: can't find service Nope.Method"},
		{method: "Control.Ping", args: true, reply: new(struct{}), want: struct{}{}},
	}
}

func rpcClient(dial string) {
	var conn io.ReadWriteCloser = stdio{}
	if dial != "" {
		c, err := net.Dial("unix", dial)
		if err != nil {
			fail("%v", err)
		}
		conn = c
	}
	client := rpc.NewClient(conn)
	calls := rpcCalls()
	// The first call (Put) alone, then all the others at once: the server
	// sees them pipelined (and a Go server runs them concurrently).
	pending := make([]*rpc.Call, len(calls))
	for i, c := range calls {
		pending[i] = client.Go(c.method, c.args, c.reply, make(chan *rpc.Call, 1))
		if i == 0 {
			pending[0] = <-pending[0].Done
		}
	}
	ok := true
	for i, c := range calls {
		done := pending[i]
		if i > 0 {
			done = <-done.Done
		}
		got := reflect.ValueOf(c.reply).Elem()
		switch {
		case c.err != "":
			if done.Error == nil || done.Error.Error() != c.err {
				ok = false
				fmt.Fprintf(os.Stderr, "%s: error %v, want %q\n", c.method, done.Error, c.err)
			}
		case done.Error != nil:
			ok = false
			fmt.Fprintf(os.Stderr, "%s: error %v\n", c.method, done.Error)
		case c.want == nil && got.Kind() == reflect.Interface:
			if !got.IsNil() {
				ok = false
				fmt.Fprintf(os.Stderr, "%s: got %s, want nil\n", c.method, show(got))
			}
		case !equal(got, reflect.ValueOf(c.want)):
			ok = false
			fmt.Fprintf(os.Stderr, "%s: got %s, want %s\n", c.method, show(got), show(reflect.ValueOf(c.want)))
		default:
			fmt.Fprintf(os.Stderr, "%s: ok\n", c.method)
		}
	}
	_ = client.Close()
	if !ok {
		os.Exit(1)
	}
}

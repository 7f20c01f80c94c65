// Command probe-host is a configurable go-plugin host for automated tests.
// It starts one plugin, optionally pings it and does a KV put/get (or a
// Greeter Greet, or a raw net/rpc call), kills it, and prints exactly one
// JSON object describing what happened on stdout.
// With -bench N it instead times N start-up/Kill iterations and prints one
// JSON object with the timings (-direct: the plugin run without a shell). See ../../README.md for the contract.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/examples/grpc/shared"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"goplug.test/interop/proto/logical"
)

// result is the JSON object printed on stdout.
type result struct {
	OK       bool     `json:"ok"`
	Stage    string   `json:"stage"`
	Error    string   `json:"error"`
	Protocol string   `json:"protocol"`
	Version  int      `json:"version"`
	Get      string   `json:"get"`
	Exited   bool     `json:"exited"`
	Graceful bool     `json:"graceful"`
	KillMS   int64    `json:"kill_ms"`
	KillHung bool     `json:"kill_hung"`
	Warnings []string `json:"warnings"`
	// TLSVersion is the TLS version of the host's gRPC connection ("1.2",
	// "1.3"), taken from the first unary call (Ping, Put, Get or the
	// controller's Shutdown during Kill) that got through; "" when the
	// connection is not TLS or no call got through.
	TLSVersion string `json:"tls_version"`
	// Log is every host log entry (all levels, same text as Warnings), in
	// order; only with -log-all (a pointer, so that it is absent otherwise
	// and [] when there was no entry).
	Log *[]string `json:"log,omitempty"`
	// SyncStdoutBytes / SyncStderrBytes: bytes written to the -sync-stdout /
	// -sync-stderr file; only with those flags.
	SyncStdoutBytes *int64 `json:"sync_stdout_bytes,omitempty"`
	SyncStderrBytes *int64 `json:"sync_stderr_bytes,omitempty"`
	// StdioEnded: whether go-plugin's GRPCStdio receive loop had ended
	// when probe-host closed the sync files (see -sync-stdout); only with
	// -sync-stdout or -sync-stderr.
	StdioEnded *bool `json:"stdio_ended,omitempty"`
	// Reattached: true, only with -reattach.
	Reattached *bool `json:"reattached,omitempty"`
	// PidAliveAfterKill: whether the -reattach Pid still exists (kill(pid, 0)
	// succeeds or fails with EPERM) 300 ms after client.Kill() returned;
	// only with -reattach and a Pid > 0.
	PidAliveAfterKill *bool `json:"pid_alive_after_kill,omitempty"`
	// Multiplexed: whether go-plugin set up its gRPC broker multiplexing
	// (its host log has "client muxer connected"); only with -multiplex.
	Multiplexed *bool `json:"multiplexed,omitempty"`
	// Greet: what Greet() returned ("" if it was not reached); only with
	// -greet.
	Greet *string `json:"greet,omitempty"`
	// Call: the -call reply, formatted with fmt's %v ("" if it was not
	// reached); only with -call.
	Call *string `json:"call,omitempty"`
	// PluginVersion / PluginVersionError: what logical.PluginVersion/Version
	// answered on go-plugin's connection (the error's text, "" when the
	// call succeeded); only with -plugin-version.
	PluginVersion      *string `json:"plugin_version,omitempty"`
	PluginVersionError *string `json:"plugin_version_error,omitempty"`
}

// reattachJSON is one provider's value in Terraform's TF_REATTACH_PROVIDERS
// (what kv-plugin-go-grpc prints with KV_PLUGIN_DEBUG=1).
type reattachJSON struct {
	Protocol        string
	ProtocolVersion int
	Pid             int
	Test            bool
	Addr            struct {
		Network string
		String  string
	}
}

// parseReattach turns the -reattach JSON into go-plugin's ReattachConfig,
// resolving Addr like Terraform does for TF_REATTACH_PROVIDERS ("unix" or
// "tcp", anything else is an error).
func parseReattach(s string) (*plugin.ReattachConfig, error) {
	var r reattachJSON
	dec := json.NewDecoder(strings.NewReader(s))
	if err := dec.Decode(&r); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after the JSON object")
	}
	var addr net.Addr
	var err error
	switch r.Addr.Network {
	case "unix":
		addr, err = net.ResolveUnixAddr("unix", r.Addr.String)
	case "tcp":
		addr, err = net.ResolveTCPAddr("tcp", r.Addr.String)
	default:
		err = fmt.Errorf("unknown Addr.Network %q (want unix or tcp)", r.Addr.Network)
	}
	if err != nil {
		return nil, err
	}
	return &plugin.ReattachConfig{
		Protocol:        plugin.Protocol(r.Protocol),
		ProtocolVersion: r.ProtocolVersion,
		Addr:            addr,
		Pid:             r.Pid,
		Test:            r.Test,
	}, nil
}

// pidAlive reports whether a process with this pid exists (a zombie counts
// as alive).
func pidAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}

// logSink collects the host logger's output. hclog writes each log entry
// (including multi-line values) with a single Write call.
type logSink struct {
	mu      sync.Mutex
	entries []string
	echo    io.Writer
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries = append(s.entries, strings.TrimRight(string(p), "\n"))
	if s.echo != nil {
		s.echo.Write(p)
	}
	return len(p), nil
}

// waitFor polls the entries until one contains any of subs or the timeout
// has passed, and reports whether one was found.
func (s *logSink) waitFor(timeout time.Duration, subs ...string) bool {
	deadline := time.Now().Add(timeout)
	for {
		for _, e := range s.snapshot() {
			for _, sub := range subs {
				if strings.Contains(e, sub) {
					return true
				}
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (s *logSink) snapshot() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.entries...)
}

// syncFile is the writer given to ClientConfig.SyncStdout/SyncStderr/Stderr:
// a file whose writes are serialized and counted. After close(), later
// writes are dropped (and not counted), so the file is final once closed.
type syncFile struct {
	mu     sync.Mutex
	f      *os.File
	n      int64
	closed bool
}

func createSyncFile(path string) (*syncFile, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &syncFile{f: f}, nil
}

func (s *syncFile) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return len(p), nil
	}
	n, err := s.f.Write(p)
	s.n += int64(n)
	return n, err
}

// count returns the bytes written so far.
func (s *syncFile) count() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// close waits for a write in progress, closes the file and returns the
// byte count.
func (s *syncFile) close() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.f.Close()
	}
	return s.n
}

// level returns the hclog level tag of a text log entry ("WARN", "ERROR",
// ...). With DisableTime the entry starts with "[LEVEL]".
func level(entry string) string {
	if !strings.HasPrefix(entry, "[") {
		return ""
	}
	end := strings.IndexByte(entry, ']')
	if end < 0 {
		return ""
	}
	return entry[1:end]
}

// kvPlugin is shared.KVGRPCPlugin (gRPC) that can also be dispensed over
// net/rpc (shared.KVPlugin), so -protocols netrpc against a net/rpc plugin
// reaches the KV calls instead of panicking on KVGRPCPlugin's nil
// embedded net/rpc Plugin. Over net/rpc the dispensed value is a
// netrpcKV: shared.KVPlugin's client (Plugin.Put / Plugin.Get, exactly as
// go-plugin's examples/grpc/shared/rpc.go) that also keeps the plugin's
// *rpc.Client for -call.
type kvPlugin struct {
	grpcPlugin shared.KVGRPCPlugin
	rpcPlugin  shared.KVPlugin
}

func (p *kvPlugin) Server(b *plugin.MuxBroker) (interface{}, error) { return p.rpcPlugin.Server(b) }
func (p *kvPlugin) Client(b *plugin.MuxBroker, c *rpc.Client) (interface{}, error) {
	raw, err := p.rpcPlugin.Client(b, c)
	if err != nil {
		return nil, err
	}
	return &netrpcKV{KV: raw.(shared.KV), client: c}, nil
}
func (p *kvPlugin) GRPCServer(b *plugin.GRPCBroker, s *grpc.Server) error {
	return p.grpcPlugin.GRPCServer(b, s)
}
func (p *kvPlugin) GRPCClient(ctx context.Context, b *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return p.grpcPlugin.GRPCClient(ctx, b, c)
}

// netrpcClient is implemented by every value dispensed over net/rpc: the
// *rpc.Client of the dispensed plugin (its own yamux stream), for -call.
type netrpcClient interface {
	rpcClient() *rpc.Client
}

// netrpcKV is the KV dispensed over net/rpc.
type netrpcKV struct {
	shared.KV
	client *rpc.Client
}

func (k *netrpcKV) rpcClient() *rpc.Client { return k.client }

// greeter is go-plugin's examples/basic Greeter, with the call error
// returned instead of panicking.
type greeter interface {
	Greet() (string, error)
}

// greeterPlugin is the host side of go-plugin's examples/basic
// GreeterPlugin (net/rpc only; dispensing it over gRPC fails with go-plugin's
// `plugin "greeter" doesn't support gRPC`).
type greeterPlugin struct{ timeout *time.Duration }

func (greeterPlugin) Server(*plugin.MuxBroker) (interface{}, error) {
	return nil, fmt.Errorf("probe-host does not serve greeter")
}

func (p greeterPlugin) Client(_ *plugin.MuxBroker, c *rpc.Client) (interface{}, error) {
	return &greeterRPC{client: c, timeout: *p.timeout}, nil
}

// greeterRPC makes the same call as go-plugin's examples/basic
// shared.GreeterRPC: Plugin.Greet, args new(interface{}), reply string
// (but returns the error instead of panicking, and gives up after timeout).
type greeterRPC struct {
	client  *rpc.Client
	timeout time.Duration
}

func (g *greeterRPC) Greet() (string, error) {
	var resp string
	err := callTimeout(g.client, "Plugin.Greet", new(interface{}), &resp, g.timeout)
	return resp, err
}

// callTimeout is client.Call that gives up after timeout (the call stays
// pending; Kill ends the connection later).
func callTimeout(c *rpc.Client, method string, args, reply interface{}, timeout time.Duration) error {
	call := c.Go(method, args, reply, make(chan *rpc.Call, 1))
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-call.Done:
		return call.Error
	case <-t.C:
		return fmt.Errorf("net/rpc call %s: no reply within %v", method, timeout)
	}
}

func (g *greeterRPC) rpcClient() *rpc.Client { return g.client }

// callTimeoutFlag is -call-timeout (read by greeterPlugin.Client).
var callTimeoutFlag = new(time.Duration)

// pluginSet is what probe-host can dispense: "kv" (gRPC or net/rpc) and
// "greeter" (net/rpc).
func pluginSet() plugin.PluginSet {
	return plugin.PluginSet{"kv": &kvPlugin{}, "greeter": greeterPlugin{timeout: callTimeoutFlag}}
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func usageError(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "probe-host: "+format+"\n", args...)
	flag.Usage()
	os.Exit(2)
}

// tlsVersions maps -tls-max values to crypto/tls versions.
var tlsVersions = map[string]uint16{"1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13}

// versionName is the inverse of tlsVersions (plus older versions).
func versionName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "1.0"
	case tls.VersionTLS11:
		return "1.1"
	case tls.VersionTLS12:
		return "1.2"
	case tls.VersionTLS13:
		return "1.3"
	}
	return fmt.Sprintf("0x%04x", v)
}

// manualTLSConfig builds go-plugin's ClientConfig.TLSConfig from the -tls-*
// flags.
func manualTLSConfig(caFile, certFile, keyFile, serverName string, max uint16) (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		MaxVersion: max,
		ServerName: serverName,
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no PEM certificate in %s", caFile)
		}
		cfg.RootCAs = pool
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// maxVersionCreds is the gRPC transport credentials used for -automtls with
// -tls-max. go-plugin builds its AutoMTLS tls.Config inside Start() (and
// stores it in the ClientConfig) with no hook to change it, so this wrapper,
// passed last in GRPCDialOptions, replaces go-plugin's credentials: at each
// handshake it takes the config go-plugin stored, sets MaxVersion and hands
// over to credentials.NewTLS, exactly what go-plugin's dialGRPCConn uses.
type maxVersionCreds struct {
	config *plugin.ClientConfig
	max    uint16
}

func (m *maxVersionCreds) inner() credentials.TransportCredentials {
	cfg := &tls.Config{}
	if m.config.TLSConfig != nil {
		cfg = m.config.TLSConfig.Clone()
	}
	cfg.MaxVersion = m.max
	return credentials.NewTLS(cfg)
}

func (m *maxVersionCreds) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return m.inner().ClientHandshake(ctx, authority, conn)
}

func (m *maxVersionCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return m.inner().ServerHandshake(conn)
}

func (m *maxVersionCreds) Info() credentials.ProtocolInfo {
	// Carries the config's ServerName: newer grpc-go (1.7x+) takes the
	// authority from it, else it verifies the cert against "unused".
	return m.inner().Info()
}

func (m *maxVersionCreds) Clone() credentials.TransportCredentials {
	c := *m
	return &c
}

func (m *maxVersionCreds) OverrideServerName(string) error { return nil }

// tlsObserver records the TLS version of the host's gRPC connection. Its
// intercept method is a unary client interceptor that only adds a grpc.Peer
// call option, which changes nothing on the wire.
type tlsObserver struct {
	mu      sync.Mutex
	version string
}

func (o *tlsObserver) intercept(ctx context.Context, method string, req, reply interface{},
	cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	var p peer.Peer
	err := invoker(ctx, method, req, reply, cc, append(opts, grpc.Peer(&p))...)
	if info, ok := p.AuthInfo.(credentials.TLSInfo); ok {
		o.mu.Lock()
		if o.version == "" {
			o.version = versionName(info.State.Version)
		}
		o.mu.Unlock()
	}
	return err
}

func (o *tlsObserver) get() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.version
}

// newClientFunc builds a fresh plugin.Client (with a fresh "sh -c CMD"
// exec.Cmd) from the flags. killGroup SIGKILLs the plugin's process group.
// tweak, if not nil, may change the ClientConfig before NewClient.
type newClientFunc func(logger hclog.Logger, tweak func(*plugin.ClientConfig)) (client *plugin.Client, killGroup func(), obs *tlsObserver)

// benchResult is the JSON object printed on stdout in -bench mode.
type benchResult struct {
	Bench        int      `json:"bench"`
	StartPingUS  []int64  `json:"start_ping_us"`
	KillUS       []int64  `json:"kill_us"`
	Errors       []string `json:"errors"`
	HostMaxRSSKB int64    `json:"host_maxrss_kb"`
}

// runBench runs n start-up iterations and prints one benchResult line.
// Each iteration builds a fresh client (logger at level Off), times
// client.Client() through the first Ping(), then times client.Kill().
// A failed iteration goes to Errors only, so StartPingUS[i] and KillUS[i]
// always belong to the same iteration.
func runBench(n int, newClient newClientFunc, killTimeout time.Duration) {
	res := benchResult{
		Bench:       n,
		StartPingUS: make([]int64, 0, n),
		KillUS:      make([]int64, 0, n),
		Errors:      []string{},
	}
	logger := hclog.New(&hclog.LoggerOptions{
		Name:   "plugin",
		Level:  hclog.Off,
		Output: io.Discard,
	})
	for i := 1; i <= n; i++ {
		client, killGroup, _ := newClient(logger, nil)

		stage := "start"
		var startPing time.Duration
		t0 := time.Now()
		err := guard(func() error {
			rpcClient, err := client.Client()
			if err != nil {
				return err
			}
			stage = "ping"
			err = rpcClient.Ping()
			startPing = time.Since(t0)
			return err
		})

		killDone := make(chan time.Duration, 1)
		go func() {
			t := time.Now()
			client.Kill()
			killDone <- time.Since(t)
		}()
		var killDur time.Duration
		killHung := false
		timer := time.NewTimer(killTimeout)
		select {
		case killDur = <-killDone:
			timer.Stop()
		case <-timer.C:
			killHung = true
			killGroup()
			select {
			case <-killDone:
			case <-time.After(5 * time.Second):
			}
		}
		killGroup() // leave nothing behind

		var msg string
		if err != nil {
			msg = fmt.Sprintf("iteration %d: %s: %v", i, stage, err)
		}
		if killHung {
			hung := fmt.Sprintf("kill: Kill() did not return within %v, process group SIGKILLed", killTimeout)
			if msg == "" {
				msg = fmt.Sprintf("iteration %d: %s", i, hung)
			} else {
				msg += "; then " + hung
			}
		}
		if msg != "" {
			res.Errors = append(res.Errors, msg)
			continue
		}
		res.StartPingUS = append(res.StartPingUS, startPing.Microseconds())
		res.KillUS = append(res.KillUS, killDur.Microseconds())
	}

	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		res.HostMaxRSSKB = int64(ru.Maxrss) // KiB on Linux
	}

	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, "probe-host:", err)
		os.Exit(1)
	}
	os.Stdout.Write(out.Bytes())
}

// guard runs f, turning a panic into an error.
func guard(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return f()
}

func main() {
	cmdStr := flag.String("cmd", "", "plugin command, run with sh -c (required unless -reattach)")
	reattachStr := flag.String("reattach", "",
		`reattach to a running plugin instead of -cmd: JSON {"Protocol","ProtocolVersion","Pid","Test","Addr":{"Network","String"}}`)
	multiplex := flag.Bool("multiplex", false, "set ClientConfig.GRPCBrokerMultiplex")
	cookieKey := flag.String("cookie-key", "BASIC_PLUGIN", "magic cookie key")
	cookieValue := flag.String("cookie-value", "hello", "magic cookie value")
	versionsStr := flag.String("versions", "1", "comma list of app protocol versions offered")
	protocolsStr := flag.String("protocols", "grpc", "comma list of allowed protocols (grpc, netrpc)")
	startTimeout := flag.Duration("start-timeout", 10*time.Second, "StartTimeout")
	put := flag.String("put", "", "KEY=VALUE to put (optional)")
	get := flag.String("get", "", "KEY to get (optional)")
	ping := flag.Bool("ping", false, "ping the plugin")
	dispense := flag.String("dispense", "kv", "plugin name to dispense (kv or greeter; others fail at dispense)")
	greet := flag.Bool("greet", false, "call Greet() on the dispensed plugin (needs -dispense greeter, net/rpc)")
	call := flag.String("call", "",
		"net/rpc only: call this method (e.g. Plugin.Nope) on the dispensed plugin; args new(interface{}) or -call-arg, reply per -call-reply")
	callArg := flag.String("call-arg", "", "-call: send this string as the args instead of new(interface{})")
	callReply := flag.String("call-reply", "interface", "-call: reply type: interface (*interface{}), string (*string) or bytes (*[]byte)")
	flag.DurationVar(callTimeoutFlag, "call-timeout", 10*time.Second, "-greet / -call: give up on the net/rpc call after this long")
	killTimeout := flag.Duration("kill-timeout", 10*time.Second,
		"if client.Kill() has not returned after this long, SIGKILL the plugin's process group")
	verbose := flag.Bool("v", false, "also copy the host log to stderr")
	autoMTLS := flag.Bool("automtls", false, "set ClientConfig.AutoMTLS")
	tlsCA := flag.String("tls-ca", "", "manual TLS: PEM file with the CA(s) for the plugin's certificate (RootCAs)")
	tlsCert := flag.String("tls-cert", "", "manual TLS: PEM client certificate (needs -tls-key)")
	tlsKey := flag.String("tls-key", "", "manual TLS: PEM private key of -tls-cert")
	tlsServerName := flag.String("tls-server-name", "localhost", "manual TLS: ServerName")
	tlsMax := flag.String("tls-max", "", "TLS MaxVersion: 1.2 or 1.3 (default: crypto/tls's)")
	bench := flag.Int("bench", 0,
		"benchmark: run N start (Client()+first Ping()) / Kill() iterations and print timings instead (0 = off)")
	direct := flag.Bool("direct", false,
		"with -bench: run -cmd as the plugin binary itself, without a shell (as Terraform runs providers)")
	syncStdoutPath := flag.String("sync-stdout", "", "ClientConfig.SyncStdout: write the plugin's GRPCStdio stdout to this file")
	syncStderrPath := flag.String("sync-stderr", "", "ClientConfig.SyncStderr: write the plugin's GRPCStdio stderr to this file")
	stderrPath := flag.String("stderr", "", "ClientConfig.Stderr: write the plugin's raw stderr to this file")
	logAll := flag.Bool("log-all", false, `add "log": every host log entry`)
	askVersion := flag.Bool("plugin-version", false,
		`after start, call Vault's logical.PluginVersion/Version on go-plugin's connection; add "plugin_version" and "plugin_version_error"`)
	wait := flag.Duration("wait", 0, "sleep this long after the last operation, before Kill")
	waitStdoutBytes := flag.Int64("wait-stdout-bytes", 0,
		"before -wait: wait until the -sync-stdout file has at least N bytes (at most -wait-stdout-timeout)")
	waitStdoutTimeout := flag.Duration("wait-stdout-timeout", 30*time.Second, "upper bound for -wait-stdout-bytes")
	flag.Parse()

	if flag.NArg() != 0 {
		usageError("unexpected arguments: %q", flag.Args())
	}
	callArgSet := false
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "call-arg" {
			callArgSet = true
		}
	})
	if callArgSet && *call == "" {
		usageError("-call-arg needs -call")
	}
	switch *callReply {
	case "interface", "string", "bytes":
	default:
		usageError("-call-reply wants interface, string or bytes, got %q", *callReply)
	}
	if *callTimeoutFlag <= 0 {
		usageError("-call-timeout wants a duration > 0, got %v", *callTimeoutFlag)
	}
	var reattach *plugin.ReattachConfig
	if *reattachStr != "" {
		if *cmdStr != "" {
			usageError("-cmd and -reattach exclude each other")
		}
		if *bench != 0 {
			usageError("-bench does not work with -reattach")
		}
		if *autoMTLS {
			// go-plugin would silently ignore it (reattach skips AutoMTLS).
			usageError("-automtls does not work with -reattach")
		}
		var err error
		if reattach, err = parseReattach(*reattachStr); err != nil {
			usageError("-reattach: %v", err)
		}
	} else if *cmdStr == "" {
		usageError("-cmd or -reattach is required")
	}
	if *bench < 0 {
		usageError("-bench wants N >= 0, got %d", *bench)
	}
	if *direct && *bench == 0 {
		usageError("-direct needs -bench")
	}
	if *wait < 0 {
		usageError("-wait wants a duration >= 0, got %v", *wait)
	}
	if *waitStdoutBytes < 0 {
		usageError("-wait-stdout-bytes wants N >= 0, got %d", *waitStdoutBytes)
	}
	if *waitStdoutBytes > 0 && *syncStdoutPath == "" {
		usageError("-wait-stdout-bytes needs -sync-stdout")
	}
	var putKey, putValue string
	if *put != "" {
		k, v, ok := strings.Cut(*put, "=")
		if !ok {
			usageError("-put wants KEY=VALUE, got %q", *put)
		}
		putKey, putValue = k, v
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		usageError("-tls-cert and -tls-key go together")
	}
	var maxVersion uint16
	if *tlsMax != "" {
		var ok bool
		if maxVersion, ok = tlsVersions[*tlsMax]; !ok {
			usageError("-tls-max wants 1.2 or 1.3, got %q", *tlsMax)
		}
		if !*autoMTLS && *tlsCA == "" && *tlsCert == "" {
			usageError("-tls-max needs -automtls, -tls-ca or -tls-cert")
		}
	}
	var tlsConfig *tls.Config
	if *tlsCA != "" || *tlsCert != "" {
		var err error
		tlsConfig, err = manualTLSConfig(*tlsCA, *tlsCert, *tlsKey, *tlsServerName, maxVersion)
		if err != nil {
			usageError("TLS files: %v", err)
		}
	}
	versions := map[int]plugin.PluginSet{}
	for _, v := range splitList(*versionsStr) {
		n, err := strconv.Atoi(v)
		if err != nil {
			usageError("bad version %q in -versions", v)
		}
		versions[n] = pluginSet()
	}
	var protocols []plugin.Protocol
	for _, p := range splitList(*protocolsStr) {
		switch p {
		case "grpc":
			protocols = append(protocols, plugin.ProtocolGRPC)
		case "netrpc":
			protocols = append(protocols, plugin.ProtocolNetRPC)
		default:
			usageError("bad protocol %q in -protocols", p)
		}
	}

	// newClient builds a fresh client with the configuration the flags ask
	// for; every call gets its own exec.Cmd, TLS config copy and TLS observer.
	newClient := func(logger hclog.Logger, tweak func(*plugin.ClientConfig)) (*plugin.Client, func(), *tlsObserver) {
		// The plugin runs as "sh -c CMD" in its own process group, so that
		// whatever sh started can be cleaned up: go-plugin only kills the
		// direct child (sh), and its Kill() waits until every holder of the
		// plugin's stdout/stderr pipes has exited.
		// With -reattach there is no command, and nothing of ours to kill.
		var cmd *exec.Cmd
		killGroup := func() {}
		if reattach == nil {
			if *direct {
				cmd = exec.Command(*cmdStr)
			} else {
				cmd = exec.Command("sh", "-c", *cmdStr)
			}
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			killGroup = func() {
				if cmd.Process != nil {
					_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				}
			}
		}

		// The TLS version is read from the peer of unary calls.
		obs := &tlsObserver{}

		config := &plugin.ClientConfig{
			HandshakeConfig: plugin.HandshakeConfig{
				MagicCookieKey:   *cookieKey,
				MagicCookieValue: *cookieValue,
			},
			VersionedPlugins: versions,
			AllowedProtocols: protocols,
			StartTimeout:     *startTimeout,
			Logger:           logger,
			AutoMTLS:         *autoMTLS,
			// A copy: go-plugin writes the plugin's certificate into
			// RootCAs/ClientCAs of the config it is given.
			TLSConfig:           tlsConfig.Clone(),
			GRPCDialOptions:     []grpc.DialOption{grpc.WithChainUnaryInterceptor(obs.intercept)},
			GRPCBrokerMultiplex: *multiplex,
		}
		if reattach == nil {
			config.Cmd = cmd
		} else {
			// A copy per client. go-plugin's reattach path skips the
			// version negotiation and dispenses from Plugins, not
			// VersionedPlugins.
			rc := *reattach
			config.Reattach = &rc
			config.Plugins = pluginSet()
		}
		if *autoMTLS && maxVersion != 0 {
			config.GRPCDialOptions = append(config.GRPCDialOptions,
				grpc.WithTransportCredentials(&maxVersionCreds{config: config, max: maxVersion}))
		}
		if tweak != nil {
			tweak(config)
		}
		return plugin.NewClient(config), killGroup, obs
	}

	if *bench > 0 {
		runBench(*bench, newClient, *killTimeout)
		return
	}

	sink := &logSink{}
	if *verbose {
		sink.echo = os.Stderr
	}
	logger := hclog.New(&hclog.LoggerOptions{
		Name:        "plugin",
		Level:       hclog.Trace,
		Output:      sink,
		DisableTime: true,
	})
	// Output files (normal mode only), created before the plugin starts.
	var syncStdout, syncStderr, rawStderr *syncFile
	for _, f := range []struct {
		path string
		dst  **syncFile
	}{{*syncStdoutPath, &syncStdout}, {*syncStderrPath, &syncStderr}, {*stderrPath, &rawStderr}} {
		if f.path == "" {
			continue
		}
		sf, err := createSyncFile(f.path)
		if err != nil {
			usageError("%v", err)
		}
		*f.dst = sf
	}
	client, killGroup, obs := newClient(logger, func(c *plugin.ClientConfig) {
		// Only non-nil writers: go-plugin replaces nil by io.Discard.
		if syncStdout != nil {
			c.SyncStdout = syncStdout
		}
		if syncStderr != nil {
			c.SyncStderr = syncStderr
		}
		if rawStderr != nil {
			c.Stderr = rawStderr
		}
	})

	res := result{Warnings: []string{}}
	empty := ""
	if *greet {
		res.Greet = &empty
	}
	if *call != "" {
		res.Call = &empty
	}
	fail := func(stage string, err error) {
		res.Stage = stage
		res.Error = err.Error()
	}

	func() {
		var rpcClient plugin.ClientProtocol
		err := guard(func() (err error) {
			rpcClient, err = client.Client()
			return err
		})
		// NegotiatedVersion is set as soon as the version check passed, so
		// it is reported even if a later handshake check failed.
		res.Version = client.NegotiatedVersion()
		if err != nil {
			fail("start", err)
			return
		}
		// Only after a successful start: Protocol() calls Start() again.
		res.Protocol = string(client.Protocol())

		if *askVersion {
			version, verr := "", "net/rpc has no version service"
			if c, ok := rpcClient.(*plugin.GRPCClient); ok {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				v, err := logical.Version(ctx, c.Conn)
				cancel()
				version, verr = v, ""
				if err != nil {
					verr = err.Error()
				}
			}
			res.PluginVersion, res.PluginVersionError = &version, &verr
		}

		var raw interface{}
		if err := guard(func() (err error) {
			raw, err = rpcClient.Dispense(*dispense)
			return err
		}); err != nil {
			fail("dispense", err)
			return
		}

		if *ping {
			if err := guard(rpcClient.Ping); err != nil {
				fail("ping", err)
				return
			}
		}

		var kv shared.KV
		if *put != "" || *get != "" {
			var ok bool
			if kv, ok = raw.(shared.KV); !ok {
				fail("dispense", fmt.Errorf("dispensed %T, which is not a KV", raw))
				return
			}
		}
		if *put != "" {
			if err := guard(func() error { return kv.Put(putKey, []byte(putValue)) }); err != nil {
				fail("put", err)
				return
			}
		}
		if *get != "" {
			var value []byte
			if err := guard(func() (err error) {
				value, err = kv.Get(*get)
				return err
			}); err != nil {
				fail("get", err)
				return
			}
			res.Get = string(value)
		}
		if *greet {
			g, ok := raw.(greeter)
			if !ok {
				fail("dispense", fmt.Errorf("dispensed %T, which is not a Greeter", raw))
				return
			}
			var s string
			if err := guard(func() (err error) {
				s, err = g.Greet()
				return err
			}); err != nil {
				fail("greet", err)
				return
			}
			res.Greet = &s
		}
		if *call != "" {
			c, ok := raw.(netrpcClient)
			if !ok {
				fail("dispense", fmt.Errorf("dispensed %T, which is not a net/rpc plugin", raw))
				return
			}
			var args interface{} = new(interface{})
			if callArgSet {
				args = *callArg
			}
			var (
				replyIface interface{}
				replyStr   string
				replyBytes []byte
				reply      interface{}
			)
			switch *callReply {
			case "string":
				reply = &replyStr
			case "bytes":
				reply = &replyBytes
			default:
				reply = &replyIface
			}
			if err := guard(func() error {
				return callTimeout(c.rpcClient(), *call, args, reply, *callTimeoutFlag)
			}); err != nil {
				fail("call", err)
				return
			}
			var s string
			switch *callReply {
			case "string":
				s = replyStr
			case "bytes":
				s = string(replyBytes)
			default:
				s = fmt.Sprintf("%v", replyIface)
			}
			res.Call = &s
		}
		res.OK = true
	}()

	if *waitStdoutBytes > 0 {
		deadline := time.Now().Add(*waitStdoutTimeout)
		for syncStdout.count() < *waitStdoutBytes && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if *wait > 0 {
		time.Sleep(*wait)
	}

	start := time.Now()
	killed := make(chan struct{})
	go func() {
		client.Kill()
		close(killed)
	}()
	select {
	case <-killed:
	case <-time.After(*killTimeout):
		res.KillHung = true
		killGroup()
		select {
		case <-killed:
		case <-time.After(5 * time.Second):
		}
	}
	res.KillMS = time.Since(start).Milliseconds()
	if reattach != nil {
		t := true
		res.Reattached = &t
		if reattach.Pid > 0 {
			time.Sleep(300 * time.Millisecond)
			alive := pidAlive(reattach.Pid)
			res.PidAliveAfterKill = &alive
		}
	}
	res.TLSVersion = obs.get()
	res.Exited = client.Exited()
	killGroup() // leave nothing behind

	// go-plugin's GRPCStdio receive loop (grpcStdioClient.Run) is a
	// goroutine that Kill does not wait for; it ends when Kill closes the gRPC
	// connection, and logs one of these just before it returns. Wait for that
	// (bounded), so that no write is still under way, then close the files.
	if syncStdout != nil || syncStderr != nil {
		ended := true
		if res.Protocol == string(plugin.ProtocolGRPC) {
			ended = sink.waitFor(2*time.Second,
				"plugin.stdio: received EOF, stopping recv loop",
				"plugin.stdio: error receiving data",
				"plugin.stdio: stdio service unavailable, run will do nothing")
		}
		res.StdioEnded = &ended
	}
	if syncStdout != nil {
		n := syncStdout.close()
		res.SyncStdoutBytes = &n
	}
	if syncStderr != nil {
		n := syncStderr.close()
		res.SyncStderrBytes = &n
	}
	if rawStderr != nil {
		// Written by go-plugin's logStderr, which Kill waits for.
		rawStderr.close()
	}

	res.Graceful = true
	entries := sink.snapshot()
	if *logAll {
		all := append([]string{}, entries...)
		res.Log = &all
	}
	if *multiplex {
		mux := false
		for _, e := range entries {
			if strings.Contains(e, "plugin: client muxer connected") {
				mux = true
			}
		}
		res.Multiplexed = &mux
	}
	for _, e := range entries {
		switch level(e) {
		case "WARN", "ERROR":
			res.Warnings = append(res.Warnings, e)
		}
		if strings.Contains(e, "plugin failed to exit gracefully") {
			res.Graceful = false
		}
	}

	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, "probe-host:", err)
		os.Exit(1)
	}
	os.Stdout.Write(out.Bytes())
}

// Command probe-plugin is a configurable go-plugin gRPC (or net/rpc) plugin
// for automated tests (checking that a non-Go host negotiates versions like a
// Go host).
//
// Environment:
//
//	PROBE_PROTOCOL      "grpc" (default, also when empty) or "netrpc": serve the
//	                    KV over net/rpc (shared.KVPlugin) instead
//	PROBE_VERSIONS      comma list of app protocol versions served (default "1");
//	                    each serves {"kv": gRPC KV} (or {"kv": net/rpc KV})
//	PROBE_COOKIE_KEY    magic cookie key (default "BASIC_PLUGIN")
//	PROBE_COOKIE_VALUE  magic cookie value (default "hello")
//	PROBE_TLS_CERT      manual TLS (ServeConfig.TLSProvider): PEM certificate;
//	PROBE_TLS_KEY       with its PEM key (both or neither)
//	PROBE_TLS_CLIENT_CA PEM CA(s): require and verify a client certificate
//	PROBE_TLS_MAX       "1.2" or "1.3": TLS MaxVersion (manual TLS and AutoMTLS)
//	PROBE_STDOUT_TEXT   text (+ "\n") written to os.Stdout once serving (GRPCStdio)
//	PROBE_STDERR_TEXT   text (+ "\n") written to os.Stderr once serving (GRPCStdio)
//	PROBE_STDOUT_BYTES  N: then N bytes "0123456789abcdef..." to os.Stdout, 4 KiB writes
//	PROBE_LOG           "1": hclog JSON entries (trace..error), a plain "[WARN] ..."
//	                    line and a pretend panic on the real stderr once serving
//	PROBE_PLUGIN_VERSION serve Vault's logical.PluginVersion with this version
//	                    text (gRPC only; set but empty: an empty version); unset:
//	                    not served, as by every go-plugin plugin
//
// "Once serving" is 100 ms after the first RPC the host makes (see
// startOutput), when go-plugin has replaced os.Stdout/os.Stderr with its
// GRPCStdio pipes; over net/rpc 100 ms after the first Dispense (then the
// pipes are go-plugin's net/rpc stdout/stderr streams).
//
// Without PROBE_TLS_CERT/KEY, go-plugin turns AutoMTLS on by itself when the
// host sends PLUGIN_CLIENT_CERT. go-plugin has no hook to change that
// tls.Config, so with PROBE_TLS_MAX set the plugin does AutoMTLS itself (see
// autoMTLS below).
//
// A Get of "probe:<action> <argument>" runs a sandbox probe (sandbox.go).
//
// The KV stores VALUE + "\n\nWritten from plugin-go-grpc" in kv_KEY in the
// working directory, like kv-plugin-go-grpc (with PROBE_PROTOCOL=netrpc:
// "...plugin-go-netrpc", like kv-plugin-go-netrpc).
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	_ "unsafe" // go:linkname

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/examples/grpc/shared"
	"google.golang.org/grpc"

	"goplug.test/interop/proto/logical"
)

// generateCert is go-plugin's own AutoMTLS certificate generator (mtls.go),
// used so that the emulated AutoMTLS sends exactly go-plugin's certificate.
//
//go:linkname generateCert github.com/hashicorp/go-plugin.generateCert
func generateCert() (cert []byte, privateKey []byte, err error)

// fileKV stores VALUE + "\n\nWritten from " + from in kv_KEY.
type fileKV struct{ from string }

func (kv fileKV) Put(key string, value []byte) error {
	data := append(append([]byte{}, value...), "\n\nWritten from "+kv.from...)
	return os.WriteFile("kv_"+key, data, 0o644)
}

func (fileKV) Get(key string) ([]byte, error) {
	if value, ok := sandboxProbe(key); ok {
		return value, nil
	}
	return os.ReadFile("kv_" + key)
}

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return def
}

func die(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "probe-plugin: "+format+"\n", args...)
	os.Exit(1)
}

// manualTLS is the tls.Config returned by TLSProvider for PROBE_TLS_CERT/KEY.
func manualTLS(certFile, keyFile, clientCAFile string, max uint16) *tls.Config {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		die("PROBE_TLS_CERT/PROBE_TLS_KEY: %v", err)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		MaxVersion:   max,
	}
	if clientCAFile != "" {
		pem, err := os.ReadFile(clientCAFile)
		if err != nil {
			die("PROBE_TLS_CLIENT_CA: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			die("PROBE_TLS_CLIENT_CA: no PEM certificate in %s", clientCAFile)
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = pool
	}
	return cfg
}

// autoMTLS does go-plugin's plugin-side AutoMTLS itself, with MaxVersion
// set. go-plugin (server.go) builds its AutoMTLS tls.Config only when
// TLSProvider returns nil, and offers no way to change it; when TLSProvider
// returns a config, go-plugin prints an empty field 6. So TLSProvider returns
// the config go-plugin would build (its certificate generator, the same
// fields) plus MaxVersion, and the handshake line that go-plugin prints is
// passed through a pipe that puts our certificate into field 6, as
// RawStdEncoding base64 of the DER, like go-plugin.
func autoMTLS(clientCertPEM string, max uint16) *tls.Config {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(clientCertPEM)) {
		// go-plugin only logs this and carries on with an empty pool.
		fmt.Fprintln(os.Stderr, "probe-plugin: PLUGIN_CLIENT_CERT provided but failed to parse")
	}
	certPEM, keyPEM, err := generateCert()
	if err != nil {
		die("generating the AutoMTLS certificate: %v", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		die("parsing the AutoMTLS certificate: %v", err)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
		MaxVersion:   max,
		RootCAs:      pool,
		ServerName:   "localhost",
	}
	field6 := base64.RawStdEncoding.EncodeToString(cert.Certificate[0])

	// go-plugin prints the handshake line with fmt.Printf to os.Stdout
	// (and then replaces os.Stdout with its stdio pipe).
	realStdout := os.Stdout
	r, w, err := os.Pipe()
	if err != nil {
		die("pipe: %v", err)
	}
	os.Stdout = w
	go func() {
		line, err := bufio.NewReader(r).ReadString('\n')
		if err != nil {
			return
		}
		parts := strings.Split(strings.TrimSuffix(line, "\n"), "|")
		if len(parts) >= 6 {
			parts[5] = field6
		}
		io.WriteString(realStdout, strings.Join(parts, "|")+"\n")
		realStdout.Sync()
	}()
	return cfg
}

// outputConfig is what PROBE_STDOUT_TEXT, PROBE_STDERR_TEXT,
// PROBE_STDOUT_BYTES and PROBE_LOG ask for.
type outputConfig struct {
	stdoutText, stderrText string
	stdoutBytes            int64
	log                    bool
}

func (o outputConfig) any() bool {
	return o.stdoutText != "" || o.stderrText != "" || o.stdoutBytes > 0 || o.log
}

// stdoutPattern is repeated for PROBE_STDOUT_BYTES: byte i is
// stdoutPattern[i%16]. Every 4 KiB write starts at a multiple of 16.
const stdoutPattern = "0123456789abcdef"

// startOutput prepares the PROBE_* output and returns the function that
// triggers it (only the first call counts). It must be called before
// plugin.Serve: the hclog logger and realStderr keep the process's real
// stderr (fd 2), which Serve later replaces in os.Stderr.
//
// The output starts 100 ms after the trigger: over gRPC the first RPC (unary
// or stream, any service) that reaches the server (grpcServerWithTrigger),
// over net/rpc the first Dispense (triggerKVPlugin). go-plugin assigns its
// stdio pipes to os.Stdout/os.Stderr just before it starts the server, so
// from then on os.Stdout/os.Stderr are the stdio pipes (a plain timer could
// fire before the handshake line when the start-up is slow, e.g. AutoMTLS
// key generation). go-plugin's gRPC host calls StreamStdio and the broker's
// StartStream in Client().
func startOutput(o outputConfig) (trigger func()) {
	realStderr := os.Stderr
	var logger hclog.Logger
	if o.log {
		logger = hclog.New(&hclog.LoggerOptions{
			Level:      hclog.Trace,
			Output:     os.Stderr,
			JSONFormat: true,
		})
	}

	serving := make(chan struct{})
	var once sync.Once
	trigger = func() { once.Do(func() { close(serving) }) }

	go func() {
		<-serving
		time.Sleep(100 * time.Millisecond)
		if o.log {
			logger.Trace("trace message", "foo", "bar", "n", 12)
			logger.Debug("debug message", "foo", "bar", "n", 12)
			logger.Info("info message", "foo", "bar", "n", 12)
			logger.Warn("warn message", "foo", "bar", "n", 12)
			logger.Error("error message", "foo", "bar", "n", 12)
			io.WriteString(realStderr, "[WARN] plain text warning\n")
			io.WriteString(realStderr, "panic: pretend panic\ngoroutine 1 [running]:\nmain.main()\n")
		}
		// Read os.Stdout/os.Stderr only now (after Serve replaced them).
		stdout, stderr := os.Stdout, os.Stderr
		if o.stdoutText != "" {
			io.WriteString(stdout, o.stdoutText+"\n")
		}
		if o.stderrText != "" {
			io.WriteString(stderr, o.stderrText+"\n")
		}
		if o.stdoutBytes > 0 {
			chunk := []byte(strings.Repeat(stdoutPattern, 4096/len(stdoutPattern)))
			for left := o.stdoutBytes; left > 0; {
				n := int64(len(chunk))
				if left < n {
					n = left
				}
				if _, err := stdout.Write(chunk[:n]); err != nil {
					return
				}
				left -= n
			}
		}
	}()

	return trigger
}

// grpcServerWithTrigger is plugin.DefaultGRPCServer plus interceptors that
// call trigger on every RPC.
func grpcServerWithTrigger(trigger func()) func([]grpc.ServerOption) *grpc.Server {
	unary := func(ctx context.Context, req interface{}, info *grpc.UnaryServerInfo,
		handler grpc.UnaryHandler) (interface{}, error) {
		trigger()
		return handler(ctx, req)
	}
	stream := func(srv interface{}, ss grpc.ServerStream, info *grpc.StreamServerInfo,
		handler grpc.StreamHandler) error {
		trigger()
		return handler(srv, ss)
	}
	return func(opts []grpc.ServerOption) *grpc.Server {
		opts = append(opts, grpc.ChainUnaryInterceptor(unary), grpc.ChainStreamInterceptor(stream))
		return plugin.DefaultGRPCServer(opts)
	}
}

// triggerKVPlugin is shared.KVPlugin (net/rpc) that calls trigger when a
// host dispenses it.
type triggerKVPlugin struct {
	shared.KVPlugin
	trigger func()
}

func (p *triggerKVPlugin) Server(b *plugin.MuxBroker) (interface{}, error) {
	p.trigger()
	return p.KVPlugin.Server(b)
}

func main() {
	netrpc := false
	switch v := os.Getenv("PROBE_PROTOCOL"); v {
	case "", "grpc":
	case "netrpc":
		netrpc = true
	default:
		die("PROBE_PROTOCOL wants grpc or netrpc, got %q", v)
	}
	var trigger func() // set below: startOutput's trigger, or a no-op
	versions := map[int]plugin.PluginSet{}
	for _, f := range strings.Split(envOr("PROBE_VERSIONS", "1"), ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			fmt.Fprintf(os.Stderr, "probe-plugin: bad version %q in PROBE_VERSIONS\n", f)
			os.Exit(1)
		}
		if netrpc {
			versions[n] = plugin.PluginSet{"kv": &triggerKVPlugin{
				KVPlugin: shared.KVPlugin{Impl: fileKV{from: "plugin-go-netrpc"}},
				trigger:  func() { trigger() },
			}}
		} else {
			versions[n] = plugin.PluginSet{"kv": &shared.KVGRPCPlugin{Impl: fileKV{from: "plugin-go-grpc"}}}
		}
	}

	var maxVersion uint16
	switch m := os.Getenv("PROBE_TLS_MAX"); m {
	case "":
	case "1.2":
		maxVersion = tls.VersionTLS12
	case "1.3":
		maxVersion = tls.VersionTLS13
	default:
		die("PROBE_TLS_MAX wants 1.2 or 1.3, got %q", m)
	}
	certFile, keyFile := os.Getenv("PROBE_TLS_CERT"), os.Getenv("PROBE_TLS_KEY")
	if (certFile == "") != (keyFile == "") {
		die("PROBE_TLS_CERT and PROBE_TLS_KEY go together")
	}
	var tlsProvider func() (*tls.Config, error)
	switch clientCert := os.Getenv("PLUGIN_CLIENT_CERT"); {
	case certFile != "":
		cfg := manualTLS(certFile, keyFile, os.Getenv("PROBE_TLS_CLIENT_CA"), maxVersion)
		tlsProvider = func() (*tls.Config, error) { return cfg, nil }
	case clientCert != "" && maxVersion != 0:
		// Serve calls TLSProvider after its cookie and version checks, just
		// before it prints the handshake line.
		tlsProvider = func() (*tls.Config, error) { return autoMTLS(clientCert, maxVersion), nil }
	}

	out := outputConfig{
		stdoutText: os.Getenv("PROBE_STDOUT_TEXT"),
		stderrText: os.Getenv("PROBE_STDERR_TEXT"),
	}
	if v := os.Getenv("PROBE_STDOUT_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			die("PROBE_STDOUT_BYTES wants a byte count >= 0, got %q", v)
		}
		out.stdoutBytes = n
	}
	switch v := os.Getenv("PROBE_LOG"); v {
	case "", "0":
	case "1":
		out.log = true
	default:
		die("PROBE_LOG wants 1 (or 0), got %q", v)
	}
	trigger = func() {}
	grpcServer := plugin.DefaultGRPCServer
	if out.any() {
		trigger = startOutput(out)
		grpcServer = grpcServerWithTrigger(trigger)
	}
	if v, ok := os.LookupEnv("PROBE_PLUGIN_VERSION"); ok {
		grpcServer = logical.GRPCServer(grpcServer, v)
	}
	if netrpc {
		// No GRPCServer: go-plugin serves net/rpc.
		grpcServer = nil
	}

	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: plugin.HandshakeConfig{
			MagicCookieKey:   envOr("PROBE_COOKIE_KEY", "BASIC_PLUGIN"),
			MagicCookieValue: envOr("PROBE_COOKIE_VALUE", "hello"),
		},
		VersionedPlugins: versions,
		GRPCServer:       grpcServer,
		TLSProvider:      tlsProvider,
	})
}

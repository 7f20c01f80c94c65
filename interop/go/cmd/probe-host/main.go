// Command probe-host is a configurable go-plugin host for automated tests.
// It starts one plugin, optionally pings it and does a KV put/get, kills it,
// and prints exactly one JSON object describing what happened on stdout.
// See ../../README.md for the contract.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
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

func (s *logSink) snapshot() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.entries...)
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
// embedded net/rpc Plugin.
type kvPlugin struct {
	grpcPlugin shared.KVGRPCPlugin
	rpcPlugin  shared.KVPlugin
}

func (p *kvPlugin) Server(b *plugin.MuxBroker) (interface{}, error) { return p.rpcPlugin.Server(b) }
func (p *kvPlugin) Client(b *plugin.MuxBroker, c *rpc.Client) (interface{}, error) {
	return p.rpcPlugin.Client(b, c)
}
func (p *kvPlugin) GRPCServer(b *plugin.GRPCBroker, s *grpc.Server) error {
	return p.grpcPlugin.GRPCServer(b, s)
}
func (p *kvPlugin) GRPCClient(ctx context.Context, b *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return p.grpcPlugin.GRPCClient(ctx, b, c)
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
	cmdStr := flag.String("cmd", "", "plugin command, run with sh -c (required)")
	cookieKey := flag.String("cookie-key", "BASIC_PLUGIN", "magic cookie key")
	cookieValue := flag.String("cookie-value", "hello", "magic cookie value")
	versionsStr := flag.String("versions", "1", "comma list of app protocol versions offered")
	protocolsStr := flag.String("protocols", "grpc", "comma list of allowed protocols (grpc, netrpc)")
	startTimeout := flag.Duration("start-timeout", 10*time.Second, "StartTimeout")
	put := flag.String("put", "", "KEY=VALUE to put (optional)")
	get := flag.String("get", "", "KEY to get (optional)")
	ping := flag.Bool("ping", false, "ping the plugin")
	dispense := flag.String("dispense", "kv", "plugin name to dispense")
	killTimeout := flag.Duration("kill-timeout", 10*time.Second,
		"if client.Kill() has not returned after this long, SIGKILL the plugin's process group")
	verbose := flag.Bool("v", false, "also copy the host log to stderr")
	flag.Parse()

	if flag.NArg() != 0 {
		usageError("unexpected arguments: %q", flag.Args())
	}
	if *cmdStr == "" {
		usageError("-cmd is required")
	}
	var putKey, putValue string
	if *put != "" {
		k, v, ok := strings.Cut(*put, "=")
		if !ok {
			usageError("-put wants KEY=VALUE, got %q", *put)
		}
		putKey, putValue = k, v
	}
	versions := map[int]plugin.PluginSet{}
	for _, v := range splitList(*versionsStr) {
		n, err := strconv.Atoi(v)
		if err != nil {
			usageError("bad version %q in -versions", v)
		}
		versions[n] = plugin.PluginSet{"kv": &kvPlugin{}}
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

	// The plugin runs as "sh -c CMD" in its own process group, so that
	// whatever sh started can be cleaned up: go-plugin only kills the
	// direct child (sh), and its Kill() waits until every holder of the
	// plugin's stdout/stderr pipes has exited.
	cmd := exec.Command("sh", "-c", *cmdStr)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	killGroup := func() {
		if cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}

	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: plugin.HandshakeConfig{
			MagicCookieKey:   *cookieKey,
			MagicCookieValue: *cookieValue,
		},
		VersionedPlugins: versions,
		Cmd:              cmd,
		AllowedProtocols: protocols,
		StartTimeout:     *startTimeout,
		Logger:           logger,
	})

	res := result{Warnings: []string{}}
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
		res.OK = true
	}()

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
	res.Exited = client.Exited()
	killGroup() // leave nothing behind

	res.Graceful = true
	for _, e := range sink.snapshot() {
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

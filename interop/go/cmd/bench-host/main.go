// Command bench-host is the Go benchmark host (go-plugin v1.8). It runs one
// workload against a plugin command and prints one JSON object of figures;
// goplug's bench-host takes the same flags and prints the same keys.
//
//	bench-host -cmd 'exec ./bench-plugin' -workload unary -iterations 20000
//
// Workloads: unary (tiny echoes one after the other: p50_us, p99_us), echo
// (-size bytes: mib_per_s), concurrent (-concurrency callers share
// -iterations tiny calls: calls_per_s), broker (the plugin calls the host's
// Echo -iterations times through the gRPC broker: calls_per_s), scale
// (-plugins plugins started, called once and stopped, all at once: start_ms,
// call_ms, stop_ms, total_ms, host_rss_per_plugin_kib), session (-sessions
// times: launch the plugin, -iterations tiny calls, Kill() until reaped:
// session_p50_ms, session_p90_ms, session_errors and first_error; a plugin
// that did not exit gracefully is an error). Every single-plugin workload
// also gives plugin_rss_kib, the plugin's resident memory after its first
// call. -direct runs -cmd as the plugin binary itself, without a shell, as
// Terraform runs providers.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"goplug.test/interop/proto/bench"
)

type options struct {
	cmd         string
	workload    string
	iterations  int
	concurrency int
	size        int
	plugins     int
	protocol    string
	autoMTLS    bool
	direct      bool
	sessions    int
}

func main() {
	var o options
	flag.StringVar(&o.cmd, "cmd", "", "plugin command, run with sh -c")
	flag.StringVar(&o.workload, "workload", "unary", "unary, echo, concurrent, broker, scale or session")
	flag.IntVar(&o.iterations, "iterations", 20000, "calls")
	flag.IntVar(&o.concurrency, "concurrency", 64, "callers of the concurrent workload")
	flag.IntVar(&o.size, "size", 1<<20, "message size of the echo workload")
	flag.IntVar(&o.plugins, "plugins", 100, "plugins of the scale workload")
	flag.StringVar(&o.protocol, "protocol", "grpc", "grpc or netrpc")
	flag.BoolVar(&o.autoMTLS, "automtls", false, "AutoMTLS")
	flag.BoolVar(&o.direct, "direct", false, "run -cmd as the plugin binary, without a shell")
	flag.IntVar(&o.sessions, "sessions", 50, "sessions of the session workload")
	flag.Parse()
	if o.cmd == "" {
		fmt.Fprintln(os.Stderr, "bench-host: -cmd is required")
		os.Exit(2)
	}
	figures, err := run(o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench-host: %v\n", err)
		os.Exit(1)
	}
	_ = json.NewEncoder(os.Stdout).Encode(figures)
}

type loaded struct {
	client *plugin.Client
	echoer bench.Echoer
	pid    int
}

func quiet() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Level: hclog.Error, Output: io.Discard})
}

func load(o options, logger hclog.Logger) (*loaded, error) {
	protocol := plugin.ProtocolGRPC
	if o.protocol == "netrpc" {
		protocol = plugin.ProtocolNetRPC
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  bench.Handshake,
		Plugins:          map[string]plugin.Plugin{bench.PluginName: bench.Plugin{}},
		Cmd:              command(o),
		AllowedProtocols: []plugin.Protocol{protocol},
		AutoMTLS:         o.autoMTLS,
		Logger:           logger,
	})
	rpcClient, err := client.Client()
	if err != nil {
		client.Kill()
		return nil, err
	}
	raw, err := rpcClient.Dispense(bench.PluginName)
	if err != nil {
		client.Kill()
		return nil, err
	}
	l := &loaded{client: client, echoer: raw.(bench.Echoer)}
	if rc := client.ReattachConfig(); rc != nil {
		l.pid = rc.Pid
	}
	return l, nil
}

func command(o options) *exec.Cmd {
	if o.direct {
		return exec.Command(o.cmd)
	}
	return exec.Command("sh", "-c", o.cmd)
}

func rssKiB(pid string) float64 {
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kib, _ := strconv.ParseFloat(strings.Fields(rest)[0], 64)
			return kib
		}
	}
	return 0
}

func percentileUs(values []time.Duration, p float64) float64 {
	if len(values) == 0 {
		return 0
	}
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	rank := int(float64(len(sorted)-1)*p + 0.5)
	return float64(sorted[rank].Nanoseconds()) / 1000
}

func echoTiny(e bench.Echoer) error {
	out, err := e.Echo(bench.Tiny)
	if err == nil && len(out) != len(bench.Tiny) {
		err = fmt.Errorf("echo returned %d bytes, sent %d", len(out), len(bench.Tiny))
	}
	return err
}

func run(o options) (map[string]any, error) {
	switch o.workload {
	case "scale":
		return scale(o)
	case "session":
		return sessions(o), nil
	}
	l, err := load(o, quiet())
	if err != nil {
		return nil, err
	}
	defer l.client.Kill()
	if err := echoTiny(l.echoer); err != nil {
		return nil, err
	}
	figures := map[string]any{
		"workload":       o.workload,
		"plugin_rss_kib": rssKiB(strconv.Itoa(l.pid)),
	}
	// Warm up: connections, buffers, the runtimes' pools.
	for range min(o.iterations/10, 1000) {
		if err := echoTiny(l.echoer); err != nil {
			return nil, err
		}
	}
	switch o.workload {
	case "unary":
		latencies := make([]time.Duration, 0, o.iterations)
		for range o.iterations {
			started := time.Now()
			if err := echoTiny(l.echoer); err != nil {
				return nil, err
			}
			latencies = append(latencies, time.Since(started))
		}
		figures["p50_us"] = percentileUs(latencies, 0.5)
		figures["p99_us"] = percentileUs(latencies, 0.99)
	case "echo":
		payload := make([]byte, o.size)
		for i := range payload {
			payload[i] = byte(i)
		}
		started := time.Now()
		for range o.iterations {
			out, err := l.echoer.Echo(payload)
			if err != nil {
				return nil, err
			}
			if len(out) != len(payload) {
				return nil, fmt.Errorf("echo returned %d bytes, sent %d", len(out), len(payload))
			}
		}
		elapsed := time.Since(started).Seconds()
		figures["mib_per_s"] = float64(o.iterations) * float64(o.size) / (1 << 20) / elapsed
	case "concurrent":
		var wg sync.WaitGroup
		errs := make(chan error, o.concurrency)
		per := max(o.iterations/o.concurrency, 1)
		started := time.Now()
		for range o.concurrency {
			wg.Go(func() {
				for range per {
					if err := echoTiny(l.echoer); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(started).Seconds()
		close(errs)
		if err := <-errs; err != nil {
			return nil, err
		}
		figures["calls_per_s"] = float64(per*o.concurrency) / elapsed
	case "broker":
		g, ok := l.echoer.(*bench.GRPCClient)
		if !ok {
			return nil, errors.New("the broker workload needs gRPC")
		}
		id := bench.ServeOnBroker(g.Broker)
		if _, err := g.Callback(id, 100); err != nil {
			return nil, fmt.Errorf("callback warm-up: %w", err)
		}
		started := time.Now()
		id = bench.ServeOnBroker(g.Broker)
		if _, err := g.Callback(id, uint32(o.iterations)); err != nil {
			return nil, fmt.Errorf("callback: %w", err)
		}
		figures["calls_per_s"] = float64(o.iterations) / time.Since(started).Seconds()
	default:
		return nil, fmt.Errorf("unknown workload %q", o.workload)
	}
	figures["host_rss_kib"] = rssKiB("self")
	return figures, nil
}

// scale starts -plugins plugins at once, calls each once, then stops them
// all at once.
func scale(o options) (map[string]any, error) {
	hostBefore := rssKiB("self")
	all := make([]*loaded, o.plugins)
	errs := make([]error, o.plugins)
	var wg sync.WaitGroup
	started := time.Now()
	for i := range all {
		wg.Go(func() { all[i], errs[i] = load(o, quiet()) })
	}
	wg.Wait()
	startMs := time.Since(started)
	defer func() {
		for _, l := range all {
			if l != nil {
				l.client.Kill()
			}
		}
	}()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	calling := time.Now()
	for i, l := range all {
		wg.Go(func() { errs[i] = echoTiny(l.echoer) })
	}
	wg.Wait()
	callMs := time.Since(calling)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	hostAfter := rssKiB("self")
	var pluginRss float64
	for _, l := range all {
		pluginRss += rssKiB(strconv.Itoa(l.pid))
	}
	stopping := time.Now()
	for _, l := range all {
		wg.Go(l.client.Kill)
	}
	wg.Wait()
	stopMs := time.Since(stopping)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return map[string]any{
		"workload":                "scale",
		"start_ms":                ms(startMs),
		"call_ms":                 ms(callMs),
		"stop_ms":                 ms(stopMs),
		"total_ms":                ms(time.Since(started)),
		"host_rss_per_plugin_kib": (hostAfter - hostBefore) / float64(o.plugins),
		"plugin_rss_kib":          pluginRss / float64(o.plugins),
	}, nil
}

// sessions runs -sessions sessions one after the other (see session).
func sessions(o options) map[string]any {
	times := make([]time.Duration, 0, o.sessions)
	var errs []error
	for range o.sessions {
		started := time.Now()
		if err := session(o); err != nil {
			errs = append(errs, err)
			continue
		}
		times = append(times, time.Since(started))
	}
	ms := func(p float64) float64 { return percentileUs(times, p) / 1000 }
	figures := map[string]any{
		"workload":       "session",
		"session_errors": len(errs),
	}
	if len(times) > 0 {
		figures["session_p50_ms"] = ms(0.5)
		figures["session_p90_ms"] = ms(0.9)
	}
	if len(errs) > 0 {
		figures["first_error"] = errs[0].Error()
	}
	return figures
}

// session launches the plugin, makes -iterations tiny calls and Kill()s
// it. Kill() reports nothing, so anything go-plugin logs at warn or above
// (a plugin that had to be killed, an exit status that is not 0) makes the
// session an error.
func session(o options) error {
	var warnings lockedBuffer
	l, err := load(o, hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: &warnings}))
	if err != nil {
		return err
	}
	for range o.iterations {
		if err = echoTiny(l.echoer); err != nil {
			break
		}
	}
	l.client.Kill()
	if err != nil {
		return err
	}
	if logged := strings.TrimSpace(warnings.String()); logged != "" {
		return fmt.Errorf("shutdown: %s", logged)
	}
	return nil
}

// lockedBuffer is a log output that go-plugin's goroutines may share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

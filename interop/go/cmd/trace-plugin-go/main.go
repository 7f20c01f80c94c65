// Command trace-plugin-go is a go-plugin gRPC plugin traced with
// OpenTelemetry the way go-plugin users trace theirs: otelgrpc's server
// handler through ServeConfig.GRPCServer's options, and its client handler
// on the broker dial back to the host. It serves go-plugin's bidirectional
// "counter" (values kept in memory): Put dials the host's AddHelper and
// stores Sum(old, value). Before serving it records a span "plugin-start",
// a child of the context in its environment (TRACEPARENT).
//
// Every span goes as a JSON line to the file named by TRACE_OUT_PLUGIN as
// it ends (internal/tracedcounter).
package main

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/examples/bidirectional/proto"
	"google.golang.org/grpc"

	"goplug.test/interop/internal/tracedcounter"
)

type memoryCounter struct {
	mu     sync.Mutex
	values map[string]int64
}

func (c *memoryCounter) Put(ctx context.Context, key string, value int64, helper proto.AddHelperClient) error {
	old, _ := c.Get(ctx, key)
	resp, err := helper.Sum(ctx, &proto.SumRequest{A: old, B: value})
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.values[key] = resp.R
	return nil
}

func (c *memoryCounter) Get(_ context.Context, key string) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.values[key], nil
}

func main() {
	tp, err := tracedcounter.WriteSpans("go-plugin", "TRACE_OUT_PLUGIN")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer func() { _ = tp.Shutdown(context.Background()) }()
	_, start := tracedcounter.Tracer().Start(tracedcounter.FromEnv(), "plugin-start")
	start.End()

	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: tracedcounter.Handshake,
		Plugins: plugin.PluginSet{
			"counter": &tracedcounter.Plugin{Impl: &memoryCounter{values: map[string]int64{}}},
		},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return plugin.DefaultGRPCServer(tracedcounter.ServerOptions(opts))
		},
	})
}

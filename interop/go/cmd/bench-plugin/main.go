// Command bench-plugin is the Go benchmark plugin (go-plugin v1.8): the
// bench.Bench service over gRPC, or Plugin.Echo over net/rpc when
// BENCH_PROTOCOL=netrpc. Same service as goplug's bench-plugin.
package main

import (
	"os"

	"github.com/hashicorp/go-plugin"

	"goplug.test/interop/proto/bench"
)

func main() {
	config := &plugin.ServeConfig{
		HandshakeConfig: bench.Handshake,
		Plugins:         map[string]plugin.Plugin{bench.PluginName: bench.Plugin{}},
	}
	// go-plugin serves gRPC whenever a GRPCServer is set.
	if os.Getenv("BENCH_PROTOCOL") != "netrpc" {
		config.GRPCServer = plugin.DefaultGRPCServer
	}
	plugin.Serve(config)
}

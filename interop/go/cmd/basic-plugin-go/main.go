// Command basic-plugin-go behaves like go-plugin's examples/basic plugin
// (plugin/greeter_impl.go): a net/rpc plugin "greeter" (handshake protocol
// version 1, BASIC_PLUGIN=hello) whose Plugin.Greet returns "Hello!".
//
// It logs through an hclog JSON logger (level Trace) on stderr: DEBUG
// "message from plugin" (foo=bar) before serving, and DEBUG
// "message from GreeterHello.Greet" on every Greet call. No GRPCServer is
// configured, so go-plugin serves net/rpc only.
//
// Copy or link it to ./plugin/greeter for basic-host.
package main

import (
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/examples/basic/shared"
)

// greeterHello is the Greeter implementation served over net/rpc.
type greeterHello struct {
	logger hclog.Logger
}

func (g *greeterHello) Greet() string {
	g.logger.Debug("message from GreeterHello.Greet")
	return "Hello!"
}

func main() {
	logger := hclog.New(&hclog.LoggerOptions{
		Level:      hclog.Trace,
		Output:     os.Stderr,
		JSONFormat: true,
	})

	plugins := map[string]plugin.Plugin{
		"greeter": &shared.GreeterPlugin{Impl: &greeterHello{logger: logger}},
	}

	logger.Debug("message from plugin", "foo", "bar")

	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: plugin.HandshakeConfig{
			ProtocolVersion:  1,
			MagicCookieKey:   "BASIC_PLUGIN",
			MagicCookieValue: "hello",
		},
		Plugins: plugins,
	})
}

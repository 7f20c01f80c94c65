// Command bidirectional-host is a go-plugin host that behaves like go-plugin's
// examples/bidirectional host (same environment variable, arguments, output
// and exit codes). The plugin's Counter.Put calls back into the host's
// AddHelper through the gRPC broker.
//
//	COUNTER_PLUGIN="<shell command>" bidirectional-host put KEY VALUE
//	COUNTER_PLUGIN="<shell command>" bidirectional-host get KEY
//
// Optional (not in upstream; unset, the configuration is exactly the
// upstream example's): COUNTER_AUTOMTLS=1 sets ClientConfig.AutoMTLS,
// COUNTER_MULTIPLEX=1 sets ClientConfig.GRPCBrokerMultiplex.
package main

import (
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"strconv"

	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/examples/bidirectional/shared"
)

// adder is the host-side AddHelper the plugin dials through the broker.
type adder struct{}

func (adder) Sum(a, b int64) (int64, error) { return a + b, nil }

func main() {
	// Like upstream: silence the standard logger (plugin logs go through
	// go-plugin's default hclog logger to stderr).
	log.SetOutput(io.Discard)

	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  shared.Handshake,
		Plugins:          shared.PluginMap,
		Cmd:              exec.Command("sh", "-c", os.Getenv("COUNTER_PLUGIN")),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolNetRPC, plugin.ProtocolGRPC},
		AutoMTLS:         os.Getenv("COUNTER_AUTOMTLS") == "1",
		// The plugin gets PLUGIN_MULTIPLEX_GRPC=true and must answer with
		// a 7th handshake field "true"; go-plugin then carries the main
		// connection and every brokered one over one yamux session.
		GRPCBrokerMultiplex: os.Getenv("COUNTER_MULTIPLEX") == "1",
	})
	defer client.Kill()

	// fail prints like upstream and exits 1. Upstream's os.Exit skips the
	// deferred Kill and leaves the plugin running; stop it first (the output
	// is the same).
	fail := func(msg ...any) {
		fmt.Println(msg...)
		client.Kill()
		os.Exit(1)
	}

	rpcClient, err := client.Client()
	if err != nil {
		fail("Error:", err.Error())
	}

	raw, err := rpcClient.Dispense("counter")
	if err != nil {
		fail("Error:", err.Error())
	}
	counter := raw.(shared.Counter)

	// Same indexing as upstream: missing arguments panic with "index out of
	// range" (exit 2); the deferred Kill still runs while panicking.
	args := os.Args[1:]
	switch args[0] {
	case "get":
		n, err := counter.Get(args[1])
		if err != nil {
			fail("Error:", err.Error())
		}
		fmt.Println(n)
	case "put":
		n, err := strconv.Atoi(args[2])
		if err != nil {
			fail("Error:", err.Error())
		}
		if err := counter.Put(args[1], int64(n), adder{}); err != nil {
			fail("Error:", err.Error())
		}
	default:
		fail("Please only use 'get' or 'put'")
	}
}

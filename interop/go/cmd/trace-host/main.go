// Command trace-host is a go-plugin host traced with OpenTelemetry the way
// go-plugin users trace theirs: otelgrpc's client handler through
// ClientConfig.GRPCDialOptions, its server handler on the brokered AddHelper,
// and the plugin launched with the host's span in TRACEPARENT. Inside one
// span "host-run" it launches the counter plugin, puts VALUE under KEY (the
// plugin calls AddHelper back), gets it and prints it.
//
//	TRACE_PLUGIN="<shell command>" TRACE_OUT_HOST=FILE trace-host KEY VALUE
//
// Every span goes to FILE as a JSON line as it ends (internal/tracedcounter).
// TRACE_MULTIPLEX=1 sets ClientConfig.GRPCBrokerMultiplex. Errors: "Error:
// <err>" on stdout, exit 1.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"

	"github.com/hashicorp/go-plugin"

	"goplug.test/interop/internal/tracedcounter"
)

func main() {
	if err := run(); err != nil {
		fmt.Println("Error:", err)
		os.Exit(1)
	}
}

func run() error {
	tp, err := tracedcounter.WriteSpans("go-host", "TRACE_OUT_HOST")
	if err != nil {
		return err
	}
	defer func() { _ = tp.Shutdown(context.Background()) }()
	if len(os.Args) != 3 {
		return fmt.Errorf("usage: trace-host KEY VALUE")
	}
	key := os.Args[1]
	value, err := strconv.ParseInt(os.Args[2], 10, 64)
	if err != nil {
		return err
	}

	ctx, span := tracedcounter.Tracer().Start(context.Background(), "host-run")
	defer span.End()

	cmd := exec.Command("sh", "-c", os.Getenv("TRACE_PLUGIN"))
	cmd.Env = append(os.Environ(), tracedcounter.EnvCarrier(ctx)...)
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:     tracedcounter.Handshake,
		Plugins:             plugin.PluginSet{"counter": &tracedcounter.Plugin{}},
		Cmd:                 cmd,
		AllowedProtocols:    []plugin.Protocol{plugin.ProtocolGRPC},
		GRPCDialOptions:     tracedcounter.DialOptions(),
		GRPCBrokerMultiplex: os.Getenv("TRACE_MULTIPLEX") == "1",
	})
	defer client.Kill()

	rpcClient, err := client.Client()
	if err != nil {
		return err
	}
	raw, err := rpcClient.Dispense("counter")
	if err != nil {
		return err
	}
	counter := raw.(*tracedcounter.Client)
	if err := counter.Put(ctx, key, value); err != nil {
		return err
	}
	n, err := counter.Get(ctx, key)
	if err != nil {
		return err
	}
	fmt.Println(n)
	return nil
}

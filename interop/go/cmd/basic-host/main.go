// Command basic-host behaves like go-plugin's examples/basic host
// (main.go): it launches ./plugin/greeter (relative to the working
// directory, not through a shell), net/rpc only (no AllowedProtocols, so
// go-plugin's default), dispenses "greeter", calls Greet() and prints the
// result with fmt.Println.
//
// Like upstream, the host logger is hclog (name "plugin", level Debug,
// text format) on **stdout**, so stdout carries go-plugin's log lines (and
// the plugin's re-logged stderr lines) besides the "Hello!" line.
// Errors: log.Fatal (timestamped message on stderr, exit 1).
//
// Interop addition (not in upstream): if GREETER_PLUGIN is set and not
// empty, it is the path of the plugin executable to run instead of
// ./plugin/greeter (run directly, without arguments or shell).
package main

import (
	"fmt"
	"log"
	"os"
	"os/exec"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/examples/basic/shared"
)

func main() {
	logger := hclog.New(&hclog.LoggerOptions{
		Name:   "plugin",
		Output: os.Stdout,
		Level:  hclog.Debug,
	})

	path := "./plugin/greeter"
	if p := os.Getenv("GREETER_PLUGIN"); p != "" {
		path = p
	}

	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: plugin.HandshakeConfig{
			ProtocolVersion:  1,
			MagicCookieKey:   "BASIC_PLUGIN",
			MagicCookieValue: "hello",
		},
		Plugins: map[string]plugin.Plugin{
			"greeter": &shared.GreeterPlugin{},
		},
		Cmd:    exec.Command(path),
		Logger: logger,
	})
	defer client.Kill()

	// Upstream's log.Fatal skips the deferred Kill and leaves the plugin
	// running; kill it first (same message and exit code).
	fatal := func(err error) {
		client.Kill()
		log.Fatal(err)
	}

	rpcClient, err := client.Client()
	if err != nil {
		fatal(err)
	}

	raw, err := rpcClient.Dispense("greeter")
	if err != nil {
		fatal(err)
	}

	// shared.GreeterRPC.Greet panics if the call fails (as upstream).
	greeter := raw.(shared.Greeter)
	fmt.Println(greeter.Greet())
}

// Command kv-host is a go-plugin host that behaves like go-plugin's
// examples/grpc host (same environment variables, arguments, output and exit
// codes). It is used to drive plugins (Go, Rust, Python) from a Go host.
//
//	KV_PLUGIN="<shell command>" KV_PROTO=grpc|netrpc kv-host put KEY VALUE
//	KV_PLUGIN="<shell command>" KV_PROTO=grpc|netrpc kv-host get KEY
package main

import (
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"

	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/examples/grpc/shared"
)

func run() error {
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  shared.Handshake,
		Plugins:          shared.PluginMap,
		Cmd:              exec.Command("sh", "-c", os.Getenv("KV_PLUGIN")),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolNetRPC, plugin.ProtocolGRPC},
	})
	defer client.Kill()

	rpcClient, err := client.Client()
	if err != nil {
		return err
	}

	var name string
	switch os.Getenv("KV_PROTO") {
	case "netrpc":
		name = shared.PluginNetRPC
	case "grpc":
		name = shared.PluginGRPC
	default:
		fmt.Println("must set KV_PROTO to netrpc or grpc")
		// The upstream example exits here without killing the plugin,
		// which leaves it running; stop it first (the output is the same).
		client.Kill()
		os.Exit(1)
	}

	raw, err := rpcClient.Dispense(name)
	if err != nil {
		return err
	}
	kv := raw.(shared.KV)

	args := os.Args[1:]
	switch args[0] {
	case "get":
		value, err := kv.Get(args[1])
		if err != nil {
			return err
		}
		fmt.Println(string(value))
	case "put":
		if err := kv.Put(args[1], []byte(args[2])); err != nil {
			return err
		}
	default:
		return fmt.Errorf("please only use 'get' or 'put', given: %q", args[0])
	}
	return nil
}

func main() {
	// The plugin's log lines go through go-plugin's default hclog logger
	// (stderr); silence the standard logger like the upstream example does.
	log.SetOutput(io.Discard)

	if err := run(); err != nil {
		fmt.Printf("error: %+v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

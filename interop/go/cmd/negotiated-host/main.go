// Command negotiated-host behaves like go-plugin's examples/negotiated host:
// it launches ./kv-plugin (relative to the working directory) and offers
// exactly one app protocol version, chosen by KV_PROTO:
//
//	KV_PROTO=grpc   -> version 3, {"kv": gRPC KV}
//	KV_PROTO=netrpc -> version 2, {"kv": net/rpc KV}
//
// Usage: negotiated-host put KEY VALUE | get KEY
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

func main() {
	log.SetOutput(io.Discard)

	versions := map[int]plugin.PluginSet{}
	switch os.Getenv("KV_PROTO") {
	case "netrpc":
		versions[2] = plugin.PluginSet{"kv": &shared.KVPlugin{}}
	case "grpc":
		versions[3] = plugin.PluginSet{"kv": &shared.KVGRPCPlugin{}}
	default:
		fmt.Println("must set KV_PROTO to netrpc or grpc")
		os.Exit(1)
	}

	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  shared.Handshake,
		VersionedPlugins: versions,
		Cmd:              exec.Command("./kv-plugin"),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolNetRPC, plugin.ProtocolGRPC},
	})
	defer client.Kill()

	// fail prints like the upstream example. Upstream calls os.Exit(1)
	// directly, which skips the deferred Kill and leaves the plugin running;
	// we kill it first (same output, no leaked process).
	fail := func(msg ...any) {
		fmt.Println(msg...)
		client.Kill()
		os.Exit(1)
	}

	rpcClient, err := client.Client()
	if err != nil {
		fail("Error:", err.Error())
	}

	raw, err := rpcClient.Dispense("kv")
	if err != nil {
		fail("Error:", err.Error())
	}
	kv := raw.(shared.KV)

	args := os.Args[1:]
	switch args[0] {
	case "get":
		value, err := kv.Get(args[1])
		if err != nil {
			fail("Error:", err.Error())
		}
		fmt.Println(string(value))
	case "put":
		if err := kv.Put(args[1], []byte(args[2])); err != nil {
			fail("Error:", err.Error())
		}
	default:
		fail("Please only use 'get' or 'put'")
	}
}

// Command kv-plugin-go-netrpc behaves like go-plugin's
// examples/grpc/plugin-go-netrpc: a net/rpc plugin "kv" (handshake of
// examples/grpc/shared: protocol version 1, BASIC_PLUGIN=hello) served with
// shared.KVPlugin, i.e. the methods Plugin.Put (args
// map[string]interface{}{"key": KEY, "value": []byte VALUE}, reply
// *interface{}) and Plugin.Get (args KEY string, reply []byte).
//
//	Put: VALUE + "\n\nWritten from plugin-go-netrpc" into kv_KEY (cwd, 0644)
//	Get: the content of kv_KEY
//
// No GRPCServer, so go-plugin serves net/rpc only. Use it with
// KV_PROTO=netrpc kv-host.
package main

import (
	"fmt"
	"os"

	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/examples/grpc/shared"
)

// fileKV stores each key in the file kv_KEY in the working directory.
type fileKV struct{}

func (fileKV) Put(key string, value []byte) error {
	data := fmt.Sprintf("%s\n\nWritten from plugin-go-netrpc", value)
	return os.WriteFile("kv_"+key, []byte(data), 0o644)
}

func (fileKV) Get(key string) ([]byte, error) {
	return os.ReadFile("kv_" + key)
}

func main() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: shared.Handshake,
		Plugins: map[string]plugin.Plugin{
			"kv": &shared.KVPlugin{Impl: fileKV{}},
		},
	})
}

// Command kv-plugin-go-grpc is a go-plugin gRPC plugin serving the KV
// service like go-plugin's examples/grpc/plugin-go-grpc: Put stores
// VALUE + "\n\nWritten from plugin-go-grpc" in the file kv_KEY in the
// current directory, Get returns that file's content.
package main

import (
	"os"

	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/examples/grpc/shared"
)

type fileKV struct{}

func (fileKV) Put(key string, value []byte) error {
	data := append(append([]byte{}, value...), "\n\nWritten from plugin-go-grpc"...)
	return os.WriteFile("kv_"+key, data, 0o644)
}

func (fileKV) Get(key string) ([]byte, error) {
	return os.ReadFile("kv_" + key)
}

func main() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: shared.Handshake,
		Plugins: plugin.PluginSet{
			"kv": &shared.KVGRPCPlugin{Impl: fileKV{}},
		},
		GRPCServer: plugin.DefaultGRPCServer,
	})
}

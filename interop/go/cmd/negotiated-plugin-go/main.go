// Command negotiated-plugin-go behaves like go-plugin's
// examples/negotiated/plugin-go: it serves app protocol version 2 over
// net/rpc and version 3 over gRPC, and go-plugin picks the highest version
// the host offers. Each version tags what it writes and reads:
//
//	Put: VALUE + "\n\nWritten from plugin version N\n" into kv_KEY
//	Get: content of kv_KEY + "Read by plugin version N\n"
package main

import (
	"fmt"
	"os"

	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/examples/grpc/shared"
)

// versionedKV is a file-backed KV that marks its data with its version.
type versionedKV struct{ version int }

func (kv versionedKV) Put(key string, value []byte) error {
	data := fmt.Sprintf("%s\n\nWritten from plugin version %d\n", value, kv.version)
	return os.WriteFile("kv_"+key, []byte(data), 0o644)
}

func (kv versionedKV) Get(key string) ([]byte, error) {
	data, err := os.ReadFile("kv_" + key)
	if err != nil {
		return nil, err
	}
	return append(data, fmt.Sprintf("Read by plugin version %d\n", kv.version)...), nil
}

func main() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: shared.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{
			2: {"kv": &shared.KVPlugin{Impl: versionedKV{version: 2}}},
			3: {"kv": &shared.KVGRPCPlugin{Impl: versionedKV{version: 3}}},
		},
		GRPCServer: plugin.DefaultGRPCServer,
	})
}

// Command bidirectional-plugin-go is a go-plugin gRPC plugin serving the
// Counter service like go-plugin's examples/bidirectional/plugin-go-grpc:
// the value of KEY is stored as JSON {"Value":N} in the file kv_KEY in the
// current directory. Put dials the host's AddHelper through the gRPC broker
// (done by the shared package's GRPCServer) and stores Sum(old, value), where
// old is the stored value, or 0 when the file is missing or unreadable.
package main

import (
	"encoding/json"
	"os"

	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/examples/bidirectional/shared"
)

type record struct {
	Value int64
}

type fileCounter struct{}

func (c fileCounter) Put(key string, value int64, helper shared.AddHelper) error {
	old, _ := c.Get(key) // missing or bad file counts as 0, like upstream
	sum, err := helper.Sum(old, value)
	if err != nil {
		return err
	}
	buf, err := json.Marshal(record{Value: sum})
	if err != nil {
		return err
	}
	return os.WriteFile("kv_"+key, buf, 0o644)
}

func (fileCounter) Get(key string) (int64, error) {
	buf, err := os.ReadFile("kv_" + key)
	if err != nil {
		return 0, err
	}
	var r record
	if err := json.Unmarshal(buf, &r); err != nil {
		return 0, err
	}
	return r.Value, nil
}

func main() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: shared.Handshake,
		Plugins: plugin.PluginSet{
			"counter": &shared.CounterPlugin{Impl: fileCounter{}},
		},
		GRPCServer: plugin.DefaultGRPCServer,
	})
}

// Command probe-plugin is a configurable go-plugin gRPC plugin for automated
// tests (checking that a non-Go host negotiates versions like a Go host).
//
// Environment:
//
//	PROBE_VERSIONS      comma list of app protocol versions served (default "1");
//	                    each serves {"kv": gRPC KV}
//	PROBE_COOKIE_KEY    magic cookie key (default "BASIC_PLUGIN")
//	PROBE_COOKIE_VALUE  magic cookie value (default "hello")
//
// The KV stores VALUE + "\n\nWritten from plugin-go-grpc" in kv_KEY in the
// working directory, like kv-plugin-go-grpc.
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

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

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return def
}

func main() {
	versions := map[int]plugin.PluginSet{}
	for _, f := range strings.Split(envOr("PROBE_VERSIONS", "1"), ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			fmt.Fprintf(os.Stderr, "probe-plugin: bad version %q in PROBE_VERSIONS\n", f)
			os.Exit(1)
		}
		versions[n] = plugin.PluginSet{"kv": &shared.KVGRPCPlugin{Impl: fileKV{}}}
	}

	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: plugin.HandshakeConfig{
			MagicCookieKey:   envOr("PROBE_COOKIE_KEY", "BASIC_PLUGIN"),
			MagicCookieValue: envOr("PROBE_COOKIE_VALUE", "hello"),
		},
		VersionedPlugins: versions,
		GRPCServer:       plugin.DefaultGRPCServer,
	})
}

// Command kv-plugin-go-grpc is a go-plugin gRPC plugin serving the KV
// service like go-plugin's examples/grpc/plugin-go-grpc: Put stores
// VALUE + "\n\nWritten from plugin-go-grpc" in the file kv_KEY in the
// current directory, Get returns that file's content.
//
// With KV_PLUGIN_DEBUG=1 (exactly "1") it serves in go-plugin's test
// ("debug") mode instead, like a Terraform provider started with -debug:
// no cookie check, no handshake line; once listening it prints one JSON line
// on stdout, the reattach config in the shape of one provider of
// Terraform's TF_REATTACH_PROVIDERS:
//
//	{"Protocol":"grpc","ProtocolVersion":1,"Pid":1234,"Test":true,"Addr":{"Network":"unix","String":"/tmp/plugin..."}}
//
// It then serves until SIGINT/SIGTERM (or a host's controller Shutdown) and
// exits 0 once go-plugin has stopped serving.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"

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

// reattachAddr / reattachJSON: Terraform's ReattachConfig JSON
// (TF_REATTACH_PROVIDERS values), field names and order included.
type reattachAddr struct {
	Network string
	String  string
}

type reattachJSON struct {
	Protocol        string
	ProtocolVersion int
	Pid             int
	Test            bool
	Addr            reattachAddr
}

func serveConfig() *plugin.ServeConfig {
	return &plugin.ServeConfig{
		HandshakeConfig: shared.Handshake,
		Plugins: plugin.PluginSet{
			"kv": &shared.KVGRPCPlugin{Impl: fileKV{}},
		},
		GRPCServer: plugin.DefaultGRPCServer,
	}
}

// serveDebug serves in go-plugin's test mode and returns the exit code.
func serveDebug() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	reattachCh := make(chan *plugin.ReattachConfig, 1)
	closeCh := make(chan struct{})
	cfg := serveConfig()
	cfg.Test = &plugin.ServeTestConfig{
		Context:          ctx,
		ReattachConfigCh: reattachCh,
		CloseCh:          closeCh,
	}
	go plugin.Serve(cfg)

	select {
	case rc := <-reattachCh:
		// One Write: the JSON object and "\n".
		enc := json.NewEncoder(os.Stdout)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(reattachJSON{
			Protocol:        string(rc.Protocol),
			ProtocolVersion: rc.ProtocolVersion,
			Pid:             rc.Pid,
			Test:            rc.Test,
			Addr:            reattachAddr{Network: rc.Addr.Network(), String: rc.Addr.String()},
		}); err != nil {
			fmt.Fprintln(os.Stderr, "kv-plugin-go-grpc:", err)
			return 1
		}
		_ = os.Stdout.Sync()
	case <-closeCh:
		// Serve gave up before listening (it has logged why on stderr).
		fmt.Fprintln(os.Stderr, "kv-plugin-go-grpc: serving ended before the reattach config was sent")
		return 1
	}
	<-closeCh
	return 0
}

func main() {
	if os.Getenv("KV_PLUGIN_DEBUG") == "1" {
		os.Exit(serveDebug())
	}
	plugin.Serve(serveConfig())
}

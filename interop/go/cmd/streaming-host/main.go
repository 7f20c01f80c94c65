// Command streaming-host behaves like go-plugin's examples/streaming host
// (main.go): it launches ./plugin/streamer (relative to the working
// directory) over gRPC only, with 1000-byte gRPC message limits, configures
// the "streamer" plugin with the file path given as the only argument and a
// chunk size of 10, writes "Lorem ipsum dolor sit amet", reads it back and
// logs "received N bytes" (hclog JSON at Trace on stderr).
//
// Usage: streaming-host PATH
//
// Deliberate additions for goplug's tests (both documented in README.md):
//   - after the Read, the bytes read are also printed as one line on stdout,
//     so tests need not parse the log;
//   - the plugin is killed before every log.Fatal after NewClient (upstream's
//     log.Fatal skips the deferred Kill and leaves the plugin running). The
//     message and exit code 1 stay those of log.Fatal.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/exec"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/examples/streaming/shared"
	"google.golang.org/grpc"
)

const (
	msgSizeLimit = 1000
	chunkSize    = 10
	text         = "Lorem ipsum dolor sit amet"
)

func main() {
	if len(os.Args) != 2 {
		log.Fatal("expected path to file as an argument")
	}
	path := os.Args[1]

	logger := hclog.New(&hclog.LoggerOptions{
		Level:      hclog.Trace,
		Output:     os.Stderr,
		JSONFormat: true,
	})

	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: plugin.HandshakeConfig{
			ProtocolVersion:  1,
			MagicCookieKey:   "BASIC_PLUGIN",
			MagicCookieValue: "hello",
		},
		Plugins:          map[string]plugin.Plugin{"streamer": &shared.StreamerPlugin{}},
		Cmd:              exec.Command("./plugin/streamer"),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           logger,
		GRPCDialOptions: []grpc.DialOption{
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(msgSizeLimit)),
			grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(msgSizeLimit)),
		},
	})
	defer client.Kill()

	// fatal: log.Fatal like upstream, but kill the plugin first.
	fatal := func(err error) {
		client.Kill()
		log.Fatal(err)
	}

	logger.Debug("launching a client")

	rpcClient, err := client.Client()
	if err != nil {
		fatal(err)
	}
	raw, err := rpcClient.Dispense("streamer")
	if err != nil {
		fatal(err)
	}
	streamer := raw.(shared.Streamer)

	ctx := context.Background()
	if err := streamer.Configure(ctx, path, chunkSize); err != nil {
		fatal(err)
	}
	if err := streamer.Write(ctx, []byte(text)); err != nil {
		fatal(err)
	}
	logger.Debug("writing finished")

	b, err := streamer.Read(ctx)
	if err != nil {
		fatal(err)
	}
	logger.Debug(fmt.Sprintf("received %d bytes", len(b)), "bytes", string(b))
	fmt.Println(string(b))
}

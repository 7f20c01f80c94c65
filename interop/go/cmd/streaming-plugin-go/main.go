// Command streaming-plugin-go behaves like go-plugin's
// examples/streaming/plugin: a gRPC plugin "streamer" (handshake
// BASIC_PLUGIN=hello, protocol version 1) backed by a file. Configure
// remembers the path (the chunk size is handled by the example's shared
// gRPC server), Write truncates/creates the file (mode 0644) and writes the
// bytes, Read returns the whole file. Logs hclog JSON at Trace on stderr.
//
// Copy or link it to ./plugin/streamer for streaming-host.
//
// One deliberate difference, see README.md: the example's shared server ends
// the client-streaming Write RPC with status OK but without a response
// message. grpc-go v1.61 clients accept that; the grpc-go v1.83 client this
// module uses (and go-plugin's HEAD pins) fails the call with
// "cardinality violation: received no response message from
// non-server-streaming RPC". So by default this plugin sends an empty
// Write.Response after the shared server's Write has succeeded. With
// STREAMER_UPSTREAM=1 it serves shared.StreamerPlugin unchanged (no
// response message), like the upstream example binary.
package main

import (
	"context"
	"io"
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/examples/streaming/proto"
	"github.com/hashicorp/go-plugin/examples/streaming/shared"
	"google.golang.org/grpc"
)

// fileStreamer implements shared.Streamer on top of one file.
type fileStreamer struct {
	logger hclog.Logger
	path   string
}

func (s *fileStreamer) Configure(_ context.Context, path string, _ int64) error {
	s.path = path
	return nil
}

func (s *fileStreamer) Read(_ context.Context) ([]byte, error) {
	s.logger.Debug("FileStreamer: Read", "path", s.path)
	f, err := os.Open(s.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

func (s *fileStreamer) Write(_ context.Context, b []byte) error {
	s.logger.Debug("FileStreamer: Write", "path", s.path)
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	n, err := f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	s.logger.Debug("FileStreamer: Write finished", "bytes written", n)
	return nil
}

// respondingServer is the example's shared gRPC server, except that a
// successful Write also sends the (empty) Write.Response message.
type respondingServer struct {
	*shared.StreamerGRPCServer
}

func (s respondingServer) Write(srv proto.StreamerService_WriteServer) error {
	if err := s.StreamerGRPCServer.Write(srv); err != nil {
		return err
	}
	return srv.SendAndClose(&proto.Write_Response{})
}

// respondingPlugin is shared.StreamerPlugin with respondingServer.
type respondingPlugin struct {
	shared.StreamerPlugin
}

func (p *respondingPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	proto.RegisterStreamerServiceServer(s, respondingServer{
		&shared.StreamerGRPCServer{Impl: p.Impl},
	})
	return nil
}

func main() {
	logger := hclog.New(&hclog.LoggerOptions{
		Level:      hclog.Trace,
		Output:     os.Stderr,
		JSONFormat: true,
	})

	impl := &fileStreamer{logger: logger}
	var streamer plugin.Plugin = &respondingPlugin{shared.StreamerPlugin{Impl: impl}}
	if os.Getenv("STREAMER_UPSTREAM") == "1" {
		streamer = &shared.StreamerPlugin{Impl: impl}
	}

	logger.Debug("plugin launched, about to be served")

	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: plugin.HandshakeConfig{
			ProtocolVersion:  1,
			MagicCookieKey:   "BASIC_PLUGIN",
			MagicCookieValue: "hello",
		},
		Plugins:    map[string]plugin.Plugin{"streamer": streamer},
		GRPCServer: plugin.DefaultGRPCServer,
		Logger:     logger,
	})
}

// Package tracedcounter is go-plugin's bidirectional Counter (the same
// proto, handshake and plugin name) with OpenTelemetry as a go-plugin user
// adds it: otelgrpc stats handlers on the plugin's server, on the host's
// connection (ClientConfig.GRPCDialOptions), on the host's brokered
// AddHelper server and on the plugin's broker dial, with go-plugin's own
// services filtered out. Contexts flow from the caller into every call, so
// one trace spans host, plugin and the callback.
//
// Spans are written as JSON lines to a file as each ends (WriteSpans), for
// goplug's trace interop tests to read.
package tracedcounter

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/examples/bidirectional/proto"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
)

// Handshake is go-plugin's examples' handshake.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "BASIC_PLUGIN",
	MagicCookieValue: "hello",
}

// UserCalls leaves out go-plugin's own services: health, and plugin.*
// (GRPCBroker's session-long stream, GRPCStdio, GRPCController).
var UserCalls = filters.None(filters.HealthCheck(), filters.ServicePrefix("plugin."))

// Span is one finished span as the tests read it.
type Span struct {
	Process    string            `json:"process"`
	Name       string            `json:"name"`
	TraceID    string            `json:"trace_id"`
	SpanID     string            `json:"span_id"`
	ParentID   string            `json:"parent_span_id"`
	Kind       string            `json:"kind"`
	Attributes map[string]string `json:"attributes"`
}

type fileExporter struct {
	mu      sync.Mutex
	file    *os.File
	process string
}

func (e *fileExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range spans {
		attrs := map[string]string{}
		for _, kv := range s.Attributes() {
			attrs[string(kv.Key)] = kv.Value.Emit()
		}
		parent := ""
		if s.Parent().IsValid() {
			parent = s.Parent().SpanID().String()
		}
		line, err := json.Marshal(Span{
			Process:    e.process,
			Name:       s.Name(),
			TraceID:    s.SpanContext().TraceID().String(),
			SpanID:     s.SpanContext().SpanID().String(),
			ParentID:   parent,
			Kind:       s.SpanKind().String(),
			Attributes: attrs,
		})
		if err != nil {
			return err
		}
		if _, err := e.file.Write(append(line, '\n')); err != nil {
			return err
		}
	}
	return nil
}

func (e *fileExporter) Shutdown(context.Context) error { return e.file.Close() }

// WriteSpans installs a tracer provider that appends every span to the file
// named by the environment variable pathVar as it ends (none when unset),
// and the W3C propagator otelgrpc needs (the global one is a no-op).
func WriteSpans(process, pathVar string) (*sdktrace.TracerProvider, error) {
	var opts []sdktrace.TracerProviderOption
	if path := os.Getenv(pathVar); path != "" {
		file, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, err
		}
		opts = append(opts, sdktrace.WithSyncer(&fileExporter{file: file, process: process}))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	return tp, nil
}

// EnvCarrier is ctx's trace context as OpenTelemetry's environment carrier
// (TRACEPARENT, TRACESTATE), for a plugin's environment.
func EnvCarrier(ctx context.Context) []string {
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	var env []string
	for key, value := range carrier {
		env = append(env, strings.ToUpper(key)+"="+value)
	}
	return env
}

// FromEnv is the context this process's environment carrier holds.
func FromEnv() context.Context {
	carrier := propagation.MapCarrier{}
	for _, key := range (propagation.TraceContext{}).Fields() {
		if value, ok := os.LookupEnv(strings.ToUpper(key)); ok {
			carrier[key] = value
		}
	}
	return propagation.TraceContext{}.Extract(context.Background(), carrier)
}

// ServerOptions are what a traced gRPC server adds: the otelgrpc handler.
func ServerOptions(opts []grpc.ServerOption) []grpc.ServerOption {
	return append(opts, grpc.StatsHandler(otelgrpc.NewServerHandler(otelgrpc.WithFilter(UserCalls))))
}

// DialOptions are what a traced gRPC client adds: the otelgrpc handler.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelgrpc.WithFilter(UserCalls)))}
}

// Counter is what the plugin implements; Put calls helper back.
type Counter interface {
	Put(ctx context.Context, key string, value int64, helper proto.AddHelperClient) error
	Get(ctx context.Context, key string) (int64, error)
}

// Plugin is the "counter" plugin, gRPC only.
type Plugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl Counter
}

// GRPCServer serves Impl.
func (p *Plugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	proto.RegisterCounterServer(s, &server{impl: p.Impl, broker: broker})
	return nil
}

// GRPCClient gives a *Client.
func (p *Plugin) GRPCClient(_ context.Context, broker *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return &Client{client: proto.NewCounterClient(c), broker: broker}, nil
}

type server struct {
	proto.UnimplementedCounterServer
	impl   Counter
	broker *plugin.GRPCBroker
}

func (s *server) Put(ctx context.Context, req *proto.PutRequest) (*proto.Empty, error) {
	conn, err := s.broker.DialWithOptions(req.AddServer, DialOptions()...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = conn.Close() }()
	return &proto.Empty{}, s.impl.Put(ctx, req.Key, req.Value, proto.NewAddHelperClient(conn))
}

func (s *server) Get(ctx context.Context, req *proto.GetRequest) (*proto.GetResponse, error) {
	v, err := s.impl.Get(ctx, req.Key)
	return &proto.GetResponse{Value: v}, err
}

// Client is the host's counter.
type Client struct {
	client proto.CounterClient
	broker *plugin.GRPCBroker
}

type adder struct {
	proto.UnimplementedAddHelperServer
}

func (adder) Sum(_ context.Context, req *proto.SumRequest) (*proto.SumResponse, error) {
	return &proto.SumResponse{R: req.A + req.B}, nil
}

// Put serves AddHelper (Sum = a + b) through the broker for the plugin
// to call back while it handles the put.
func (c *Client) Put(ctx context.Context, key string, value int64) error {
	var s *grpc.Server
	ready := make(chan struct{})
	id := c.broker.NextId()
	go c.broker.AcceptAndServe(id, func(opts []grpc.ServerOption) *grpc.Server {
		s = grpc.NewServer(ServerOptions(opts)...)
		proto.RegisterAddHelperServer(s, adder{})
		close(ready)
		return s
	})
	_, err := c.client.Put(ctx, &proto.PutRequest{AddServer: id, Key: key, Value: value})
	// AcceptAndServe builds the server only once the plugin dialed.
	select {
	case <-ready:
		s.Stop()
	case <-time.After(5 * time.Second):
	}
	return err
}

// Get reads a value.
func (c *Client) Get(ctx context.Context, key string) (int64, error) {
	resp, err := c.client.Get(ctx, &proto.GetRequest{Key: key})
	if err != nil {
		return 0, err
	}
	return resp.Value, nil
}

// Tracer is the test programs' own tracer.
func Tracer() trace.Tracer { return otel.Tracer("goplug.test/interop/tracedcounter") }

// Package bench is the benchmark service of goplug's bench/proto/bench.proto
// and its go-plugin glue, for cmd/bench-plugin and cmd/bench-host.
//
// The service is written out by hand instead of generated: interop/go has no
// protoc step, and the messages are wire-identical to the well-known
// google.protobuf.BytesValue (Payload) and google.protobuf.UInt64Value
// (Count), so wrapperspb serves for both.
package bench

import (
	"context"
	"net/rpc"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Handshake is the handshake of the benchmark plugins, Go and Rust alike.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "BENCH_PLUGIN",
	MagicCookieValue: "bench",
}

// PluginName is the plugin's name in both protocols' plugin sets.
const PluginName = "bench"

// Tiny is the tiny message of the unary and concurrent rows.
var Tiny = []byte("0123456789abcdef")

// Echoer is what the host calls, whichever the protocol.
type Echoer interface {
	Echo(data []byte) ([]byte, error)
}

// Server is the gRPC service bench.Bench.
type Server interface {
	Echo(context.Context, *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error)
	Callback(context.Context, *wrapperspb.UInt64Value) (*wrapperspb.UInt64Value, error)
}

// Register serves impl as bench.Bench on s.
func Register(s *grpc.Server, impl Server) {
	s.RegisterService(&serviceDesc, impl)
}

func unaryHandler[In any, Out any](method string, call func(Server, context.Context, *In) (*Out, error)) grpc.MethodHandler {
	return func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		in := new(In)
		if err := dec(in); err != nil {
			return nil, err
		}
		if interceptor == nil {
			return call(srv.(Server), ctx, in)
		}
		info := &grpc.UnaryServerInfo{Server: srv, FullMethod: "/bench.Bench/" + method}
		return interceptor(ctx, in, info, func(ctx context.Context, req any) (any, error) {
			return call(srv.(Server), ctx, req.(*In))
		})
	}
}

var serviceDesc = grpc.ServiceDesc{
	ServiceName: "bench.Bench",
	HandlerType: (*Server)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Echo", Handler: unaryHandler("Echo", Server.Echo)},
		{MethodName: "Callback", Handler: unaryHandler("Callback", Server.Callback)},
	},
	Metadata: "bench.proto",
}

// Client is the gRPC client of bench.Bench.
type Client struct {
	conn grpc.ClientConnInterface
}

// NewClient wraps a connection.
func NewClient(conn grpc.ClientConnInterface) *Client {
	return &Client{conn: conn}
}

// Echo calls bench.Bench/Echo.
func (c *Client) Echo(data []byte) ([]byte, error) {
	out := new(wrapperspb.BytesValue)
	err := c.conn.Invoke(context.Background(), "/bench.Bench/Echo", wrapperspb.Bytes(data), out)
	return out.GetValue(), err
}

// Callback asks the plugin to call the host's Echo calls times through
// broker id brokerID.
func (c *Client) Callback(brokerID, calls uint32) (uint64, error) {
	out := new(wrapperspb.UInt64Value)
	spec := uint64(brokerID)<<32 | uint64(calls)
	err := c.conn.Invoke(context.Background(), "/bench.Bench/Callback", wrapperspb.UInt64(spec), out)
	return out.GetValue(), err
}

// service implements bench.Bench; Callback needs a broker (the plugin's).
type service struct {
	broker *plugin.GRPCBroker
}

func (service) Echo(_ context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
	return in, nil
}

func (s service) Callback(_ context.Context, in *wrapperspb.UInt64Value) (*wrapperspb.UInt64Value, error) {
	id, calls := uint32(in.GetValue()>>32), uint32(in.GetValue())
	conn, err := s.broker.Dial(id)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	host := NewClient(conn)
	for range calls {
		if _, err := host.Echo(Tiny); err != nil {
			return nil, err
		}
	}
	return wrapperspb.UInt64(uint64(calls)), nil
}

// ServeOnBroker serves Echo on a new broker id of the host's broker and
// returns the id.
func ServeOnBroker(broker *plugin.GRPCBroker) uint32 {
	id := broker.NextId()
	go broker.AcceptAndServe(id, func(opts []grpc.ServerOption) *grpc.Server {
		s := grpc.NewServer(opts...)
		Register(s, service{})
		return s
	})
	return id
}

// GRPCClient is the host's view of the gRPC plugin.
type GRPCClient struct {
	*Client
	Broker *plugin.GRPCBroker
}

// RPCServer is the plugin's net/rpc side: Plugin.Echo.
type RPCServer struct{}

// Echo returns its argument.
func (RPCServer) Echo(args []byte, reply *[]byte) error {
	*reply = args
	return nil
}

// RPCClient is the host's view of the net/rpc plugin.
type RPCClient struct {
	client *rpc.Client
}

// Echo calls Plugin.Echo.
func (c RPCClient) Echo(data []byte) ([]byte, error) {
	var reply []byte
	err := c.client.Call("Plugin.Echo", data, &reply)
	return reply, err
}

// Plugin is the go-plugin plugin, both protocols.
type Plugin struct{}

// Server implements plugin.Plugin.
func (Plugin) Server(*plugin.MuxBroker) (any, error) { return RPCServer{}, nil }

// Client implements plugin.Plugin.
func (Plugin) Client(_ *plugin.MuxBroker, c *rpc.Client) (any, error) {
	return RPCClient{client: c}, nil
}

// GRPCServer implements plugin.GRPCPlugin.
func (Plugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	Register(s, service{broker: broker})
	return nil
}

// GRPCClient implements plugin.GRPCPlugin.
func (Plugin) GRPCClient(_ context.Context, broker *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return &GRPCClient{Client: NewClient(conn), Broker: broker}, nil
}

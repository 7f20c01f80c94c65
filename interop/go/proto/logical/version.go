// Package logical is Vault's optional plugin version service,
// logical.PluginVersion (goplug's goplug/proto/logical/version.proto), for
// the Go peers: a Go plugin registers it on go-plugin's gRPC server, a Go
// host asks it on go-plugin's connection to the plugin.
//
// Written out by hand like ../bench: interop/go has no protoc step, and the
// messages are wire-identical to well-known types: logical.Empty (no
// fields) to google.protobuf.Empty, logical.VersionReply
// {string plugin_version = 1} to google.protobuf.StringValue.
package logical

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// ServiceName is the gRPC service's full name.
const ServiceName = "logical.PluginVersion"

// Server is the gRPC service logical.PluginVersion.
type Server interface {
	Version(context.Context, *emptypb.Empty) (*wrapperspb.StringValue, error)
}

// Register serves version as the plugin's version on s.
func Register(s *grpc.Server, version string) {
	s.RegisterService(&serviceDesc, fixed(version))
}

// GRPCServer wraps go-plugin's ServeConfig.GRPCServer so that the server it
// builds also serves version: the one place a Go plugin can add a service
// of its own next to its plugin set.
func GRPCServer(base func([]grpc.ServerOption) *grpc.Server, version string) func([]grpc.ServerOption) *grpc.Server {
	return func(opts []grpc.ServerOption) *grpc.Server {
		s := base(opts)
		Register(s, version)
		return s
	}
}

// Version asks the plugin behind conn its version (go-plugin's
// *plugin.GRPCClient has the connection as Conn).
func Version(ctx context.Context, conn grpc.ClientConnInterface) (string, error) {
	out := new(wrapperspb.StringValue)
	err := conn.Invoke(ctx, "/logical.PluginVersion/Version", new(emptypb.Empty), out)
	return out.GetValue(), err
}

type fixed string

func (v fixed) Version(context.Context, *emptypb.Empty) (*wrapperspb.StringValue, error) {
	return wrapperspb.String(string(v)), nil
}

func versionHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := new(emptypb.Empty)
	if err := dec(in); err != nil {
		return nil, err
	}
	if interceptor == nil {
		return srv.(Server).Version(ctx, in)
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: "/logical.PluginVersion/Version"}
	return interceptor(ctx, in, info, func(ctx context.Context, req any) (any, error) {
		return srv.(Server).Version(ctx, req.(*emptypb.Empty))
	})
}

var serviceDesc = grpc.ServiceDesc{
	ServiceName: ServiceName,
	HandlerType: (*Server)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "Version", Handler: versionHandler}},
	Metadata:    "logical/version.proto",
}

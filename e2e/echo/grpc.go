package echo

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// GRPCMethod is the echo's one gRPC method. Its request is a
// google.protobuf.StringValue (any text) and its response a StringValue
// holding the JSON Reply, so any gRPC client can call it without generated
// code.
const GRPCMethod = "/weft.echo.v1.Echo/Call"

// grpcHandler is the method's server side.
type grpcHandler struct{ pod Pod }

// echoService is implemented by grpcHandler; the ServiceDesc names it.
type echoService interface {
	call(ctx context.Context, in *wrapperspb.StringValue) (*wrapperspb.StringValue, error)
}

var _ echoService = (*grpcHandler)(nil)

var echoServiceDesc = grpc.ServiceDesc{
	ServiceName: "weft.echo.v1.Echo",
	HandlerType: (*echoService)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Call",
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			return srv.(echoService).call(ctx, in)
		},
	}},
	Metadata: "weft/echo/v1/echo.proto",
}

func (h *grpcHandler) call(ctx context.Context, _ *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
	rep := Reply{Pod: h.pod, Protocol: "grpc", Method: GRPCMethod, Headers: map[string][]string{}}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		keys := make([]string, 0, len(md))
		for k := range md {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			rep.Headers[k] = md[k]
			if k == ":authority" && len(md[k]) > 0 {
				rep.Host = md[k][0]
			}
		}
	}
	if p, ok := peer.FromContext(ctx); ok {
		rep.Source = p.Addr.String()
		if p.LocalAddr != nil {
			rep.Local = p.LocalAddr.String()
		}
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			rep.TLS = tlsInfo(&ti.State)
		}
	}
	b, err := json.Marshal(rep)
	if err != nil {
		return nil, fmt.Errorf("encode reply: %w", err)
	}
	return wrapperspb.String(string(b)), nil
}

// newGRPCServer serves the echo method and the standard health service
// (reporting SERVING) for gRPC probes.
func newGRPCServer(pod Pod, opts ...grpc.ServerOption) *grpc.Server {
	s := grpc.NewServer(opts...)
	s.RegisterService(&echoServiceDesc, &grpcHandler{pod: pod})
	hs := health.NewServer()
	healthpb.RegisterHealthServer(s, hs)
	return s
}

// grpcCall makes one echo call to addr over plaintext HTTP/2.
func grpcCall(ctx context.Context, addr, message string) (Result, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return Result{}, fmt.Errorf("grpc client for %s: %w", addr, err)
	}
	defer func() { _ = conn.Close() }() // the call's error is what matters
	out := new(wrapperspb.StringValue)
	if err := conn.Invoke(ctx, GRPCMethod, wrapperspb.String(message), out); err != nil {
		return Result{}, fmt.Errorf("grpc call %s: %w", addr, err)
	}
	var rep Reply
	if err := json.Unmarshal([]byte(out.GetValue()), &rep); err != nil {
		return Result{}, fmt.Errorf("parse grpc reply from %s: %w", addr, err)
	}
	return Result{Proto: "grpc", Reply: &rep}, nil
}

package echo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

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

// GRPCStreamMethod is the echo's server-streaming method: its request is a
// StringValue holding a count n (1 to 1000; anything else means 3), and it
// answers n StringValues, each a JSON Reply whose Query is its index.
const GRPCStreamMethod = "/weft.echo.v1.Echo/Stream"

// grpcHandler is the method's server side.
type grpcHandler struct{ pod Pod }

// echoService is implemented by grpcHandler; the ServiceDesc names it.
type echoService interface {
	call(ctx context.Context, in *wrapperspb.StringValue) (*wrapperspb.StringValue, error)
	stream(in *wrapperspb.StringValue, out grpc.ServerStream) error
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
	Streams: []grpc.StreamDesc{{
		StreamName:    "Stream",
		ServerStreams: true,
		Handler: func(srv any, stream grpc.ServerStream) error {
			in := new(wrapperspb.StringValue)
			if err := stream.RecvMsg(in); err != nil {
				return err
			}
			return srv.(echoService).stream(in, stream)
		},
	}},
	Metadata: "weft/echo/v1/echo.proto",
}

func (h *grpcHandler) stream(in *wrapperspb.StringValue, out grpc.ServerStream) error {
	n, err := strconv.Atoi(strings.TrimSpace(in.GetValue()))
	if err != nil || n < 1 || n > 1000 {
		n = 3
	}
	first, err := h.call(out.Context(), in)
	if err != nil {
		return err
	}
	var rep Reply
	if err := json.Unmarshal([]byte(first.GetValue()), &rep); err != nil {
		return fmt.Errorf("decode reply: %w", err)
	}
	rep.Method = GRPCStreamMethod
	for i := range n {
		rep.Query = strconv.Itoa(i)
		b, err := json.Marshal(rep)
		if err != nil {
			return fmt.Errorf("encode reply: %w", err)
		}
		if err := out.SendMsg(wrapperspb.String(string(b))); err != nil {
			return err
		}
	}
	return nil
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

// grpcStream calls the streaming method asking for n replies and returns
// the first reply with the number of messages received.
func grpcStream(ctx context.Context, addr string, n int) (Result, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return Result{}, fmt.Errorf("grpc client for %s: %w", addr, err)
	}
	defer func() { _ = conn.Close() }() // the stream's errors are what matter
	st, err := conn.NewStream(ctx, &grpc.StreamDesc{StreamName: "Stream", ServerStreams: true}, GRPCStreamMethod)
	if err != nil {
		return Result{}, fmt.Errorf("grpc stream %s: %w", addr, err)
	}
	if err := st.SendMsg(wrapperspb.String(strconv.Itoa(n))); err != nil {
		return Result{}, fmt.Errorf("grpc stream %s: send: %w", addr, err)
	}
	if err := st.CloseSend(); err != nil {
		return Result{}, fmt.Errorf("grpc stream %s: close send: %w", addr, err)
	}
	res := Result{Proto: "grpc-stream"}
	for {
		out := new(wrapperspb.StringValue)
		err := st.RecvMsg(out)
		if err == io.EOF {
			break
		}
		if err != nil {
			return Result{}, fmt.Errorf("grpc stream %s: after %d messages: %w", addr, res.Messages, err)
		}
		res.Messages++
		if res.Reply == nil {
			var rep Reply
			if err := json.Unmarshal([]byte(out.GetValue()), &rep); err != nil {
				return Result{}, fmt.Errorf("parse grpc reply from %s: %w", addr, err)
			}
			res.Reply = &rep
		}
	}
	return res, nil
}

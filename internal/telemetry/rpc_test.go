package telemetry

import (
	"context"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/attribute"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"

	"github.com/agentpdp/agentpdp/internal/testutil/loopback"
)

// serveHealth serves the health service with opts on a loopback port and
// returns a connection to it and the port.
func serveHealth(t *testing.T, opts ...grpc.ServerOption) (*grpc.ClientConn, int) {
	t.Helper()
	srv := grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	conn := loopback.Serve(t, srv)
	_, port, err := net.SplitHostPort(conn.Target())
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return conn, p
}

// serverSpans makes one good and one failing health check under a parent
// span the caller sends, and returns the server's spans and the parent.
func serverSpans(t *testing.T, serve func(trace.TracerProvider) []grpc.ServerOption) ([]sdktrace.ReadOnlySpan, trace.SpanContext, int) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	conn, port := serveHealth(t, serve(tp)...)
	client := healthpb.NewHealthClient(conn)
	ctx, parent := sdktrace.NewTracerProvider().Tracer("agent").Start(context.Background(), "agent step")
	md := metadata.MD{}
	propagation.TraceContext{}.Inject(ctx, metadataCarrier(md))
	ctx = metadata.NewOutgoingContext(ctx, md)
	if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	client.Check(ctx, &healthpb.HealthCheckRequest{Service: "nope"}) // NOT_FOUND
	parent.End()
	// A server span ends once its status is sent, which can be just after
	// the client has its answer; and the two may end in either order.
	for deadline := time.Now().Add(5 * time.Second); len(rec.Ended()) < 2 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := rec.Ended()
	slices.SortFunc(spans, func(a, b sdktrace.ReadOnlySpan) int {
		return strings.Compare(attrMap(a.Attributes())["rpc.response.status_code"], attrMap(b.Attributes())["rpc.response.status_code"])
	})
	return spans, parent.SpanContext(), port
}

// metadataCarrier lets a propagator write gRPC metadata.
type metadataCarrier metadata.MD

func (c metadataCarrier) Get(k string) string {
	if v := metadata.MD(c).Get(k); len(v) > 0 {
		return v[0]
	}
	return ""
}
func (c metadataCarrier) Set(k, v string) { metadata.MD(c).Set(k, v) }
func (c metadataCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// TestServerSpan: the server's span per RPC is what otelgrpc's own handler
// makes (name, kind, parent from the caller's trace context, status and
// every attribute, server.address and server.port included), though
// rpcHandler passes otelgrpc only the End event.
func TestServerSpan(t *testing.T) {
	tel := func(tp trace.TracerProvider) []grpc.ServerOption {
		opts, err := (&Telemetry{Tracer: tp, Meter: metricnoop.NewMeterProvider(), Propagator: propagation.TraceContext{}}).ServerOptions()
		if err != nil {
			t.Fatal(err)
		}
		return opts
	}
	plain := func(tp trace.TracerProvider) []grpc.ServerOption {
		return []grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler(otelgrpc.WithTracerProvider(tp),
			otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()), otelgrpc.WithPropagators(propagation.TraceContext{})))}
	}
	got, gotParent, gotPort := serverSpans(t, tel)
	want, wantParent, wantPort := serverSpans(t, plain)
	if len(got) != 2 || len(want) != 2 {
		t.Fatalf("%d spans, otelgrpc alone %d; want 2", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Name() != w.Name() || g.SpanKind() != w.SpanKind() || g.Status() != w.Status() {
			t.Errorf("span %d: %s %v %v, otelgrpc alone %s %v %v", i, g.Name(), g.SpanKind(), g.Status(),
				w.Name(), w.SpanKind(), w.Status())
		}
		if g.Parent().SpanID() != gotParent.SpanID() || !g.Parent().IsRemote() || w.Parent().SpanID() != wantParent.SpanID() {
			t.Errorf("span %d: parent %v, want the caller's span %v", i, g.Parent().SpanID(), gotParent.SpanID())
		}
		ga, wa := attrMap(g.Attributes()), attrMap(w.Attributes())
		if ga["server.port"] != strconv.Itoa(gotPort) || wa["server.port"] != strconv.Itoa(wantPort) {
			t.Errorf("span %d: server.port %q, want %d", i, ga["server.port"], gotPort)
		}
		delete(ga, "server.port")
		delete(wa, "server.port")
		if !maps.Equal(ga, wa) {
			t.Errorf("span %d attributes:\n got %v\nwant %v", i, ga, wa)
		}
	}
}

func attrMap(kvs []attribute.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.Emit()
	}
	return m
}

// BenchmarkServerHandler is the server's per-call stats work with tracing
// on and metrics off: otelgrpc's handler given every event, as grpc-go
// delivers them for a unary call, against rpcHandler.
func BenchmarkServerHandler(b *testing.B) {
	tp := sdktrace.NewTracerProvider() // spans end with no processor: the handlers' work alone
	otel := otelgrpc.NewServerHandler(otelgrpc.WithTracerProvider(tp), otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelgrpc.WithPropagators(propagation.TraceContext{}))
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 7443}
	info := &stats.RPCTagInfo{FullMethodName: "/agentpdp.v1.AuthorizationService/Authorize"}
	for name, h := range map[string]stats.Handler{"otelgrpc": otel, "rpcHandler": &rpcHandler{spans: otel}} {
		b.Run(name, func(b *testing.B) {
			conn := metadata.NewIncomingContext(h.TagConn(context.Background(), &stats.ConnTagInfo{LocalAddr: local}), metadata.MD{})
			b.ReportAllocs()
			for b.Loop() {
				ctx := h.TagRPC(conn, info)
				begin := time.Now()
				for _, ev := range []stats.RPCStats{&stats.Begin{BeginTime: begin}, &stats.InHeader{LocalAddr: local},
					&stats.InPayload{}, &stats.OutHeader{}, &stats.OutPayload{}, &stats.OutTrailer{}} {
					h.HandleRPC(ctx, ev)
				}
				h.HandleRPC(ctx, &stats.End{BeginTime: begin, EndTime: time.Now()})
			}
		})
	}
}

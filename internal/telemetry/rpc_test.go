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

// serverSpans serves the health service with the options serve gives for
// a tracer provider, makes one good and one failing check from a client
// that traces its calls and sends their trace context (otelgrpc's client
// handler), and returns the server's spans (in status code order), the
// client's span ids and the server's port.
func serverSpans(t *testing.T, serve func(trace.TracerProvider) []grpc.ServerOption) ([]sdktrace.ReadOnlySpan, map[trace.SpanID]bool, int) {
	t.Helper()
	rec, agent := tracetest.NewSpanRecorder(), tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	srv := grpc.NewServer(serve(tp)...)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	conn := loopback.Serve(t, srv, grpc.WithStatsHandler(otelgrpc.NewClientHandler(
		otelgrpc.WithTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(agent))),
		otelgrpc.WithPropagators(propagation.TraceContext{}))))
	client := healthpb.NewHealthClient(conn)
	ctx := context.Background()
	if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	client.Check(ctx, &healthpb.HealthCheckRequest{Service: "nope"}) // NOT_FOUND
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
	callers := map[trace.SpanID]bool{}
	for _, s := range agent.Ended() {
		callers[s.SpanContext().SpanID()] = true
	}
	_, port, err := net.SplitHostPort(conn.Target())
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return spans, callers, p
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
	got, gotCallers, gotPort := serverSpans(t, tel)
	want, wantCallers, wantPort := serverSpans(t, plain)
	if len(got) != 2 || len(want) != 2 {
		t.Fatalf("%d spans, otelgrpc alone %d; want 2", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Name() != w.Name() || g.SpanKind() != w.SpanKind() || g.Status() != w.Status() {
			t.Errorf("span %d: %s %v %v, otelgrpc alone %s %v %v", i, g.Name(), g.SpanKind(), g.Status(),
				w.Name(), w.SpanKind(), w.Status())
		}
		if !gotCallers[g.Parent().SpanID()] || !g.Parent().IsRemote() || !wantCallers[w.Parent().SpanID()] {
			t.Errorf("span %d: parent %v, want one of the caller's spans %v", i, g.Parent().SpanID(), gotCallers)
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

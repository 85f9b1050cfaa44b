package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
	"github.com/agentpdp/agentpdp/internal/audit"
	"github.com/agentpdp/agentpdp/internal/decision"
	"github.com/agentpdp/agentpdp/internal/eval"
	"github.com/agentpdp/agentpdp/internal/ratelimit"
	"github.com/agentpdp/agentpdp/internal/telemetry"
)

// discard is a span exporter that drops spans, so the benchmark measures
// the PDP's tracing cost, not a collector's.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

type benchSetup struct {
	audit     string // "", "async", "durable"
	telemetry bool
}

// BenchmarkAuthorizeGRPC measures Authorize over a real loopback listener
// against the example email policy: the in-memory limiter, with and without
// the audit trail, tracing and metrics. decisions/s is the figure to read.
func BenchmarkAuthorizeGRPC(b *testing.B) {
	for _, s := range []benchSetup{{}, {audit: "async"}, {audit: "durable"}, {telemetry: true}, {audit: "async", telemetry: true}} {
		name := fmt.Sprintf("audit=%s/telemetry=%v", orNone(s.audit), s.telemetry)
		b.Run(name, func(b *testing.B) { benchAuthorize(b, s) })
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func benchAuthorize(b *testing.B, s benchSetup) {
	c, _ := eval.NewCompiler(eval.Options{})
	set, err := c.LoadFS(os.DirFS("../../examples/policies"), "examples/policies")
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := decision.Config{Policies: fixedSet{set}, Limiter: ratelimit.NewMemory(ratelimit.MemoryOptions{}), Logger: log,
		Now: func() time.Time { return time.Date(2026, 11, 24, 15, 0, 0, 0, time.UTC) }}
	var opts []grpc.ServerOption
	if s.audit != "" {
		d, _ := audit.ParseDurability(s.audit)
		trail, err := audit.Open(audit.Options{Dir: b.TempDir(), ChainID: "bench", Durability: d, Logger: log})
		if err != nil {
			b.Fatal(err)
		}
		defer trail.Close(context.Background())
		cfg.Audit = trail
	}
	if s.telemetry {
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}))
		defer tp.Shutdown(context.Background())
		exp, _ := prometheus.New()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
		defer mp.Shutdown(context.Background())
		tel := &telemetry.Telemetry{Tracer: tp, Meter: mp, Propagator: propagation.TraceContext{}}
		cfg.Tracer = tp.Tracer("bench")
		if cfg.Metrics, err = telemetry.NewMetrics(mp, telemetry.Gauges{}); err != nil {
			b.Fatal(err)
		}
		opts = tel.ServerOptions()
	}
	d, err := decision.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	srv, err := New(Config{Decider: d, Logger: log, ServerOptions: opts})
	if err != nil {
		b.Fatal(err)
	}
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis, nil, time.Second) }()
	defer func() { cancel(); <-done }()
	cc := dial(b, lis.Addr().String())
	client := pb.NewAuthorizationServiceClient(cc)
	args, _ := structpb.NewStruct(map[string]any{"to": []any{"alice@customer.com"}, "subject": "Re", "body": "Thanks"})
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pbb *testing.PB) {
		i := 0
		for pbb.Next() {
			i++
			_, err := client.Authorize(context.Background(), &pb.AuthorizeRequest{Agent: &pb.Agent{Id: "email-agent"},
				Principal: &pb.Principal{Id: fmt.Sprintf("u%d", i)}, Tool: "gmail.send", Args: args})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "decisions/s")
}

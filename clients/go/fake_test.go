package pdpclient_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pdpclient "github.com/agentpdp/agentpdp/clients/go"
	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
)

// fakePDP is an in-process AuthorizationService for what a real PDP cannot
// be made to do on cue: fail N times, answer slowly, show what it received.
type fakePDP struct {
	pb.UnimplementedAuthorizationServiceServer
	failFirst   int64 // answer UNAVAILABLE this many times
	delay       time.Duration
	calls       atomic.Int64
	mu          sync.Mutex
	traceparent []string
	outcomes    []*pb.ReportOutcomeRequest
}

func (f *fakePDP) Authorize(ctx context.Context, req *pb.AuthorizeRequest) (*pb.AuthorizeResponse, error) {
	n := f.calls.Add(1)
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		f.mu.Lock()
		f.traceparent = append(f.traceparent, md.Get("traceparent")...)
		f.mu.Unlock()
	}
	if n <= f.failFirst {
		return nil, status.Error(codes.Unavailable, "not yet")
	}
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &pb.AuthorizeResponse{Decision: pb.Decision_DECISION_ALLOW, PolicyDecision: pb.Decision_DECISION_ALLOW,
		Mode: pb.Mode_MODE_ENFORCE, DecisionId: "0190f5d2-8a6b-7cde-8f00-000000000001"}, nil
}

func (f *fakePDP) ReportOutcome(_ context.Context, req *pb.ReportOutcomeRequest) (*pb.ReportOutcomeResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.outcomes = append(f.outcomes, req)
	return &pb.ReportOutcomeResponse{OutcomeId: "o1"}, nil
}

func startFake(t *testing.T, f *fakePDP) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	pb.RegisterAuthorizationServiceServer(s, f)
	go s.Serve(l)
	t.Cleanup(s.Stop)
	return l.Addr().String()
}

var echoReq = &pb.AuthorizeRequest{Agent: &pb.Agent{Id: "test-agent"}, Tool: "echo"}

func TestRetriesUnavailable(t *testing.T) {
	f := &fakePDP{failFirst: 2}
	c := newClient(t, startFake(t, f))
	resp, err := c.Authorize(context.Background(), echoReq)
	if err != nil || resp.GetDecision() != pb.Decision_DECISION_ALLOW {
		t.Fatalf("after two UNAVAILABLE: %v %v", resp, err)
	}
	if f.calls.Load() != 3 {
		t.Fatalf("%d attempts, want 3", f.calls.Load())
	}
}

func TestRetriesGiveUpClosed(t *testing.T) {
	f := &fakePDP{failFirst: 1 << 40}
	c := newClient(t, startFake(t, f), pdpclient.WithRetries(4, 5*time.Millisecond))
	resp, err := c.Authorize(context.Background(), echoReq)
	if err != nil || resp.GetDecision() != pb.Decision_DECISION_DENY || !pdpclient.IsUnavailable(resp) {
		t.Fatalf("want DENY pdp_unavailable: %v %v", resp, err)
	}
	if f.calls.Load() != 4 {
		t.Fatalf("%d attempts, want 4", f.calls.Load())
	}
}

func TestSlowPDPTimesOutClosed(t *testing.T) {
	f := &fakePDP{delay: 3 * time.Second}
	c := newClient(t, startFake(t, f), pdpclient.WithTimeout(100*time.Millisecond))
	start := time.Now()
	resp, err := c.Authorize(context.Background(), echoReq)
	if err != nil || resp.GetDecision() != pb.Decision_DECISION_DENY || !pdpclient.IsUnavailable(resp) {
		t.Fatalf("want DENY pdp_unavailable: %v %v", resp, err)
	}
	if !strings.Contains(resp.GetReasons()[0].GetMessage(), "DeadlineExceeded") {
		t.Fatalf("reason should say why: %q", resp.GetReasons()[0].GetMessage())
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("took %s with a 100 ms timeout", el)
	}
}

func TestTraceContextPropagates(t *testing.T) {
	f := &fakePDP{}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	c := newClient(t, startFake(t, f), pdpclient.WithTracing(otelgrpc.WithTracerProvider(tp)))

	ctx, span := tp.Tracer("agent").Start(context.Background(), "agent-step")
	if _, err := c.Authorize(ctx, echoReq); err != nil {
		t.Fatal(err)
	}
	span.End()
	traceID := span.SpanContext().TraceID().String()
	f.mu.Lock()
	got := append([]string(nil), f.traceparent...)
	f.mu.Unlock()
	if len(got) != 1 || !strings.Contains(got[0], traceID) {
		t.Fatalf("traceparent %v does not carry the caller's trace %s", got, traceID)
	}
	var rpcSpan bool
	for _, s := range rec.Ended() {
		if strings.Contains(s.Name(), "Authorize") && s.Parent().SpanID() == span.SpanContext().SpanID() {
			rpcSpan = true
		}
	}
	if !rpcSpan {
		t.Fatal("no client span for Authorize under the caller's span")
	}
}

func TestOutcomeReported(t *testing.T) {
	f := &fakePDP{}
	c, err := pdpclient.New(startFake(t, f))
	if err != nil {
		t.Fatal(err)
	}
	ok := pdpclient.Guard(c, pdpclient.ToolSpec{Agent: "test-agent", Tool: "echo"},
		func(context.Context, echoArgs) (string, error) { return "fine", nil })
	bad := pdpclient.Guard(c, pdpclient.ToolSpec{Agent: "test-agent", Tool: "echo"},
		func(context.Context, echoArgs) (string, error) { return "", errors.New("it broke") })
	ok(context.Background(), echoArgs{})
	bad(context.Background(), echoArgs{})
	c.Close() // waits for the background reports
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.outcomes) != 2 {
		t.Fatalf("%d outcome reports, want 2", len(f.outcomes))
	}
	var succeeded, failed bool
	for _, o := range f.outcomes {
		if o.GetDecisionId() == "" || o.GetAgentId() != "test-agent" {
			t.Fatalf("report %v", o)
		}
		switch o.GetStatus() {
		case pb.OutcomeStatus_OUTCOME_STATUS_SUCCEEDED:
			succeeded = true
		case pb.OutcomeStatus_OUTCOME_STATUS_FAILED:
			failed = o.GetSummary() == "it broke"
		}
	}
	if !succeeded || !failed {
		t.Fatalf("reports %v", f.outcomes)
	}
}

// Against the real PDP: the decision carries the caller's trace id when the
// server records spans (its trace_id field is empty when tracing is off).
func TestTraceIDReachesRealPDP(t *testing.T) {
	srv := startPDP(t)
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	c := newClient(t, srv.Addr, pdpclient.WithTracing(otelgrpc.WithTracerProvider(tp)))
	ctx, span := tp.Tracer("agent").Start(context.Background(), "agent-step")
	defer span.End()
	resp, err := c.Authorize(ctx, echoReq)
	if err != nil || resp.GetDecision() != pb.Decision_DECISION_ALLOW {
		t.Fatalf("%v %v", resp, err)
	}
	if resp.GetTraceId() == "" {
		t.Skip("this pdp serve sets no trace_id (tracing off)")
	}
	if want := span.SpanContext().TraceID().String(); resp.GetTraceId() != want {
		t.Fatalf("trace_id %s, want the caller's %s", resp.GetTraceId(), want)
	}
}

package audit

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentpdp/agentpdp/internal/testutil/cputime"
	"github.com/agentpdp/agentpdp/internal/testutil/interleave"

	agentpdpv1 "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
	"github.com/agentpdp/agentpdp/internal/testutil/loopback"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"
)

// authzStub answers Authorize the way the decision layer does with audit:
// build the record from the request, Append, fail closed on error. It has
// no policy work, so the audit's share is measured against the bare gRPC
// round trip: the worst case for the ratio.
type authzStub struct {
	agentpdpv1.UnimplementedAuthorizationServiceServer
	build bool // build the record (the decision layer's share)
	log   *Log // and append it
}

// sink keeps the "record" mode's records from being optimised away.
var sink atomic.Pointer[Record]

func (s *authzStub) Authorize(ctx context.Context, req *agentpdpv1.AuthorizeRequest) (*agentpdpv1.AuthorizeResponse, error) {
	resp := &agentpdpv1.AuthorizeResponse{Decision: agentpdpv1.Decision_DECISION_ALLOW}
	if !s.build {
		return resp, nil
	}
	r := decisionRecord(0, req.GetAgent().GetId(), "ALLOW")
	r.Tool, r.Args = req.GetTool(), req.GetArgs().AsMap()
	if s.log == nil {
		sink.Store(r)
		return resp, nil
	}
	if err := s.log.Append(ctx, r); err != nil {
		resp.Decision = agentpdpv1.Decision_DECISION_DENY
	}
	return resp, nil
}

// BenchmarkAuthorizeOverGRPC: unary Authorize over a real loopback TCP
// connection, 16 concurrent callers per CPU: "none" answers at once,
// "record" also builds the audit record (what the decision layer does
// anyway), "async" and "durable" append it too. record vs async is this
// package's share of decision throughput; cpu-µs/op (client and server
// together, all goroutines, the writer's included) is the steadier figure
// on a busy machine.
func BenchmarkAuthorizeOverGRPC(b *testing.B) {
	args, _ := structpb.NewStruct(map[string]any{"to": []any{"alice@customer.com"}, "subject": "refund", "body": "hello"})
	req := &agentpdpv1.AuthorizeRequest{Agent: &agentpdpv1.Agent{Id: "email-agent"}, Tool: "gmail.send", Args: args}
	for _, mode := range []Durability{"none", "record", Async, Durable} {
		b.Run(string(mode), func(b *testing.B) {
			stub := &authzStub{build: mode != "none"}
			if mode == Async || mode == Durable {
				o := testOptions(b.TempDir())
				o.Durability = mode
				stub.log = openLog(b, o)
				defer closeLog(b, stub.log)
			}
			client := serveAuthz(b, stub)
			ctx := context.Background()
			b.SetParallelism(16)
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cputime.Process()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := client.Authorize(ctx, req)
					if err != nil || resp.GetDecision() != agentpdpv1.Decision_DECISION_ALLOW {
						b.Errorf("Authorize = %v, %v", resp.GetDecision(), err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
			b.ReportMetric(float64(cputime.Process()-cpu0)/float64(b.N)/1e3, "cpu-µs/op")
			if stub.log != nil {
				b.ReportMetric(float64(stub.log.Stats().Refused), "refused")
			}
		})
	}
}

func serveAuthz(b *testing.B, s agentpdpv1.AuthorizationServiceServer) agentpdpv1.AuthorizationServiceClient {
	srv := grpc.NewServer()
	agentpdpv1.RegisterAuthorizationServiceServer(srv, s)
	return agentpdpv1.NewAuthorizationServiceClient(loopback.Serve(b, srv))
}

// BenchmarkAuthorizeInterleaved runs the same four servers as
// BenchmarkAuthorizeOverGRPC, alternating between them every 640 calls (in
// rotating order), so drift on a shared machine hits every mode alike. One
// op is one round of 640 calls per mode; run it with -benchtime 30x.
func BenchmarkAuthorizeInterleaved(b *testing.B) {
	args, _ := structpb.NewStruct(map[string]any{"to": []any{"alice@customer.com"}, "subject": "refund", "body": "hello"})
	req := &agentpdpv1.AuthorizeRequest{Agent: &agentpdpv1.Agent{Id: "email-agent"}, Tool: "gmail.send", Args: args}
	modes := []Durability{"none", "record", Async, Durable}
	clients := map[Durability]agentpdpv1.AuthorizationServiceClient{}
	logs := map[Durability]*Log{}
	for _, m := range modes {
		stub := &authzStub{build: m != "none"}
		if m == Async || m == Durable {
			o := testOptions(b.TempDir())
			o.Durability = m
			stub.log = openLog(b, o)
			logs[m] = stub.log
			defer closeLog(b, stub.log)
		}
		clients[m] = serveAuthz(b, stub)
	}
	ctx := context.Background()
	totals := interleave.Run(b, len(modes), 32, 20, func(v int) error {
		_, err := clients[modes[v]].Authorize(ctx, req)
		return err
	}, func(v int) {
		for l := logs[modes[v]]; l != nil && !l.Drained(); {
			time.Sleep(100 * time.Microsecond)
		}
	})
	for v, m := range modes {
		b.ReportMetric(totals[v].CPUPerCall(), string(m)+"-cpu-µs/op")
		b.ReportMetric(totals[v].PerSecond(), string(m)+"-decisions/s")
	}
}

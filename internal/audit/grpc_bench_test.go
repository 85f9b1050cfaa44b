package audit

import (
	"context"
	"net"
	"testing"

	agentpdpv1 "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"
)

// authzStub answers Authorize the way the decision layer does with audit:
// build the record from the request, Append, fail closed on error. It has
// no policy work, so the audit's share is measured against the bare gRPC
// round trip: the worst case for the ratio.
type authzStub struct {
	agentpdpv1.UnimplementedAuthorizationServiceServer
	log *Log
}

func (s *authzStub) Authorize(ctx context.Context, req *agentpdpv1.AuthorizeRequest) (*agentpdpv1.AuthorizeResponse, error) {
	resp := &agentpdpv1.AuthorizeResponse{Decision: agentpdpv1.Decision_DECISION_ALLOW}
	if s.log == nil {
		return resp, nil
	}
	r := decisionRecord(0, req.GetAgent().GetId(), "ALLOW")
	r.Tool, r.Args = req.GetTool(), req.GetArgs().AsMap()
	if err := s.log.Append(ctx, r); err != nil {
		resp.Decision = agentpdpv1.Decision_DECISION_DENY
	}
	return resp, nil
}

// BenchmarkAuthorizeOverGRPC: unary Authorize over a real loopback TCP
// connection, 16 concurrent callers per CPU, without audit, with async and
// with durable audit. decisions/s of none vs async is the throughput share
// the audit costs; cpu-µs/op (client and server together, all goroutines,
// the writer's included) is the steadier figure on a busy machine.
func BenchmarkAuthorizeOverGRPC(b *testing.B) {
	args, _ := structpb.NewStruct(map[string]any{"to": []any{"alice@customer.com"}, "subject": "refund", "body": "hello"})
	req := &agentpdpv1.AuthorizeRequest{Agent: &agentpdpv1.Agent{Id: "email-agent"}, Tool: "gmail.send", Args: args}
	for _, mode := range []Durability{"", Async, Durable} {
		name := string(mode)
		if name == "" {
			name = "none"
		}
		b.Run(name, func(b *testing.B) {
			stub := &authzStub{}
			if mode != "" {
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
			cpu0 := processCPU()
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
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N)/1e3, "cpu-µs/op")
			if stub.log != nil {
				b.ReportMetric(float64(stub.log.Stats().Refused), "refused")
			}
		})
	}
}

func serveAuthz(b *testing.B, s agentpdpv1.AuthorizationServiceServer) agentpdpv1.AuthorizationServiceClient {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer()
	agentpdpv1.RegisterAuthorizationServiceServer(srv, s)
	go srv.Serve(lis)
	b.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return agentpdpv1.NewAuthorizationServiceClient(conn)
}

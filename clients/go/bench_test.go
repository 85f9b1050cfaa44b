package pdpclient_test

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pdpclient "github.com/agentpdp/agentpdp/clients/go"
	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
)

// BenchmarkAuthorize measures one decision through the client against a
// real pdp serve on loopback.
func BenchmarkAuthorize(b *testing.B) {
	srv := startPDP(b)
	c := newClient(b, srv.Addr)
	req := &pb.AuthorizeRequest{Agent: &pb.Agent{Id: "test-agent"}, Principal: &pb.Principal{Id: "u1"},
		Tool: "echo", Args: mustStruct(b, map[string]any{"text": "hello"})}
	ctx := context.Background()
	// raw: the generated stub on a plain connection, for the client's overhead.
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	raw := pb.NewAuthorizationServiceClient(conn)
	b.Run("raw", func(b *testing.B) {
		for b.Loop() {
			if _, err := raw.Authorize(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			resp, _ := c.Authorize(ctx, req)
			if resp.GetDecision() != pb.Decision_DECISION_ALLOW {
				b.Fatalf("decision %v", resp)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb_ *testing.PB) {
			for pb_.Next() {
				resp, _ := c.Authorize(ctx, req)
				if resp.GetDecision() != pb.Decision_DECISION_ALLOW {
					b.Errorf("decision %v", resp)
					return
				}
			}
		})
	})
	var tl tools
	echo := pdpclient.Guard(c, pdpclient.ToolSpec{Agent: "test-agent", Tool: "echo", NoOutcome: true}, tl.echo)
	b.Run("guard", func(b *testing.B) {
		for b.Loop() {
			if _, err := echo(ctx, echoArgs{Text: "hello"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

package decision

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
	"github.com/agentpdp/agentpdp/internal/audit"
	"github.com/agentpdp/agentpdp/internal/ratelimit"
	"github.com/agentpdp/agentpdp/internal/testutil/cputime"
	"github.com/agentpdp/agentpdp/internal/testutil/examplepolicies"
	"github.com/agentpdp/agentpdp/internal/testutil/tuned"
)

// BenchmarkDecideAudit is one allowed gmail.send decision against the example
// email policy, in process, without and with the async file trail: the
// difference is what the audit costs a decision, free of the gRPC stack's
// noise. cpu-µs/op includes the trail's writer goroutine.
func BenchmarkDecideAudit(b *testing.B) {
	for _, withAudit := range []bool{false, true} {
		name := "audit=none"
		if withAudit {
			name = "audit=async"
		}
		b.Run(name, func(b *testing.B) { benchDecide(b, withAudit) })
	}
}

func benchDecide(b *testing.B, withAudit bool) {
	tuned.Runtime(b) // as pdp serve does
	set, scanner := examplepolicies.Load(b)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := Config{Policies: fixed{set}, Logger: log, Content: scanner, Now: func() time.Time { return now },
		Limiter: ratelimit.NewMemory(ratelimit.MemoryOptions{Clock: func() time.Time { return now }, SweepInterval: -1})}
	if withAudit {
		trail, err := audit.Open(audit.Options{Dir: b.TempDir(), ChainID: "bench", Logger: log})
		if err != nil {
			b.Fatal(err)
		}
		defer trail.Close(context.Background())
		cfg.Audit = trail
	}
	d, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	args, _ := structpb.NewStruct(map[string]any{"to": []any{"alice@customer.com"}, "subject": "Re", "body": "Thanks"})
	ctx := context.Background()
	b.ReportAllocs()
	cpu0 := cputime.Process()
	i := 0
	for b.Loop() {
		// 16 sends per principal: under the policy's 20 per hour, so every
		// call is allowed and audited in full.
		resp := d.Decide(ctx, &pb.AuthorizeRequest{Agent: &pb.Agent{Id: "email-agent"},
			Principal: &pb.Principal{Id: "u" + strconv.Itoa(i/16)}, Tool: "gmail.send", Args: args})
		if resp.Decision != pb.Decision_DECISION_ALLOW {
			b.Fatalf("decision %v: %v", resp.Decision, resp.Reasons)
		}
		i++
	}
	b.ReportMetric(float64(cputime.Process()-cpu0)/float64(b.N)/1e3, "cpu-µs/op")
}

// BenchmarkValidate is the checks every Authorize request passes before any
// policy sees it, on the benchmark's gmail.send request.
func BenchmarkValidate(b *testing.B) {
	args, _ := structpb.NewStruct(map[string]any{"to": []any{"alice@customer.com"}, "subject": "Re", "body": "Thanks"})
	req := &pb.AuthorizeRequest{Agent: &pb.Agent{Id: "email-agent"}, Principal: &pb.Principal{Id: "u1"},
		Tool: "gmail.send", Args: args}
	b.ReportAllocs()
	for b.Loop() {
		if err := Validate(req); err != nil {
			b.Fatal(err)
		}
	}
}

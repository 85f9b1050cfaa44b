package mcpproxy

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
	"github.com/agentpdp/agentpdp/internal/testutil/loopback"
)

// fakePDP is an AuthorizationService whose answers each test scripts, and
// which records what it was asked.
type fakePDP struct {
	pb.UnimplementedAuthorizationServiceServer
	mu        sync.Mutex
	authorize func(*pb.AuthorizeRequest) (*pb.AuthorizeResponse, error)
	scan      func(string) *pb.ContentScan
	wait      func(context.Context, *pb.WaitApprovalRequest) (*pb.WaitApprovalResponse, error)
	requests  []*pb.AuthorizeRequest
	outcomes  []*pb.ReportOutcomeRequest
}

func (f *fakePDP) Authorize(_ context.Context, req *pb.AuthorizeRequest) (*pb.AuthorizeResponse, error) {
	f.mu.Lock()
	f.requests = append(f.requests, proto.CloneOf(req))
	fn := f.authorize
	f.mu.Unlock()
	return fn(req)
}

func (f *fakePDP) ScanContent(_ context.Context, req *pb.ScanContentRequest) (*pb.ScanContentResponse, error) {
	out := &pb.ScanContentResponse{}
	for _, t := range req.GetTexts() {
		s := &pb.ContentScan{}
		if f.scan != nil {
			s = f.scan(t)
		}
		out.Results = append(out.Results, s)
	}
	return out, nil
}

func (f *fakePDP) WaitApproval(ctx context.Context, req *pb.WaitApprovalRequest) (*pb.WaitApprovalResponse, error) {
	return f.wait(ctx, req)
}

func (f *fakePDP) ReportOutcome(_ context.Context, req *pb.ReportOutcomeRequest) (*pb.ReportOutcomeResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.outcomes = append(f.outcomes, proto.CloneOf(req))
	return &pb.ReportOutcomeResponse{OutcomeId: "o1"}, nil
}

// toolRequests are the non-dry-run Authorize requests for tool.
func (f *fakePDP) toolRequests(tool string) []*pb.AuthorizeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*pb.AuthorizeRequest
	for _, r := range f.requests {
		if r.GetTool() == tool && !r.GetDryRun() {
			out = append(out, r)
		}
	}
	return out
}

// serveFake serves f on a loopback port and returns a client of it.
func serveFake(t *testing.T, f *fakePDP) pb.AuthorizationServiceClient {
	t.Helper()
	srv := grpc.NewServer()
	pb.RegisterAuthorizationServiceServer(srv, f)
	return pb.NewAuthorizationServiceClient(loopback.Serve(t, srv))
}

// allowAll answers ALLOW, and DENY default for tool "files.secret".
func allowAll(req *pb.AuthorizeRequest) (*pb.AuthorizeResponse, error) {
	if req.GetTool() == "files.secret" {
		return &pb.AuthorizeResponse{Decision: pb.Decision_DECISION_DENY, DecisionId: "d-deny",
			Reasons: []*pb.Reason{{RuleId: "default", Effect: pb.Effect_EFFECT_DENY, Message: "no rule matched"}}}, nil
	}
	return &pb.AuthorizeResponse{Decision: pb.Decision_DECISION_ALLOW, DecisionId: "d-" + req.GetTool()}, nil
}

// toolServer is an MCP server whose tools return fixed texts and count
// their runs.
type toolServer struct {
	mu    sync.Mutex
	runs  map[string]int
	texts map[string]string
}

func (s *toolServer) ran(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runs[name]
}

func (s *toolServer) mcpServer() *mcp.Server {
	srv := mcp.NewServer(&mcp.Implementation{Name: "files", Version: "1"}, nil)
	for name, text := range s.texts {
		srv.AddTool(&mcp.Tool{Name: name, InputSchema: map[string]any{"type": "object"}},
			func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				s.mu.Lock()
				s.runs[name]++
				s.mu.Unlock()
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}}, nil
			})
	}
	return srv
}

// relayed wires client -> Relay -> server in memory and returns the
// client session.
func relayed(t *testing.T, cfg Config, pdp pb.AuthorizationServiceClient, texts map[string]string) (*mcp.ClientSession, *toolServer) {
	t.Helper()
	ts := &toolServer{runs: map[string]int{}, texts: texts}
	p, err := New(cfg, pdp, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	serverT, upT := mcp.NewInMemoryTransports()
	if _, err := ts.mcpServer().Connect(ctx, serverT, nil); err != nil {
		t.Fatal(err)
	}
	up, _ := upT.Connect(ctx)
	downT, clientT := mcp.NewInMemoryTransports()
	down, _ := downT.Connect(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.Relay(ctx, p.NewStdioSession(), down, up)
	}()
	sess, err := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil).Connect(ctx, clientT, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sess.Close()
		cancel()
		<-done
		p.Close(time.Second)
	})
	return sess, ts
}

func testConfig() Config {
	return Config{AgentID: "agent-1", ServerName: "files", Principal: "alice", PDPTimeout: 2 * time.Second}
}

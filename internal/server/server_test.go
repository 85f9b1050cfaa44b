package server

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding/proto"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	reflectpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	gproto "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
	"github.com/agentpdp/agentpdp/internal/decision"
	"github.com/agentpdp/agentpdp/internal/eval"
	"github.com/agentpdp/agentpdp/internal/ratelimit"
	"github.com/agentpdp/agentpdp/internal/testutil/loopback"
)

type fixedSet struct{ set *eval.Set }

func (f fixedSet) Current() *eval.Set { return f.set }

// panicSet makes every decision panic, as a bug deep in evaluation would.
type panicSet struct{}

func (panicSet) Current() *eval.Set { panic("boom") }

type harness struct {
	agent, admin *grpc.ClientConn
	logs         *bytes.Buffer
}

func start(t *testing.T, src decision.PolicySource) *harness {
	t.Helper()
	if src == nil {
		c, err := eval.NewCompiler(eval.Options{})
		if err != nil {
			t.Fatal(err)
		}
		set, err := c.LoadFS(os.DirFS("../../examples/policies"), "examples/policies")
		if err != nil {
			t.Fatal(err)
		}
		src = fixedSet{set}
	}
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	d, err := decision.New(decision.Config{Policies: src, Limiter: ratelimit.NewMemory(ratelimit.MemoryOptions{}), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{Decider: d, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	agentLis, _ := net.Listen("tcp", "127.0.0.1:0")
	adminLis, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, agentLis, adminLis, time.Second) }()
	h := &harness{logs: logs}
	h.agent = dial(t, agentLis.Addr().String())
	h.admin = dial(t, adminLis.Addr().String())
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return h
}

func dial(t testing.TB, addr string) *grpc.ClientConn { return loopback.Dial(t, addr) }

func args(t *testing.T, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAuthorizeOverGRPC(t *testing.T) {
	h := start(t, nil)
	client := pb.NewAuthorizationServiceClient(h.agent)
	ctx := context.Background()
	resp, err := client.Authorize(ctx, &pb.AuthorizeRequest{
		Agent: &pb.Agent{Id: "email-agent"}, Principal: &pb.Principal{Id: "u1"}, Tool: "gmail.delete",
		Args: args(t, map[string]any{"id": "m1"}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Decision != pb.Decision_DECISION_DENY || resp.Reasons[0].RuleId != "never-delete" ||
		resp.Reasons[0].Tags["compliance"] != "SOX" || resp.PolicyVersion == "" || resp.DecisionId == "" {
		t.Fatalf("got %v", resp)
	}
	resp, err = client.Authorize(ctx, &pb.AuthorizeRequest{
		Agent: &pb.Agent{Id: "email-agent"}, Principal: &pb.Principal{Id: "u1"}, Tool: "gmail.read",
		Resource: &pb.Resource{Kind: "message", Attributes: args(t, map[string]any{"label": "support"})},
	})
	if err != nil || resp.Decision != pb.Decision_DECISION_ALLOW {
		t.Fatalf("read: %v %v", resp, err)
	}
}

func TestInvalidRequestsNameTheField(t *testing.T) {
	h := start(t, nil)
	client := pb.NewAuthorizationServiceClient(h.agent)
	deep := map[string]any{"leaf": 1}
	for i := 0; i < 40; i++ {
		deep = map[string]any{"k": deep}
	}
	cases := []struct {
		name  string
		req   *pb.AuthorizeRequest
		field string
	}{
		{"no agent", &pb.AuthorizeRequest{Tool: "t"}, "agent.id"},
		{"no tool", &pb.AuthorizeRequest{Agent: &pb.Agent{Id: "a"}}, "tool"},
		{"deep args", &pb.AuthorizeRequest{Agent: &pb.Agent{Id: "a"}, Tool: "t", Args: args(t, deep)}, "args"},
		{"huge args", &pb.AuthorizeRequest{Agent: &pb.Agent{Id: "a"}, Tool: "t",
			Args: args(t, map[string]any{"b": strings.Repeat("x", 2<<20)})}, "args"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.Authorize(context.Background(), tc.req)
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), tc.field) {
				t.Fatalf("got %v, want INVALID_ARGUMENT naming %s", err, tc.field)
			}
		})
	}
}

// rawCodec sends bytes as they are, so a test can put invalid UTF-8 on the
// wire, which no protobuf library would marshal.
type rawCodec struct{}

func (rawCodec) Name() string { return proto.Name }
func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*(v.(*[]byte)) = data.Materialize()
	return nil
}

func TestInvalidUTF8NamesTheField(t *testing.T) {
	h := start(t, nil)
	cases := map[string]*pb.AuthorizeRequest{
		"tool": {Agent: &pb.Agent{Id: "a"}, Tool: "MARK"},
		"args.to": {Agent: &pb.Agent{Id: "a"}, Tool: "t",
			Args: args(t, map[string]any{"to": "MARK"})},
		"args.list": {Agent: &pb.Agent{Id: "a"}, Tool: "t",
			Args: args(t, map[string]any{"list": []any{"ok", "MARK"}})},
		"principal.id": {Agent: &pb.Agent{Id: "a"}, Tool: "t", Principal: &pb.Principal{Id: "MARK"}},
	}
	for field, req := range cases {
		t.Run(field, func(t *testing.T) {
			b, err := gproto.Marshal(req)
			if err != nil {
				t.Fatal(err)
			}
			b = bytes.Replace(b, []byte("MARK"), []byte{0xff, 0xfe, 0xfd, 0xfc}, 1)
			var out []byte
			err = h.agent.Invoke(context.Background(), "/agentpdp.v1.AuthorizationService/Authorize", b, &out,
				grpc.ForceCodecV2(rawCodec{}))
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), field+": invalid UTF-8") {
				t.Fatalf("got %v", err)
			}
		})
	}
}

func TestPanicIsDenyAndLogged(t *testing.T) {
	h := start(t, panicSet{})
	resp, err := pb.NewAuthorizationServiceClient(h.agent).Authorize(context.Background(),
		&pb.AuthorizeRequest{Agent: &pb.Agent{Id: "a"}, Tool: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Decision != pb.Decision_DECISION_DENY || resp.Reasons[0].RuleId != decision.ReasonInternal {
		t.Fatalf("got %v", resp)
	}
	if !strings.Contains(h.logs.String(), "boom") {
		t.Fatalf("panic not logged: %s", h.logs)
	}
}

func TestHealthAndReflection(t *testing.T) {
	h := start(t, nil)
	for name, cc := range map[string]*grpc.ClientConn{"agent": h.agent, "admin": h.admin} {
		hr, err := healthpb.NewHealthClient(cc).Check(context.Background(), &healthpb.HealthCheckRequest{})
		if err != nil || hr.Status != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("%s health: %v %v", name, hr, err)
		}
	}
	stream, err := reflectpb.NewServerReflectionClient(h.agent).ServerReflectionInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectpb.ServerReflectionRequest{
		MessageRequest: &reflectpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.Name)
	}
	if !strings.Contains(strings.Join(names, ","), "agentpdp.v1.AuthorizationService") {
		t.Fatalf("services %v", names)
	}
	_ = stream.CloseSend()
	if _, err := stream.Recv(); err != io.EOF && err != nil {
		t.Logf("reflection close: %v", err)
	}
}

func TestAdminPortDoesNotServeAgents(t *testing.T) {
	h := start(t, nil)
	_, err := pb.NewAuthorizationServiceClient(h.admin).Authorize(context.Background(),
		&pb.AuthorizeRequest{Agent: &pb.Agent{Id: "a"}, Tool: "t"})
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("admin port answered Authorize: %v", err)
	}
}

package e2e

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
	"github.com/agentpdp/agentpdp/internal/testutil/proc"
)

// pdpBin is the pdp binary TestMain builds once.
var pdpBin string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "agentpdp-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	pdpBin = filepath.Join(dir, "pdp")
	start := time.Now()
	build := exec.Command(goTool(), "build", "-o", pdpBin, "github.com/agentpdp/agentpdp/cmd/pdp")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: go build ./cmd/pdp:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "e2e: built pdp in %s\n", time.Since(start).Round(time.Millisecond))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// Policies the tests run against: nothing in them depends on the time of
// day, and each test uses its own agent or principal so that tests can run
// in parallel against one pair of replicas.
const (
	// Rate limit of doc.read per principal, shared by every replica.
	readLimit = 40

	mainPolicy = `apiVersion: agentpdp/v1
kind: AgentPolicy
name: e2e
agents: ["e2e-*"]
mode: enforce
default: deny
rules:
  - id: reads
    tools: ["doc.read"]
    effect: allow
  - id: send-needs-approval
    tools: ["mail.send"]
    effect: require_approval
    message: a human checks every mail
  - id: never-delete
    tools: ["doc.delete"]
    effect: deny
rate_limits:
  - id: reads-per-hour
    tools: ["doc.read"]
    limit: 40
    window: 1h
    key: principal.id
approval:
  ttl: 1m
`
	expiringPolicy = `apiVersion: agentpdp/v1
kind: AgentPolicy
name: expiring
agents: ["expiring-agent"]
mode: enforce
default: deny
rules:
  - id: send-needs-approval
    tools: ["mail.send"]
    effect: require_approval
approval:
  ttl: 1s
`
	flakyPolicy = `apiVersion: agentpdp/v1
kind: AgentPolicy
name: flaky
agents: ["flaky-*"]
mode: enforce
default: deny
rules:
  - id: reads
    tools: ["doc.read"]
    effect: allow
  - id: never-delete
    tools: ["doc.delete"]
    effect: deny
suspend_after:
  denials: 3
  window: 1m
`
)

func writePolicies(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range map[string]string{
		"e2e.yaml": mainPolicy, "expiring.yaml": expiringPolicy, "flaky.yaml": flakyPolicy,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// pdp is one running `pdp serve` process and clients for both its ports.
type pdp struct {
	name      string
	agentAddr string
	adminAddr string
	cmd       *exec.Cmd
	exited    chan struct{} // closed when the process has exited
	stderr    *syncBuffer

	agent     pb.AuthorizationServiceClient // on --listen
	health    healthpb.HealthClient         // on --listen
	approvals pb.ApprovalServiceClient      // on --admin-listen
	admin     pb.AdminServiceClient         // on --admin-listen
	agentConn *grpc.ClientConn              // for calling admin services on the agent port
}

// startPDP starts `pdp serve` on free loopback ports with the given Redis
// and policies, waits until its gRPC health check answers SERVING, and
// stops it when the test ends. Its stderr goes to the test log if the test
// failed (or always, with AGENTPDP_E2E_LOGS=1).
func startPDP(t *testing.T, name, redisURL, policies string, extra ...string) *pdp {
	t.Helper()
	var lastErr error
	// A free port can be taken between probing and binding; retry then.
	for attempt := 0; attempt < 3; attempt++ {
		p, err := tryStartPDP(t, name, redisURL, policies, extra...)
		if err == nil {
			return p
		}
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	t.Fatalf("%s: %v", name, lastErr)
	return nil
}

func tryStartPDP(t *testing.T, name, redisURL, policies string, extra ...string) (*pdp, error) {
	p := &pdp{name: name, agentAddr: freeAddr(t), adminAddr: freeAddr(t), stderr: &syncBuffer{},
		exited: make(chan struct{})}
	args := []string{"serve",
		"--listen", p.agentAddr, "--admin-listen", p.adminAddr,
		"--redis", redisURL, "--audit-dir", filepath.Join(t.TempDir(), "audit"),
		"--policies", policies, "--replica-id", name, "--shutdown-grace", "2s"}
	p.cmd = exec.Command(pdpBin, append(args, extra...)...)
	p.cmd.Env = cleanEnv()
	p.cmd.Stdout = p.stderr
	p.cmd.Stderr = p.stderr
	setProcAttr(p.cmd)
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() || os.Getenv("AGENTPDP_E2E_LOGS") != "" {
			t.Logf("---- %s (pid %d) stderr ----\n%s", p.name, p.cmd.Process.Pid, p.stderr.String())
		}
	})

	var err error
	conn, err := grpc.NewClient(p.agentAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { conn.Close() })
	adminConn, err := grpc.NewClient(p.adminAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { adminConn.Close() })
	p.agentConn = conn
	p.agent = pb.NewAuthorizationServiceClient(conn)
	p.health = healthpb.NewHealthClient(conn)
	p.approvals = pb.NewApprovalServiceClient(adminConn)
	p.admin = pb.NewAdminServiceClient(adminConn)

	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-p.exited:
			return nil, fmt.Errorf("pdp serve exited at start (%v):\n%s", p.cmd.ProcessState, p.stderr.String())
		default:
		}
		if p.serving() && p.adminServing() {
			return p, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("pdp serve not SERVING within 15s:\n%s", p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serving reports whether the agent port's health check answers SERVING.
func (p *pdp) serving() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	r, err := p.health.Check(ctx, &healthpb.HealthCheckRequest{})
	return err == nil && r.Status == healthpb.HealthCheckResponse_SERVING
}

func (p *pdp) adminServing() bool {
	conn, err := grpc.NewClient(p.adminAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return false
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	r, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return err == nil && r.Status == healthpb.HealthCheckResponse_SERVING
}

// running reports whether the process has not exited.
func (p *pdp) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM, then SIGKILL after 5 s.
func (p *pdp) stop() {
	if !p.running() {
		return
	}
	proc.Stop(p.cmd.Process, p.exited, 5*time.Second)
}

// cleanEnv is this process's environment without PDP_* settings, so that
// only the flags configure the servers under test.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PDP_") {
			env = append(env, kv)
		}
	}
	return env
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// call is one agent call.
type call struct {
	agent, principal, tool string
	args                   map[string]any
	approvalID             string
}

func (c call) request(t testing.TB) *pb.AuthorizeRequest {
	args, err := structpb.NewStruct(c.args)
	if err != nil {
		t.Fatalf("args: %v", err)
	}
	return &pb.AuthorizeRequest{Agent: &pb.Agent{Id: c.agent}, Principal: &pb.Principal{Id: c.principal},
		Tool: c.tool, Args: args, ApprovalId: c.approvalID}
}

// authorize calls Authorize on p's agent port and fails the test on a
// transport error.
func (p *pdp) authorize(t testing.TB, c call) *pb.AuthorizeResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := p.agent.Authorize(ctx, c.request(t))
	if err != nil {
		t.Fatalf("%s: Authorize(%s %s): %v", p.name, c.agent, c.tool, err)
	}
	return resp
}

func reasonIDs(r *pb.AuthorizeResponse) []string {
	var ids []string
	for _, x := range r.GetReasons() {
		ids = append(ids, x.RuleId)
	}
	return ids
}

// reason returns the reason with rule id id, or nil.
func reason(r *pb.AuthorizeResponse, id string) *pb.Reason {
	for _, x := range r.GetReasons() {
		if x.RuleId == id {
			return x
		}
	}
	return nil
}

func describe(r *pb.AuthorizeResponse) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s", r.GetDecision())
	for _, x := range r.GetReasons() {
		fmt.Fprintf(&b, " [%s: %s]", x.RuleId, x.Message)
	}
	return b.String()
}

// expect fails unless r is decision d with a reason id (when id is set).
func expect(t testing.TB, what string, r *pb.AuthorizeResponse, d pb.Decision, id string) *pb.Reason {
	t.Helper()
	if r.GetDecision() != d {
		t.Fatalf("%s: got %s, want %s with reason %q", what, describe(r), d, id)
	}
	if id == "" {
		return nil
	}
	x := reason(r, id)
	if x == nil {
		t.Fatalf("%s: got %s, want reason %q", what, describe(r), id)
	}
	return x
}

// eventually retries f until it returns nil or within passes.
func eventually(t testing.TB, within time.Duration, what string, f func() error) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		err := f()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("%s: not within %s: %v", what, within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncBuffer collects a process's output; it keeps the first 256 KiB and
// the last 256 KiB.
type syncBuffer struct {
	mu      sync.Mutex
	head    bytes.Buffer
	tail    []byte
	dropped int
}

const bufKeep = 256 << 10

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n0 := len(p)
	if room := bufKeep - b.head.Len(); room > 0 {
		n := min(room, len(p))
		b.head.Write(p[:n])
		p = p[n:]
	}
	if len(p) > 0 {
		b.tail = append(b.tail, p...)
		if over := len(b.tail) - bufKeep; over > 0 {
			b.dropped += over
			b.tail = append(b.tail[:0], b.tail[over:]...)
		}
	}
	return n0, nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dropped == 0 {
		return b.head.String() + string(b.tail)
	}
	return fmt.Sprintf("%s\n... %d bytes left out ...\n%s", b.head.String(), b.dropped, b.tail)
}

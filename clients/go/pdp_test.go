package pdpclient_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"gopkg.in/yaml.v3"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
	"github.com/agentpdp/agentpdp/internal/testutil/proc"
)

// The tests run a real `pdp serve`, built once per test binary from this
// repository (or PDP_BINARY when set).
var (
	pdpBinary string
	buildDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

var buildOnce sync.Once
var buildErr error

func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv("PDP_BINARY"); p != "" {
			pdpBinary = p
			return
		}
		root, err := filepath.Abs("../..")
		if err != nil {
			buildErr = err
			return
		}
		if buildDir, err = os.MkdirTemp("", "pdpclient-test-"); err != nil {
			buildErr = err
			return
		}
		pdpBinary = filepath.Join(buildDir, "pdp")
		cmd := exec.Command("go", "build", "-o", pdpBinary, "./cmd/pdp")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/pdp: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return pdpBinary
}

// pdpServer is one running `pdp serve`.
type pdpServer struct {
	Addr, Admin string
	Policies    string
	AuditDir    string
	cmd         *exec.Cmd
	logs        *syncBuffer
	done        chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// freeAddr returns a loopback address nothing listens on (yet).
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// testPolicies is a policy directory: the client tests' own policy and the
// example email-agent policy without its business-hours rule, so no test
// depends on the wall clock.
func testPolicies(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	own, err := os.ReadFile("testdata/policies/test-agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "test-agent.yaml"), own, 0o644); err != nil {
		t.Fatal(err)
	}
	email, err := os.ReadFile("../../examples/policies/email-agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	email = dropRule(t, email, "outside-business-hours")
	if err := os.WriteFile(filepath.Join(dir, "email-agent.yaml"), email, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func dropRule(t testing.TB, doc []byte, id string) []byte {
	t.Helper()
	var root yaml.Node
	if err := yaml.Unmarshal(doc, &root); err != nil {
		t.Fatal(err)
	}
	m := root.Content[0]
	found := false
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != "rules" {
			continue
		}
		rules := m.Content[i+1]
		kept := rules.Content[:0]
		for _, r := range rules.Content {
			isIt := false
			for j := 0; j+1 < len(r.Content); j += 2 {
				if r.Content[j].Value == "id" && r.Content[j+1].Value == id {
					isIt = true
				}
			}
			if isIt {
				found = true
				continue
			}
			kept = append(kept, r)
		}
		rules.Content = kept
	}
	if !found {
		t.Fatalf("rule %s not found in the example policy", id)
	}
	out, err := yaml.Marshal(&root)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// startPDP runs `pdp serve` on free loopback ports with the test policies
// and waits until both listeners report SERVING. A port that was free when
// picked can be taken before pdp binds it (by a connection's source port,
// or another test package's server): then it tries new ports.
func startPDP(t testing.TB) *pdpServer {
	t.Helper()
	policies := testPolicies(t)
	var err error
	for range 5 {
		var s *pdpServer
		if s, err = tryStartPDPAt(t, freeAddr(t), freeAddr(t), policies); err == nil {
			return s
		} else if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	t.Fatal(err)
	return nil
}

func startPDPAt(t testing.TB, addr, admin, policies string) *pdpServer {
	t.Helper()
	s, err := tryStartPDPAt(t, addr, admin, policies)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func tryStartPDPAt(t testing.TB, addr, admin, policies string) (*pdpServer, error) {
	t.Helper()
	s := &pdpServer{Addr: addr, Admin: admin, Policies: policies, AuditDir: t.TempDir(),
		logs: &syncBuffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(binary(t), "serve", "--listen", addr, "--admin-listen", admin,
		"--audit-dir", s.AuditDir, "--policies", policies, "--log-format", "text", "--shutdown-grace", "2s")
	s.cmd.Stdout = s.logs
	s.cmd.Stderr = s.logs
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("pdp serve logs:\n%s", s.logs.String())
		}
	})
	for _, a := range []string{addr, admin} {
		if err := waitServing(a, s.done, 15*time.Second); err != nil {
			s.Stop()
			return nil, fmt.Errorf("pdp at %s: %w\nlogs:\n%s", a, err, s.logs.String())
		}
	}
	return s, nil
}

// Stop ends the server (SIGTERM, then SIGKILL) and waits for it.
func (s *pdpServer) Stop() {
	select {
	case <-s.done:
		return
	default:
	}
	proc.Stop(s.cmd.Process, s.done, 5*time.Second)
}

func waitServing(addr string, exited <-chan struct{}, timeout time.Duration) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.Config{
			BaseDelay: 10 * time.Millisecond, Multiplier: 1.5, MaxDelay: 100 * time.Millisecond}}))
	if err != nil {
		return err
	}
	defer conn.Close()
	h := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		resp, err := h.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("pdp exited before serving")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not SERVING after %s (last error: %v)", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// approvals is an ApprovalService client on the server's admin listener.
func (s *pdpServer) approvals(t testing.TB) pb.ApprovalServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(s.Admin, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return pb.NewApprovalServiceClient(conn)
}

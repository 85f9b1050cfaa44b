// Package mcpe2e tests `pdp mcp-proxy` end to end: a real `pdp serve`, a
// real MCP server built with the Go SDK (this test binary, re-executed),
// the proxy binary over stdio and Streamable HTTP, and the SDK's client.
package mcpe2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
)

// harness is the pdp the tests share, started once by TestMain.
type harness struct {
	root      string // repository root
	pdpBin    string
	pdpAddr   string
	adminAddr string
	auditDir  string
	authz     pb.AuthorizationServiceClient
	approvals pb.ApprovalServiceClient
	// scanErr is why ScanContent does not work on this pdp, or nil.
	scanErr error
}

var h *harness

func TestMain(m *testing.M) {
	if mode := os.Getenv(envServer); mode != "" {
		runTestServer(mode)
		return
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "mcpe2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	hh, stop, err := startHarness(tmp)
	// A port free when picked can be taken before pdp binds it: try others.
	for try := 0; try < 4 && err != nil && strings.Contains(err.Error(), "address already in use"); try++ {
		hh, stop, err = startHarness(tmp)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mcp e2e setup:", err)
		return 1
	}
	defer stop()
	h = hh
	return m.Run()
}

func startHarness(tmp string) (*harness, func(), error) {
	root, err := repoRoot()
	if err != nil {
		return nil, nil, err
	}
	hh := &harness{root: root, pdpBin: filepath.Join(tmp, "pdp"), auditDir: filepath.Join(tmp, "audit"),
		pdpAddr: freeAddr(), adminAddr: freeAddr()}
	if bin := os.Getenv("PDP_BINARY"); bin != "" {
		hh.pdpBin = bin // a pdp built elsewhere, e.g. by CI
	} else if err := buildPDP(root, hh.pdpBin); err != nil {
		return nil, nil, err
	}
	logFile, err := os.Create(filepath.Join(tmp, "pdp-serve.log"))
	if err != nil {
		return nil, nil, err
	}
	serve := exec.Command(hh.pdpBin, "serve", "--listen", hh.pdpAddr, "--admin-listen", hh.adminAddr,
		"--audit-dir", hh.auditDir, "--policies", filepath.Join(root, "test/mcp/testdata/policies"))
	serve.Stdout, serve.Stderr = logFile, logFile
	if err := serve.Start(); err != nil {
		return nil, nil, fmt.Errorf("start pdp serve: %w", err)
	}
	stop := func() {
		_ = serve.Process.Kill()
		_ = serve.Wait()
		logFile.Close()
	}
	if err := hh.connect(); err != nil {
		stop()
		log, _ := os.ReadFile(logFile.Name())
		return nil, nil, fmt.Errorf("%w\npdp serve log:\n%s", err, log)
	}
	return hh, stop, nil
}

func buildPDP(root, out string) error {
	build := exec.Command("go", "build", "-o", out, "./cmd/pdp")
	build.Dir = root
	if msg, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/pdp: %v\n%s", err, msg)
	}
	return nil
}

// connect dials the pdp and waits until it answers.
func (hh *harness) connect() error {
	dial := func(addr string) *grpc.ClientConn {
		cc, _ := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		return cc
	}
	hh.authz = pb.NewAuthorizationServiceClient(dial(hh.pdpAddr))
	hh.approvals = pb.NewApprovalServiceClient(dial(hh.adminAddr))
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := hh.authz.Authorize(ctx, &pb.AuthorizeRequest{Agent: &pb.Agent{Id: "mcp-agent"}, Tool: "files.read", DryRun: true})
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pdp serve did not answer: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, hh.scanErr = hh.authz.ScanContent(ctx, &pb.ScanContentRequest{Texts: []string{"hello"}})
	return nil
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the test directory")
		}
		dir = parent
	}
}

// freeAddr is a loopback address with a port that was free a moment ago.
func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitListening waits until something accepts connections on addr.
func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s: %v", addr, err)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

// decide waits for the pending approval of tool for principal and
// decides it, as a human would on the admin port.
func (hh *harness) decide(ctx context.Context, principal, tool string, approve bool, note string) error {
	for {
		list, err := hh.approvals.ListPending(ctx, &pb.ListPendingRequest{AgentId: "mcp-agent", PrincipalId: principal, Tool: tool})
		if err != nil {
			return fmt.Errorf("list pending: %w", err)
		}
		if len(list.GetApprovals()) > 0 {
			_, err := hh.approvals.Decide(ctx, &pb.DecideRequest{ApprovalId: list.GetApprovals()[0].GetId(),
				Approve: approve, Approver: "test-approver", Note: note})
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no pending approval of %s for %s: %w", tool, principal, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// auditRecord waits for an audit record that match accepts.
func (hh *harness) auditRecord(t *testing.T, what string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if rec := hh.scanAudit(match); rec != nil {
			return rec
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no audit record: %s", what)
	return nil
}

func (hh *harness) scanAudit(match func(map[string]any) bool) map[string]any {
	paths, _ := filepath.Glob(filepath.Join(hh.auditDir, "*.jsonl"))
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) == nil && match(rec) {
				f.Close()
				return rec
			}
		}
		f.Close()
	}
	return nil
}

// scannerMissing reports whether the pdp has no content scanner (the
// detectors are not wired into pdp serve yet).
func (hh *harness) scannerMissing() bool {
	return status.Code(hh.scanErr) == codes.FailedPrecondition
}

// calls reads the tool call log of a test server.
func calls(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(strings.ReplaceAll(string(b), " ", "_"))
}

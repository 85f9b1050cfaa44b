package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
	"github.com/agentpdp/agentpdp/internal/audit"
)

// load calls Authorize from n goroutines until stop closes, and returns the
// decision ids the server answered: each is a promise that its record is
// in the trail.
func load(p *pdp, n int, stop <-chan struct{}) (ids map[string]bool) {
	var mu sync.Mutex
	ids = map[string]bool{}
	var wg sync.WaitGroup
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				req := &pb.AuthorizeRequest{Agent: &pb.Agent{Id: "e2e-audit"},
					Principal: &pb.Principal{Id: fmt.Sprintf("p%d-%d", w, i)}, Tool: "doc.read"}
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				resp, err := p.agent.Authorize(ctx, req)
				cancel()
				if err != nil {
					continue // the server is going away: nothing was promised
				}
				mu.Lock()
				ids[resp.DecisionId] = true
				mu.Unlock()
			}
		}(w)
	}
	<-stop
	wg.Wait()
	return ids
}

// trailIDs verifies the chain and returns the decision ids in it, and
// whether the chain ends in a torn line. A SIGKILL in the middle of a write
// can leave one at the end of the newest file; it is allowed there only:
// that record was never fsynced, so no answer waited on it.
func trailIDs(t *testing.T, dir string) (ids map[string]bool, torn bool) {
	t.Helper()
	files := mustGlob(t, dir)
	rep, err := audit.Verify(files...)
	if b := rep.FirstBreak(); b != nil {
		chain := rep.Chains[0].Files
		if b.Kind != audit.BreakTruncated || len(rep.Chains) != 1 || b.File != chain[len(chain)-1] {
			t.Fatalf("audit chain broken: %v", err)
		}
		torn = true
	} else if err != nil {
		t.Fatal(err)
	}
	ids = map[string]bool{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var r struct {
				Type       string `json:"type"`
				DecisionID string `json:"decision_id"`
			}
			if json.Unmarshal(sc.Bytes(), &r) == nil && r.Type == audit.TypeDecision {
				ids[r.DecisionID] = true
			}
		}
		fh.Close()
	}
	return ids, torn
}

func missing(answered, inTrail map[string]bool) []string {
	var out []string
	for id := range answered {
		if !inTrail[id] {
			out = append(out, id)
		}
	}
	return out
}

// TestDurableAuditSurvivesSIGKILL kills pdp serve in durable mode under
// concurrent load: every decision a client received must be in the
// verified trail, and a restart continues the chain.
func TestDurableAuditSurvivesSIGKILL(t *testing.T) {
	dir := t.TempDir()
	policies := writePolicies(t)
	p := startPDP(t, "crash", "", policies, "--audit-dir", dir, "--audit-durability", "durable")
	stop := make(chan struct{})
	done := make(chan map[string]bool)
	go func() { done <- load(p, 16, stop) }()
	time.Sleep(1500 * time.Millisecond)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	close(stop)
	answered := <-done
	if len(answered) < 50 {
		t.Fatalf("only %d decisions answered before the kill; the test proves nothing", len(answered))
	}
	inTrail, torn := trailIDs(t, dir)
	if m := missing(answered, inTrail); len(m) > 0 {
		t.Fatalf("%d of %d answered decisions are not in the trail, e.g. %s", len(m), len(answered), m[0])
	}
	t.Logf("%d answered decisions, all among %d records; torn last line: %v", len(answered), len(inTrail), torn)

	// The same replica restarted on the same directory cuts any torn line
	// away (keeping it in a .torn file) and continues its chain.
	p2 := startPDP(t, "crash", "", policies, "--audit-dir", dir, "--audit-durability", "durable")
	p2.authorize(t, call{agent: "e2e-audit", principal: "after", tool: "doc.read"})
	p2.stop()
	rep, err := audit.Verify(mustGlob(t, dir)...)
	if err != nil {
		t.Fatalf("chain broken after restart: %v", err)
	}
	if after, _ := trailIDs(t, dir); len(after) != len(inTrail)+1 {
		t.Fatalf("after restart the trail holds %d decisions, want %d", len(after), len(inTrail)+1)
	}
	if kept, _ := filepath.Glob(filepath.Join(dir, "*.torn")); torn != (len(kept) == 1) {
		t.Fatalf("torn line before restart: %v, but .torn files after it: %v", torn, kept)
	}
	t.Logf("after restart: %d records in one chain", rep.Records)
}

// TestSIGTERMDrainsAndFlushes stops pdp serve (async audit) under load with
// SIGTERM: it exits cleanly and every answered decision is in the trail.
func TestSIGTERMDrainsAndFlushes(t *testing.T) {
	dir := t.TempDir()
	p := startPDP(t, "drain", "", writePolicies(t), "--audit-dir", dir)
	stop := make(chan struct{})
	done := make(chan map[string]bool)
	go func() { done <- load(p, 16, stop) }()
	time.Sleep(time.Second)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("pdp serve did not exit within 10s of SIGTERM")
	}
	close(stop)
	answered := <-done
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM:\n%s", code, p.stderr.String())
	}
	inTrail, _ := trailIDs(t, dir)
	if m := missing(answered, inTrail); len(m) > 0 || len(answered) == 0 {
		t.Fatalf("%d of %d answered decisions missing from the trail", len(m), len(answered))
	}
	rep, _ := audit.Verify(mustGlob(t, dir)...)
	if !rep.OK() {
		t.Fatalf("a clean shutdown left a broken chain: %v", rep.FirstBreak())
	}
}

func mustGlob(t *testing.T, dir string) []string {
	files, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no audit files in %s: %v", dir, err)
	}
	return files
}

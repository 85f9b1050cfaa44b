//go:build unix

package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

const crashChildEnv = "AUDIT_CRASH_CHILD_DIR"

// TestDurableSurvivesSIGKILL kills a process that is appending in durable
// mode and checks that every record whose Append returned is in the files,
// and that reopening repairs a torn tail and continues the chain.
func TestDurableSurvivesSIGKILL(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDurableSurvivesSIGKILL$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]bool{}
	sc := bufio.NewScanner(out)
	deadline := time.Now().Add(20 * time.Second)
	for len(acked) < 2000 && time.Now().Before(deadline) && sc.Scan() {
		if id, ok := strings.CutPrefix(sc.Text(), "acked "); ok {
			acked[id] = true
		}
	}
	_ = cmd.Process.Kill() // SIGKILL: no deferred Close, no flush
	_ = cmd.Wait()
	if len(acked) < 100 {
		t.Fatalf("child acknowledged only %d records", len(acked))
	}

	// Reopening repairs a torn last line, if the kill left one, and continues.
	l := openLog(t, testOptions(dir))
	appendN(t, l, 1_000_000, 5)
	closeLog(t, l)
	rep := mustVerify(t, dir)
	onDisk := map[string]bool{}
	for _, line := range allLines(t, dir) {
		var r Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		onDisk[r.DecisionID] = true
	}
	for id := range acked {
		if !onDisk[id] {
			t.Fatalf("acknowledged record %s missing after SIGKILL (%d acked, %d on disk)", id, len(acked), rep.Records)
		}
	}
	t.Logf("%d acknowledged, %d records on disk after the crash and 5 more appends", len(acked), rep.Records)
}

// crashChild appends from 16 goroutines forever, printing each record only
// once Append has returned nil.
func crashChild(dir string) {
	o := testOptions(dir)
	o.Durability = Durable
	o.MaxFileSize = 256 << 10 // rotations happen during the crash window too
	l, err := Open(o)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				r := decisionRecord(i, "email-agent", "ALLOW")
				r.DecisionID = fmt.Sprintf("g%d-%d", g, i)
				if err := l.Append(context.Background(), r); err != nil {
					continue
				}
				mu.Lock()
				fmt.Fprintf(w, "acked %s\n", r.DecisionID)
				w.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

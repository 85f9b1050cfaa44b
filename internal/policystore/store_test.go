package policystore

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentpdp/agentpdp/internal/eval"
)

const policyA = `apiVersion: agentpdp/v1
kind: AgentPolicy
name: a
agents: [a]
rules:
  - {id: r1, tools: [x], effect: allow}
`

var policyB = strings.Replace(strings.Replace(policyA, "name: a", "name: b", 1), "agents: [a]", "agents: [b]", 1)

// watched starts a store on dir with a watcher, and records reload errors.
type watched struct {
	*Store
	mu   sync.Mutex
	errs []error
}

func (w *watched) lastErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.errs) == 0 {
		return nil
	}
	return w.errs[len(w.errs)-1]
}

func startWatched(t *testing.T, dir string) *watched {
	t.Helper()
	c, err := eval.NewCompiler(eval.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := &watched{}
	hooks := Hooks{Failed: func(err error) {
		w.mu.Lock()
		w.errs = append(w.errs, err)
		w.mu.Unlock()
	}}
	s, err := Open(c, dir, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), hooks)
	if err != nil {
		t.Fatal(err)
	}
	w.Store = s
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Watch(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	time.Sleep(100 * time.Millisecond) // let the watcher register
	return w
}

// waitFor polls until cond holds; reloads must land within 2 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("not within 2s: %s", what)
}

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReloadGoodChange(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.yaml"), policyA)
	s := startWatched(t, dir)
	v0 := s.Current().Version
	write(t, filepath.Join(dir, "a.yaml"), strings.Replace(policyA, "effect: allow", "effect: deny", 1))
	waitFor(t, "new version", func() bool { return s.Current().Version != v0 })
	write(t, filepath.Join(dir, "b.yaml"), policyB)
	waitFor(t, "second policy", func() bool { return s.Current().PolicyFor("b") != nil })
}

func TestReloadBrokenChangeKeepsLastGoodSet(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.yaml"), policyA)
	s := startWatched(t, dir)
	good := s.Current()
	write(t, filepath.Join(dir, "a.yaml"), policyA+"  - {id: r2, tools: [x], effect: allow, when: 'args.('}\n")
	waitFor(t, "reload error", func() bool { return s.lastErr() != nil })
	if s.Current() != good {
		t.Fatal("a broken set replaced the good one")
	}
	if err := s.lastErr().Error(); !strings.Contains(err, "a.yaml:7") || !strings.Contains(err, `rule "r2"`) {
		t.Fatalf("error lacks file:line and rule: %s", err)
	}
}

func TestReloadDeletion(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.yaml"), policyA)
	write(t, filepath.Join(dir, "b.yaml"), policyB)
	s := startWatched(t, dir)
	if s.Current().PolicyFor("b") == nil {
		t.Fatal("b not loaded")
	}
	if err := os.Remove(filepath.Join(dir, "b.yaml")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b gone", func() bool { return s.Current().PolicyFor("b") == nil })
}

func TestReloadAtomicSave(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.yaml"), policyA)
	s := startWatched(t, dir)
	v0 := s.Current().Version
	// What editors and config managers do: write a temp file, rename over.
	tmp := filepath.Join(dir, ".a.yaml.swp")
	write(t, tmp, strings.Replace(policyA, "tools: [x]", "tools: [y]", 1))
	if err := os.Rename(tmp, filepath.Join(dir, "a.yaml")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "renamed file loaded", func() bool { return s.Current().Version != v0 })
}

func TestOpenFailsOnBrokenSet(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.yaml"), "apiVersion: agentpdp/v1\nkind: AgentPolicy\n")
	c, _ := eval.NewCompiler(eval.Options{})
	if _, err := Open(c, dir, nil, slog.Default(), Hooks{}); err == nil || !strings.Contains(err.Error(), "a.yaml") {
		t.Fatalf("err = %v", err)
	}
}

package main

import (
	"fmt"
	"os"
	"time"

	"github.com/agentpdp/agentpdp/internal/approval"
	"github.com/agentpdp/agentpdp/internal/content/contentpb"
	"github.com/agentpdp/agentpdp/internal/decision"
	"github.com/agentpdp/agentpdp/internal/eval"
	"github.com/agentpdp/agentpdp/internal/ratelimit"
	"github.com/agentpdp/agentpdp/internal/suspension"
)

// fixedSet is a PolicySource that never reloads, for the offline commands.
type fixedSet struct{ set *eval.Set }

func (f fixedSet) Current() *eval.Set { return f.set }

// localEngine decides without a server: `pdp eval` and `pdp test`.
type localEngine struct {
	decider *decision.Decider
	limiter ratelimit.Limiter
}

func (e *localEngine) Close() { _ = e.limiter.Close() }

func loadSet(dir string) (*eval.Set, error) {
	if dir == "" {
		return nil, fmt.Errorf("a policy directory is required")
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, err
	}
	scanner, err := contentpb.New()
	if err != nil {
		return nil, err
	}
	c, err := eval.NewCompiler(eval.Options{Content: scanner})
	if err != nil {
		return nil, err
	}
	return c.LoadFS(os.DirFS(dir), dir)
}

func newLocalEngine(dir string, now time.Time) (*localEngine, error) {
	set, err := loadSet(dir)
	if err != nil {
		return nil, err
	}
	return engineFor(set, now)
}

// engineFor builds a decider over set with a fresh in-memory limiter and,
// when now is set, a clock pinned to it.
func engineFor(set *eval.Set, now time.Time) (*localEngine, error) {
	scanner, err := contentpb.New()
	if err != nil {
		return nil, err
	}
	clock := clockAt(now)
	lim := ratelimit.NewMemory(ratelimit.MemoryOptions{Clock: clock, SweepInterval: -1})
	d, err := decision.New(decision.Config{
		Policies:    fixedSet{set},
		Limiter:     lim,
		Content:     scanner,
		Approvals:   approval.NewMemory(),
		Suspensions: suspension.NewMemory(),
		Now:         clock,
	})
	if err != nil {
		return nil, err
	}
	return &localEngine{decider: d, limiter: lim}, nil
}

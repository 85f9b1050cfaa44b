package audit

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testOptions is a chain in dir with a logger that keeps test output clean.
func testOptions(dir string) Options {
	return Options{Dir: dir, ChainID: "test-1", Logger: quietLogger()}
}

// decisionRecord is a realistic decision record (about 700 bytes encoded).
func decisionRecord(i int, agent, decision string) *Record {
	return &Record{
		Type:       TypeDecision,
		Time:       time.Date(2026, 11, 24, 15, 0, 0, i, time.UTC),
		DecisionID: fmt.Sprintf("d-%d", i),
		Agent:      &Agent{ID: agent, Framework: "langgraph", SessionID: "s-1"},
		Principal:  &Principal{ID: "u1", Roles: []string{"support"}},
		Tool:       "gmail.send",
		Args: map[string]any{
			"to":      []any{"alice@customer.com"},
			"subject": "Re: <order #42> & refund",
			"body":    "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		},
		Resource:       &Resource{Kind: "mailbox", ID: "support", Attrs: map[string]any{"label": "customer_service"}},
		Decision:       decision,
		PolicyDecision: decision,
		Mode:           "ENFORCE",
		Policy:         "email-agent",
		PolicyVersion:  "sha256:1b4f0e9851971998e732078544c96b36c3d01cedf7caa332359d6f1d83567014",
		Reasons:        []Reason{{Policy: "email-agent", RuleID: "send-in-hours", Effect: "allow"}},
		RateLimits:     []RateLimit{{ID: "sends-per-hour", Limit: 20, Remaining: 19, Reset: time.Date(2026, 11, 24, 16, 0, 0, 0, time.UTC), Cost: 1}},
		Content:        &Content{InjectionScore: 0.02},
		LatencyNS:      41000,
		TraceID:        "4bf92f3577b34da6a3ce929d0e0e4736",
	}
}

func openLog(t testing.TB, o Options) *Log {
	t.Helper()
	l, err := Open(o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

func closeLog(t testing.TB, l *Log) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// appendN appends n decision records numbered from first.
func appendN(t testing.TB, l *Log, first, n int) {
	t.Helper()
	for i := first; i < first+n; i++ {
		if err := l.Append(context.Background(), decisionRecord(i, "email-agent", "ALLOW")); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
}

// writeTrail writes n records to a fresh chain in dir and closes it.
func writeTrail(t testing.TB, dir string, n int, mutate func(*Options)) {
	t.Helper()
	o := testOptions(dir)
	if mutate != nil {
		mutate(&o)
	}
	l := openLog(t, o)
	appendN(t, l, 1, n)
	closeLog(t, l)
}

// trailFiles lists the chain files of dir, oldest first.
func trailFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(m, func(a, b string) int {
		_, sa, _ := parseSegmentName(filepath.Base(a))
		_, sb, _ := parseSegmentName(filepath.Base(b))
		return cmpU64(sa, sb)
	})
	return m
}

// readLines returns a file's lines without newlines.
func readLines(t testing.TB, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func writeLines(t testing.TB, path string, lines []string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
}

// allLines is every line of the chain in dir, in order.
func allLines(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	for _, f := range trailFiles(t, dir) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 0 {
			out = append(out, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")...)
		}
	}
	return out
}

func mustVerify(t testing.TB, paths ...string) Report {
	t.Helper()
	rep, err := Verify(paths...)
	if err != nil {
		var sb strings.Builder
		_ = rep.WriteText(&sb)
		t.Fatalf("Verify: %v\n%s", err, sb.String())
	}
	return rep
}

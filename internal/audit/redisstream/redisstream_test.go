package redisstream

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentpdp/agentpdp/internal/audit"
	"github.com/agentpdp/agentpdp/internal/testutil/redisserver"
)

func newClient(t *testing.T) redis.UniversalClient {
	t.Helper()
	srv := redisserver.Start(t)
	opt, err := redis.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

func fileLines(t *testing.T, dir string) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	var out []string
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			out = append(out, sc.Text())
		}
		fh.Close()
	}
	return out
}

func TestSinkWritesTheChainToAStream(t *testing.T) {
	c := newClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tests := []struct {
		name string
		key  string
		n    int
	}{
		{"default key", "", 50},
		{"custom key", "audit:test", 1200}, // several sink batches
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			sink := New(c, Options{Key: tc.key})
			l, err := audit.Open(audit.Options{
				Dir: dir, ChainID: "replica-1", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
				Sinks: []audit.SinkConfig{{Name: "redis", Sink: sink, QueueSize: 4096}},
			})
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= tc.n; i++ {
				r := &audit.Record{Type: audit.TypeDecision, DecisionID: fmt.Sprintf("d-%d", i),
					Agent: &audit.Agent{ID: "email-agent"}, Tool: "gmail.send", Decision: "ALLOW"}
				if err := l.Append(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if st := l.Stats().Sinks[0]; st.Written != uint64(tc.n) || st.Dropped+st.Errors != 0 {
				t.Fatalf("sink stats = %+v", st)
			}
			key := tc.key
			if key == "" {
				key = DefaultKey
			}
			msgs, err := c.XRange(ctx, key, "-", "+").Result()
			if err != nil {
				t.Fatal(err)
			}
			lines := fileLines(t, dir)
			if len(msgs) != tc.n || len(lines) != tc.n {
				t.Fatalf("stream has %d entries, file %d, want %d", len(msgs), len(lines), tc.n)
			}
			for i, m := range msgs {
				v := m.Values
				if v["record"] != lines[i] || v["chain_id"] != "replica-1" || v["seq"] != strconv.Itoa(i+1) ||
					v["type"] != audit.TypeDecision || v["decision_id"] != fmt.Sprintf("d-%d", i+1) {
					t.Fatalf("entry %d = %v\nfile line %s", i, v, lines[i])
				}
			}
		})
	}
}

func TestSinkFailureLeavesTheFileWhole(t *testing.T) {
	// A client pointed at a closed port: every Write fails fast.
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer c.Close()
	dir := t.TempDir()
	l, err := audit.Open(audit.Options{
		Dir: dir, ChainID: "replica-1", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Sinks: []audit.SinkConfig{{Name: "redis", Sink: New(c, Options{Timeout: 200 * time.Millisecond}), QueueSize: 64}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 500 {
		if err := l.Append(ctx, &audit.Record{Type: audit.TypeDecision, DecisionID: strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	closeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := l.Close(closeCtx); err != nil {
		t.Fatal(err)
	}
	st := l.Stats()
	if st.Written != 500 || st.Sinks[0].Written != 0 || st.Sinks[0].Errors+st.Sinks[0].Dropped != 500 {
		t.Errorf("stats = %+v", st)
	}
	if rep, err := audit.Verify(dir); err != nil || rep.Records != 500 {
		t.Errorf("Verify = %+v, %v", rep, err)
	}
}

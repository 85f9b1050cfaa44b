package audit

import (
	"context"
	"errors"
	"testing"

	"github.com/agentpdp/agentpdp/internal/testutil/cputime"
)

// benchAppend runs parallel appenders and includes the drain (Sync) in the
// timed part, so ns/op is the sustained cost per record, not just the
// enqueue. A full queue makes the appender retry, which is what throttles
// the benchmark to the writer's pace; refusals are reported.
func benchAppend(b *testing.B, d Durability, parallelism int) {
	o := testOptions(b.TempDir())
	o.Durability = d
	l := openLog(b, o)
	rec := decisionRecord(1, "email-agent", "ALLOW")
	ctx := context.Background()
	b.SetParallelism(parallelism)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cputime.Process()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			for {
				err := l.Append(ctx, rec)
				if err == nil {
					break
				}
				if !errors.Is(err, ErrQueueFull) {
					b.Error(err)
					return
				}
			}
		}
	})
	if err := l.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	st := l.Stats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(cputime.Process()-cpu0)/float64(b.N)/1e3, "cpu-µs/op")
	b.ReportMetric(float64(st.Refused)/float64(b.N), "refused/op")
	if st.Syncs > 0 {
		b.ReportMetric(float64(st.Written)/float64(st.Syncs), "records/fsync")
	}
	closeLog(b, l)
}

func BenchmarkAppendAsync(b *testing.B) { benchAppend(b, Async, 1) }

// Durable with 64 appenders per CPU: a gRPC server has many decisions in
// flight, and group commit needs them to share fsyncs.
func BenchmarkAppendDurable(b *testing.B) { benchAppend(b, Durable, 64) }

// BenchmarkPrepare is what Append spends encoding on the caller's goroutine.
func BenchmarkPrepare(b *testing.B) {
	e := newEncoder()
	rec := decisionRecord(1, "email-agent", "ALLOW")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.prepare(rec); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(e.w.b)))
}

// BenchmarkChain is the single writer's own cost per record: splice in the
// chain fields, SHA-256, build the line.
func BenchmarkChain(b *testing.B) {
	e := newEncoder()
	if _, err := e.prepare(decisionRecord(1, "email-agent", "ALLOW")); err != nil {
		b.Fatal(err)
	}
	prev := hashHex([]byte("x"))
	var body, line []byte
	b.ReportAllocs()
	for b.Loop() {
		body = e.appendChained(body[:0], "replica-1", 123456, prev)
		line, _ = appendLine(line[:0], body)
	}
	b.SetBytes(int64(len(line)))
}

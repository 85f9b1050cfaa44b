package audit

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync/atomic"
	"testing"
	"time"
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
	cpu0 := processCPU()
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
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N)/1e3, "cpu-µs/op")
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

// BenchmarkDecisionWithAudit puts Append beside a stand-in for a decision's
// own CPU work (3 SHA-256 passes over 16 KiB, ~30 µs on an idle core, about
// what one Authorize costs end to end), so "none" vs "async" shows the share
// of decision throughput the audit takes, writer goroutine included.
// append-ns is what the decision itself waits in Append.
func BenchmarkDecisionWithAudit(b *testing.B) {
	for _, mode := range []Durability{"", Async, Durable} {
		name := string(mode)
		if name == "" {
			name = "none"
		}
		b.Run(name, func(b *testing.B) {
			var l *Log
			if mode != "" {
				o := testOptions(b.TempDir())
				o.Durability = mode
				l = openLog(b, o)
				defer closeLog(b, l)
			}
			rec := decisionRecord(1, "email-agent", "ALLOW")
			ctx := context.Background()
			var appendNS atomic.Int64
			b.SetParallelism(16)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				work := make([]byte, 16<<10)
				for pb.Next() {
					for range 3 {
						sum := sha256.Sum256(work)
						work[0] ^= sum[0]
					}
					if l == nil {
						continue
					}
					start := time.Now()
					if err := l.Append(ctx, rec); err != nil {
						b.Error(err)
						return
					}
					appendNS.Add(int64(time.Since(start)))
				}
			})
			if l != nil {
				_ = l.Sync(ctx)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
			b.ReportMetric(float64(appendNS.Load())/float64(b.N), "append-ns")
		})
	}
}

package audit

import (
	"context"
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestDiagStarvation(t *testing.T) {
	for _, model := range []string{"spin", "fed"} {
		t.Run(model, func(t *testing.T) { diag(t, model) })
	}
}

func diag(t *testing.T, model string) {
	o := testOptions(t.TempDir())
	l := openLog(t, o)
	rec := decisionRecord(1, "email-agent", "ALLOW")
	var stop atomic.Bool
	var wg sync.WaitGroup
	var maxAppend, n, slow atomic.Int64
	reqs := make(chan struct{}, 64)
	if model == "fed" {
		go func() {
			for !stop.Load() {
				reqs <- struct{}{}
			}
			close(reqs)
		}()
	}
	for range 32 {
		wg.Go(func() {
			work := make([]byte, 16<<10)
			for !stop.Load() {
				if model == "fed" {
					if _, ok := <-reqs; !ok {
						return
					}
				}
				for range 3 {
					s := sha256.Sum256(work)
					work[0] ^= s[0]
				}
				st := time.Now()
				if err := l.Append(context.Background(), rec); err != nil {
					t.Log(err)
				}
				d := int64(time.Since(st))
				n.Add(1)
				if d > int64(100*time.Microsecond) {
					slow.Add(1)
				}
				for {
					m := maxAppend.Load()
					if d <= m || maxAppend.CompareAndSwap(m, d) {
						break
					}
				}
			}
		})
	}
	maxDepth := 0
	for range 300 {
		time.Sleep(10 * time.Millisecond)
		maxDepth = max(maxDepth, l.Stats().QueueDepth)
	}
	stop.Store(true)
	wg.Wait()
	st := l.Stats()
	t.Logf("n=%d slow(>100us)=%d maxAppend=%s maxDepth=%d refused=%d written=%d", n.Load(), slow.Load(), time.Duration(maxAppend.Load()), maxDepth, st.Refused, st.Written)
	closeLog(t, l)
}

// Package interleave runs benchmark variants in alternation, so that the
// drift of a shared machine hits every variant alike: the way to read
// relative costs where back-to-back runs differ by more than the effect.
package interleave

import (
	"sync"
	"testing"
	"time"

	"github.com/agentpdp/agentpdp/internal/testutil/cputime"
)

// Totals is what one variant took over all rounds.
type Totals struct {
	Calls int
	CPU   time.Duration // the whole process's, while the variant ran
	Wall  time.Duration
}

// PerSecond is the variant's calls per second of wall time.
func (t Totals) PerSecond() float64 { return float64(t.Calls) / t.Wall.Seconds() }

// CPUPerCall is the process CPU per call, in µs.
func (t Totals) CPUPerCall() float64 { return float64(t.CPU.Nanoseconds()) / float64(t.Calls) / 1e3 }

// Run does b.N rounds. A round runs each variant in turn, the order
// rotating by one every round, with callers goroutines making each calls
// of it apiece; call(v) makes one call of variant v. settle(v), if not nil,
// runs after each burst of v and waits for work v left behind (an audit
// writer's backlog): its CPU is v's, its wall time is not counted.
func Run(b *testing.B, variants, callers, each int, call func(v int) error, settle func(v int)) []Totals {
	b.Helper()
	totals := make([]Totals, variants)
	order := make([]int, variants)
	for i := range order {
		order[i] = i
	}
	b.ResetTimer()
	for range b.N {
		for _, v := range order {
			c0, w0 := cputime.Process(), time.Now()
			var wg sync.WaitGroup
			for range callers {
				wg.Go(func() {
					for range each {
						if err := call(v); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			totals[v].Wall += time.Since(w0)
			if settle != nil {
				settle(v)
			}
			totals[v].CPU += cputime.Process() - c0
			totals[v].Calls += callers * each
		}
		order = append(order[1:], order[0])
	}
	return totals
}

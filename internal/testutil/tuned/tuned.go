// Package tuned runs a benchmark with pdp serve's runtime settings.
package tuned

import (
	"context"
	"runtime"
	"testing"

	"github.com/agentpdp/agentpdp/internal/runtimetune"
)

// Runtime applies runtimetune's settings, as pdp serve does at start, for
// the rest of b's run. Call it in the benchmark that measures (not in a
// parent of sub-benchmarks: the testing package sets GOMAXPROCS afresh for
// each one). GOMAXPROCS is put back and the heap floor's upkeep stops when
// b ends, so -cpu lists keep working; the GC percentage stays.
func Runtime(b *testing.B) {
	prev := runtime.GOMAXPROCS(0)
	ctx, cancel := context.WithCancel(context.Background())
	runtimetune.Apply(ctx)
	b.Cleanup(func() {
		cancel()
		runtime.GOMAXPROCS(prev)
	})
}

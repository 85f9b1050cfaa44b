// Package runtimetune sets the Go runtime's garbage-collector pace and
// processor count for pdp serve. Environment variables (GOGC, GOMAXPROCS)
// always win over what it would choose.
//
// GC: a PDP's live heap is small (policies, limiter counters) while every
// decision allocates a few kilobytes that die at once, so with Go's default
// GOGC=100 the collector runs thousands of times a second and took a
// quarter of the CPU under load. A higher percentage trades memory for
// throughput: the heap may grow to (1 + GCPercent/100) times the live heap.
// With a live heap of ~13 MB even that collects several times a second
// under load, and each cycle's mark phase (milliseconds on a small VM,
// write barriers on, one P given to marking) is in the latency tail. So the
// heap is also let grow to MinHeap before a collection: while the live heap
// is under MinHeap/(1 + GCPercent/100), the percentage is raised to match,
// and re-checked every second. A large live heap gets GCPercent as before.
// GOMEMLIMIT caps the heap whatever the percentage (the Kubernetes manifest
// sets it from the container's limit), so a limit under MinHeap wins.
//
// Processors: a gRPC call wakes several goroutines (the connection's
// reader, the handler, the writers, the audit writer). With one P per CPU
// and every P busy, a goroutine made runnable waits in a run queue until a
// P finishes what it is doing; with one P more than CPUs, the kernel's
// scheduler time-slices three threads on two CPUs instead, and the waiting
// goroutine runs within its wake-up latency. On the project's 2-vCPU VM
// that took Authorize's p99 at 8 to 12 callers from 3.0–4.6 ms to 2.0–2.5
// ms at the same or better throughput (docs/PERFORMANCE.md, seventh
// session). The extra P is added
// only when the runtime's default is the machine's CPU count: a smaller
// default means a container CPU quota below it, where more threads would
// get the process throttled. With the default equal to the CPU count the
// process cannot use more CPUs than it has, extra P or not.
package runtimetune

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

const (
	// GCPercent is pdp serve's GC target when GOGC is not set.
	GCPercent = 400
	// MinHeap is the heap size garbage may reach before a collection when
	// GOGC is not set (see the package doc).
	MinHeap = 256 << 20
	// floorEvery is how often the live heap is looked at.
	floorEvery = time.Second
)

// Settings reports what Apply left in force and where each came from:
// "GOGC"/"GOMAXPROCS" (the environment), "default" (the runtime's own) or
// "runtimetune" (this package's choice).
// MinHeap is 0 when GOGC is set.
type Settings struct {
	GCPercent   int
	MinHeap     uint64
	GCSource    string
	Procs       int
	ProcsSource string
}

// Apply sets the GC percentage and GOMAXPROCS as the package doc explains,
// and keeps the heap floor until ctx ends. Call it once, before starting
// servers that size themselves by GOMAXPROCS.
func Apply(ctx context.Context) Settings {
	var s Settings
	if os.Getenv("GOGC") != "" {
		// SetGCPercent returns the previous setting; put it straight back.
		s.GCPercent, s.GCSource = debug.SetGCPercent(100), "GOGC"
		debug.SetGCPercent(s.GCPercent)
	} else {
		s.GCPercent, s.MinHeap, s.GCSource = GCPercent, MinHeap, "runtimetune"
		f := newFloor(GCPercent, MinHeap)
		f.check()
		go f.keep(ctx, floorEvery)
	}
	s.Procs, s.ProcsSource = procs(os.Getenv("GOMAXPROCS"), runtime.GOMAXPROCS(0), runtime.NumCPU())
	if s.ProcsSource == "runtimetune" {
		runtime.GOMAXPROCS(s.Procs)
	}
	return s
}

// procs chooses GOMAXPROCS from the environment's setting, the runtime's
// current value and the number of CPUs the process may run on.
func procs(env string, current, cpus int) (int, string) {
	switch {
	case env != "":
		return current, "GOMAXPROCS"
	case current != cpus:
		// A CPU quota (or a caller, e.g. go test -cpu) chose fewer.
		return current, "default"
	default:
		return cpus + 1, "runtimetune"
	}
}

// floor raises the GC percentage while the live heap is small (package doc).
type floor struct {
	base    int    // the percentage for a large live heap
	minHeap uint64 // bytes the heap may reach before a collection
	cur     int    // the percentage in force
	live    []metrics.Sample
}

func newFloor(base int, minHeap uint64) *floor {
	return &floor{base: base, minHeap: minHeap, live: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
}

func (f *floor) keep(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f.check()
		}
	}
}

// check sets the percentage for the live heap of the last collection,
// unless it is within 10% of the one in force (each change recomputes the
// collector's pacing).
func (f *floor) check() {
	metrics.Read(f.live)
	p := floorPercent(f.base, f.minHeap, f.live[0].Value.Uint64())
	if f.cur == 0 || p*10 < f.cur*9 || p*10 > f.cur*11 {
		debug.SetGCPercent(p)
		f.cur = p
	}
}

// maxPercent bounds floorPercent: the runtime keeps the percentage in an
// int32, and a live heap under MinHeap/1000 is not a PDP's.
const maxPercent = 100_000

// floorPercent is the GC percentage that lets a heap with live bytes in use
// grow to minHeap before a collection, and at least base.
func floorPercent(base int, minHeap, live uint64) int {
	if live == 0 || live >= minHeap {
		return base
	}
	return max(base, int(min(minHeap*100/live-100, maxPercent)))
}

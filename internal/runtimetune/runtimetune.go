// Package runtimetune sets the Go runtime's garbage-collector pace and
// processor count for pdp serve. Environment variables (GOGC, GOMAXPROCS)
// always win over what it would choose.
//
// GC: a PDP's live heap is small (policies, limiter counters) while every
// decision allocates a few kilobytes that die at once, so with Go's default
// GOGC=100 the collector runs thousands of times a second and took a
// quarter of the CPU under load. A higher percentage trades memory for
// throughput: the heap may grow to (1 + GCPercent/100) times the live heap.
// GOMEMLIMIT caps the heap whatever the percentage (the Kubernetes manifest
// sets it from the container's limit).
//
// Processors: a gRPC call wakes several goroutines (the connection's
// reader, the handler, the writers, the audit writer). With one P per CPU
// and every P busy, a goroutine made runnable waits in a run queue until a
// P finishes what it is doing; with one P more than CPUs, the kernel's
// scheduler time-slices three threads on two CPUs instead, and the waiting
// goroutine runs within its wake-up latency. On the project's 2-vCPU VM
// that halved Authorize's p99 at 8 to 12 callers at the same or better
// throughput (docs/PERFORMANCE.md, seventh session). The extra P is added
// only when the runtime's default is the machine's CPU count: a smaller
// default means a container CPU quota below it, where more threads would
// get the process throttled. With the default equal to the CPU count the
// process cannot use more CPUs than it has, extra P or not.
package runtimetune

import (
	"os"
	"runtime"
	"runtime/debug"
)

// GCPercent is pdp serve's GC target when GOGC is not set.
const GCPercent = 400

// Settings reports what Apply left in force and where each came from:
// "GOGC"/"GOMAXPROCS" (the environment), "default" (the runtime's own) or
// "runtimetune" (this package's choice).
type Settings struct {
	GCPercent   int
	GCSource    string
	Procs       int
	ProcsSource string
}

// Apply sets the GC percentage and GOMAXPROCS as the package doc explains.
// Call it once, before starting servers that size themselves by
// GOMAXPROCS.
func Apply() Settings {
	var s Settings
	if os.Getenv("GOGC") != "" {
		// SetGCPercent returns the previous setting; put it straight back.
		s.GCPercent, s.GCSource = debug.SetGCPercent(100), "GOGC"
		debug.SetGCPercent(s.GCPercent)
	} else {
		s.GCPercent, s.GCSource = GCPercent, "runtimetune"
		debug.SetGCPercent(GCPercent)
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

// Package gctune sets the garbage collector's pace for pdp serve.
//
// A PDP's live heap is small (policies, limiter counters) while every
// decision allocates a few kilobytes that die at once, so with Go's default
// GOGC=100 the collector runs thousands of times a second and took a
// quarter of the CPU under load. A higher percentage trades memory for
// throughput: the heap may grow to (1 + Percent/100) times the live heap.
// GOGC, when set, always wins, and GOMEMLIMIT caps the heap whatever the
// percentage (the Kubernetes manifest sets it from the container's limit).
package gctune

import (
	"os"
	"runtime/debug"
)

// Percent is pdp serve's GC target when GOGC is not set.
const Percent = 400

// Apply sets the GC percentage to Percent unless GOGC is set, and reports
// the percentage in force and where it came from ("GOGC" or "default").
func Apply() (percent int, source string) {
	if os.Getenv("GOGC") != "" {
		// SetGCPercent returns the previous setting; put it straight back.
		p := debug.SetGCPercent(100)
		debug.SetGCPercent(p)
		return p, "GOGC"
	}
	debug.SetGCPercent(Percent)
	return Percent, "default"
}

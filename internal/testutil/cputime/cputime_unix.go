//go:build unix

// Package cputime reads the CPU time a benchmark's process has used: on a
// noisy shared machine, CPU per operation is steadier than wall-clock
// throughput.
package cputime

import (
	"syscall"
	"time"
)

// Process is the user+system CPU time this process has used so far.
func Process() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

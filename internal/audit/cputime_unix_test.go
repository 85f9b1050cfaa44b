//go:build unix

package audit

import (
	"syscall"
	"time"
)

// processCPU is the user+system CPU time this process has used: under a
// noisy machine, CPU per operation is steadier than wall-clock throughput.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Package proc ends the child processes tests start (redis-server, pdp).
package proc

import (
	"os"
	"syscall"
	"time"
)

// Stop asks p to end with SIGTERM, so that it can drain and flush, and
// waits for exited to close; after grace it kills p and waits again.
func Stop(p *os.Process, exited <-chan struct{}, grace time.Duration) {
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
		_ = p.Kill()
		<-exited
	}
}

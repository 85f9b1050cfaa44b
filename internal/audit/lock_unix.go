//go:build unix

package audit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockChain takes an exclusive advisory lock on the chain, so two processes
// never append to one chain (they would fork it). The kernel drops the lock
// when the process dies, so a crash leaves nothing to clean up.
func lockChain(dir, chain string) (*os.File, error) {
	path := filepath.Join(dir, ".audit-"+chain+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("audit chain %q in %s is in use by another process: give each replica its own chain id: %w", chain, dir, ErrChainLocked)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

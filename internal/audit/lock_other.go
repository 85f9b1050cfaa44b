//go:build !unix

package audit

import (
	"fmt"
	"os"
	"path/filepath"
)

// lockChain only creates the lock file where flock is unavailable: running
// two processes on one chain there is the operator's to avoid.
func lockChain(dir, chain string) (*os.File, error) {
	path := filepath.Join(dir, ".audit-"+chain+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return f, nil
}

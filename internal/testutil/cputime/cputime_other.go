//go:build !unix

package cputime

import "time"

// Process returns 0 where getrusage is not available.
func Process() time.Duration { return 0 }

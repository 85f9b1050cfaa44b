//go:build !linux

package redisserver

import (
	"os/exec"
	"time"
)

func setProcAttr(cmd *exec.Cmd) {}

func cpuOf(pid int) time.Duration { return 0 }

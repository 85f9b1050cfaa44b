package e2e

import (
	"os/exec"
	"syscall"
)

// setProcAttr makes the kernel kill a pdp process if the test binary dies
// without running its cleanups.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

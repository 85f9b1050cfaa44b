// Command pdp is the agentpdp policy decision point: the gRPC server and
// the tools around it (check, test, eval, audit, scan, approvals, agents).
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// exitError carries an exit code without printing anything more; the
// command has already said what went wrong.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func main() {
	root := &cobra.Command{
		Use:           "pdp",
		Short:         "agentpdp: a policy decision point for AI agents' tool calls",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCmd(), newCheckCmd(), newTestCmd(), newEvalCmd(), newApprovalsCmd(), newAgentsCmd(), newAuditCmd(), newScanCmd(), newMCPProxyCmd())
	if err := root.Execute(); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "pdp:", err)
		os.Exit(1)
	}
}

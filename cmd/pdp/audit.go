package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/agentpdp/agentpdp/internal/audit"
)

// newAuditCmd is `pdp audit`, for now only `verify`.
func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Work with the hash-chained audit trail",
	}
	cmd.AddCommand(newAuditVerifyCmd())
	return cmd
}

func newAuditVerifyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "verify FILE|DIR...",
		Short: "Check the hash chains of audit files; print the first break of each chain",
		Long: `Checks every record's hash and its link to the record before it, across
files and rotations. Files are grouped by chain id and ordered by sequence
number; a directory means its *.jsonl files. Prints "ok: N records, chains: ..."
or, per broken chain, the first break (edited, deleted, reordered, truncated,
malformed) with file, line and seq. Exits 1 on any break.`,
		Args:         cobra.MinimumNArgs(1),
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := audit.Verify(args...)
			if err != nil && !errors.Is(err, audit.ErrBroken) {
				return err // already says "verify: ..."
			}
			if werr := rep.WriteText(cmd.OutOrStdout()); werr != nil {
				return fmt.Errorf("audit verify: %w", werr)
			}
			if err != nil {
				return exitError{code: 1} // the break is already printed
			}
			return nil
		},
	}
}

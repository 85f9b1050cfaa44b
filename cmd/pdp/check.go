package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

func newCheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check DIR",
		Short: "Load and compile every policy in DIR; print each error with file:line, exit 1 on any",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			set, err := loadSet(args[0])
			if err != nil {
				printErrors(cmd, err)
				return exitError{1}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ok: %d policies, version %s\n", len(set.Policies), set.Version)
			return nil
		},
	}
}

// printErrors prints a joined error one line each.
func printErrors(cmd *cobra.Command, err error) {
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		for _, e := range joined.Unwrap() {
			printErrors(cmd, e)
		}
		return
	}
	fmt.Fprintln(cmd.ErrOrStderr(), "error:", err)
}

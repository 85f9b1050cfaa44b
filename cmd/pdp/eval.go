package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/agentpdp/agentpdp/internal/decision"
)

func newEvalCmd() *cobra.Command {
	var policies, requestFile, now string
	cmd := &cobra.Command{
		Use:   "eval --policies DIR --request FILE|-",
		Short: "Decide one request against a policy directory, without a server; print the decision as JSON",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := readInput(requestFile)
			if err != nil {
				return err
			}
			var m map[string]any
			if err := yaml.Unmarshal(data, &m); err != nil {
				return fmt.Errorf("request %s: %w", requestFile, err)
			}
			req, pinned, err := parseRequest(m)
			if err != nil {
				return err
			}
			if now != "" {
				if pinned, err = parseNow(now); err != nil {
					return err
				}
			}
			if err := decision.Validate(req); err != nil {
				return fmt.Errorf("request: %w", err)
			}
			eng, err := newLocalEngine(policies, pinned)
			if err != nil {
				return err
			}
			defer eng.Close()
			resp := eng.decider.Decide(context.Background(), req)
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(viewOf(resp))
		},
	}
	cmd.Flags().StringVar(&policies, "policies", "", "policy directory (required)")
	cmd.Flags().StringVar(&requestFile, "request", "-", "request file (YAML or JSON), - for stdin")
	cmd.Flags().StringVar(&now, "now", "", "pin the clock (RFC 3339); overrides the request's now")
	_ = cmd.MarkFlagRequired("policies")
	return cmd
}

func readInput(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(name)
}

// clockAt returns a clock pinned to t, or the real one when t is zero.
func clockAt(t time.Time) func() time.Time {
	if t.IsZero() {
		return time.Now
	}
	return func() time.Time { return t }
}

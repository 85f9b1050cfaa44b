package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
	"github.com/agentpdp/agentpdp/internal/decision"
	"github.com/agentpdp/agentpdp/internal/eval"
)

// testSuite is one *_test.yaml file.
type testSuite struct {
	Name  string     `yaml:"name"`
	Tests []testCase `yaml:"tests"`
}

type testCase struct {
	Name    string         `yaml:"name"`
	Request map[string]any `yaml:"request"`
	// Repeat sends the request this many times (default 1) and checks the
	// last answer, for rate limits.
	Repeat int        `yaml:"repeat"`
	Expect testExpect `yaml:"expect"`
}

// testExpect compares only what is set. Rules are the ids of the reasons
// that decided: those whose effect is the policy decision.
type testExpect struct {
	Decision       string   `yaml:"decision"`
	PolicyDecision string   `yaml:"policy_decision"`
	Mode           string   `yaml:"mode"`
	Rules          []string `yaml:"rules"`
	Warning        *bool    `yaml:"warning"`
}

func newTestCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "test DIR",
		Short: "Run the *_test.yaml suites beside the policies in DIR; exit 1 on any failure",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			set, err := loadSet(args[0])
			if err != nil {
				printErrors(cmd, err)
				return exitError{1}
			}
			files, err := testFiles(args[0])
			if err != nil {
				return err
			}
			if len(files) == 0 {
				return fmt.Errorf("no *_test.yaml files under %s", args[0])
			}
			passed, failed := 0, 0
			for _, f := range files {
				p, fl, err := runSuite(cmd.OutOrStdout(), set, f)
				if err != nil {
					return err
				}
				passed, failed = passed+p, failed+fl
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d passed, %d failed\n", passed, failed)
			if failed > 0 {
				return exitError{1}
			}
			return nil
		},
	}
}

func testFiles(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if !d.IsDir() && (strings.HasSuffix(name, "_test.yaml") || strings.HasSuffix(name, "_test.yml")) {
			out = append(out, p)
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

func runSuite(w io.Writer, set *eval.Set, file string) (passed, failed int, err error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0, 0, err
	}
	var suite testSuite
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&suite); err != nil {
		return 0, 0, fmt.Errorf("%s: %w", file, err)
	}
	for i, tc := range suite.Tests {
		name := tc.Name
		if name == "" {
			name = fmt.Sprintf("test %d", i+1)
		}
		diffs, err := runCase(set, tc)
		if err != nil {
			diffs = []string{err.Error()}
		}
		if len(diffs) == 0 {
			passed++
			fmt.Fprintf(w, "PASS %s: %s\n", file, name)
			continue
		}
		failed++
		fmt.Fprintf(w, "FAIL %s: %s\n", file, name)
		for _, d := range diffs {
			fmt.Fprintf(w, "    %s\n", d)
		}
	}
	return passed, failed, nil
}

func runCase(set *eval.Set, tc testCase) ([]string, error) {
	req, now, err := parseRequest(tc.Request)
	if err != nil {
		return nil, err
	}
	if err := decision.Validate(req); err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	eng, err := engineFor(set, now)
	if err != nil {
		return nil, err
	}
	defer eng.Close()
	var resp *pb.AuthorizeResponse
	for i := 0; i < max(tc.Repeat, 1); i++ {
		resp = eng.decider.Decide(context.Background(), req)
	}
	return compare(tc.Expect, resp), nil
}

func compare(want testExpect, resp *pb.AuthorizeResponse) []string {
	got := viewOf(resp)
	var diffs []string
	check := func(field, want, got string) {
		if want != "" && !strings.EqualFold(want, got) {
			diffs = append(diffs, fmt.Sprintf("%-15s want %s, got %s", field+":", want, got))
		}
	}
	check("decision", want.Decision, got.Decision)
	check("policy_decision", want.PolicyDecision, got.PolicyDecision)
	check("mode", want.Mode, got.Mode)
	if want.Rules != nil {
		gotRules := decidingRules(got)
		wantRules := slices.Clone(want.Rules)
		sort.Strings(wantRules)
		if !slices.Equal(wantRules, gotRules) {
			diffs = append(diffs, fmt.Sprintf("%-15s want %v, got %v", "rules:", wantRules, gotRules))
		}
	}
	if want.Warning != nil && *want.Warning != (got.Warning != "") {
		diffs = append(diffs, fmt.Sprintf("%-15s want %v, got %q", "warning:", *want.Warning, got.Warning))
	}
	if len(diffs) > 0 {
		for _, r := range got.Reasons {
			diffs = append(diffs, fmt.Sprintf("%-15s %s %s: %s", "reason:", r.Effect, r.RuleID, r.Message))
		}
	}
	return diffs
}

func decidingRules(v decisionView) []string {
	out := []string{}
	for _, r := range v.Reasons {
		if r.Effect == v.PolicyDecision {
			out = append(out, r.RuleID)
		}
	}
	sort.Strings(out)
	return out
}

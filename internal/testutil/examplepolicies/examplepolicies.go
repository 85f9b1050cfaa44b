// Package examplepolicies loads the example policies for tests and
// benchmarks as pdp serve loads them: compiled with the content detectors.
package examplepolicies

import (
	"testing"

	"github.com/agentpdp/agentpdp/examples"
	"github.com/agentpdp/agentpdp/internal/content/contentpb"
	"github.com/agentpdp/agentpdp/internal/eval"
)

// Load returns the compiled example policies and the detectors they were
// compiled with, which a decider needs too (the trail masks PII with them).
func Load(tb testing.TB) (*eval.Set, *contentpb.Scanner) {
	tb.Helper()
	scanner, err := contentpb.New()
	if err != nil {
		tb.Fatal(err)
	}
	c, err := eval.NewCompiler(eval.Options{Content: scanner})
	if err != nil {
		tb.Fatal(err)
	}
	set, err := c.LoadFS(examples.Policies(), "examples")
	if err != nil {
		tb.Fatal(err)
	}
	return set, scanner
}

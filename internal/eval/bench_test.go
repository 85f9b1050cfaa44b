package eval

import (
	"context"
	"os"
	"testing"
)

// BenchmarkEvaluateEmailSend decides one gmail.send against the example
// email policy: seven rules and two rate-limit keys evaluated.
func BenchmarkEvaluateEmailSend(b *testing.B) {
	c, err := NewCompiler(Options{})
	if err != nil {
		b.Fatal(err)
	}
	set, err := c.LoadFS(os.DirFS("../../examples/policies"), "examples/policies")
	if err != nil {
		b.Fatal(err)
	}
	req := request(b, `{"agent":{"id":"email-agent"},"principal":{"id":"u1"},"tool":"gmail.send",
		"args":{"to":["alice@customer.com"],"subject":"Re: order","body":"Thanks, it ships today."}}`)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if res := set.Evaluate(ctx, req, tuesday10); res.Effect != Allow {
			b.Fatalf("got %s %+v", res.Effect, res.Reasons)
		}
	}
}

// BenchmarkEvaluateEmailRead decides a gmail.read: one rule.
func BenchmarkEvaluateEmailRead(b *testing.B) {
	c, _ := NewCompiler(Options{})
	set, err := c.LoadFS(os.DirFS("../../examples/policies"), "examples/policies")
	if err != nil {
		b.Fatal(err)
	}
	req := request(b, `{"agent":{"id":"email-agent"},"principal":{"id":"u1"},"tool":"gmail.read",
		"resource":{"kind":"message","id":"m1","attributes":{"label":"support"}}}`)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if res := set.Evaluate(ctx, req, tuesday10); res.Effect != Allow {
			b.Fatalf("got %s", res.Effect)
		}
	}
}

package policy

import (
	"strings"
	"testing"
	"time"
)

func TestMatch(t *testing.T) {
	cases := []struct {
		pattern, s string
		want       bool
	}{
		{"*", "anything.at/all", true},
		{"gmail.*", "gmail.send", true},
		{"gmail.*", "gmail", false},
		{"github.*", "github.issues/create", true},
		{"*.send", "gmail.send", true},
		{"g?ail.send", "gmail.send", true},
		{"g?ail.send", "gmmail.send", false},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"exact", "exact", true},
		{"exact", "exactly", false},
		{"", "", true},
		{"**", "", true},
	}
	for _, tc := range cases {
		if got := Match(tc.pattern, tc.s); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"90s": 90 * time.Second, "1h": time.Hour, "7d": 7 * 24 * time.Hour} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "d", "-1d", "soon", "1w"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) accepted", bad)
		}
	}
}

func TestParseRecordsLinesAndDefaults(t *testing.T) {
	src := "apiVersion: agentpdp/v1\nkind: AgentPolicy\nname: p\nagents: [a]\nrules:\n" +
		"  - id: first\n    tools: [x]\n    effect: allow\n  - id: second\n    tools: [y]\n    effect: deny\n    when: has(args.z)\n"
	ps, err := Parse("p.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	p := ps[0]
	if p.Mode != "enforce" || p.Default != "deny" {
		t.Fatalf("defaults: mode %q default %q", p.Mode, p.Default)
	}
	if p.Rules[0].Line != 6 || p.Rules[1].Line != 9 || p.Rules[1].When.Line != 12 {
		t.Fatalf("lines: %d %d %d", p.Rules[0].Line, p.Rules[1].Line, p.Rules[1].When.Line)
	}
	if _, err := Parse("q.yaml", []byte(strings.Replace(src, "effect: deny", "effect: deny\n    colour: red", 1))); err == nil ||
		!strings.Contains(err.Error(), `q.yaml:12: unknown key "colour"`) {
		t.Fatalf("unknown key error: %v", err)
	}
}

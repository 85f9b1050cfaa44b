package eval

import (
	"strings"
	"testing"
)

func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name, body string
		want       []string // substrings of the error
	}{
		{"unknown top-level key", header + "rulez: []\n", []string{"policies/p.yaml:5", `unknown key "rulez"`}},
		{"unknown rule key", header + "rules:\n  - id: r\n    tools: [x]\n    effect: allow\n    whenn: true\n",
			[]string{"policies/p.yaml:9", `unknown key "whenn"`}},
		{"bad CEL names file, line and rule", header + "rules:\n  - id: r1\n    tools: [x]\n    effect: allow\n    when: args.to.exists(\n",
			[]string{"policies/p.yaml:9", `rule "r1"`, "when"}},
		{"undeclared variable", header + "rules:\n  - {id: r2, tools: [x], effect: allow, when: 'vars.nope'}\n",
			[]string{"policies/p.yaml:6", `rule "r2"`, "undeclared"}},
		{"non-bool when", header + "rules:\n  - {id: r3, tools: [x], effect: allow, when: '1 + 1'}\n",
			[]string{`rule "r3"`, "must be bool"}},
		{"typo in a proto field", header + "rules:\n  - {id: r4, tools: [x], effect: allow, when: 'agent.idd == \"a\"'}\n",
			[]string{`rule "r4"`, "idd"}},
		{"bad effect", header + "rules:\n  - {id: r5, tools: [x], effect: maybe}\n", []string{`rule "r5"`, "effect must be"}},
		{"duplicate rule id", header + "rules:\n  - {id: r, tools: [x], effect: allow}\n  - {id: r, tools: [x], effect: deny}\n",
			[]string{"policies/p.yaml:7", "duplicate rule id"}},
		{"bad window", header + "rate_limits:\n  - {id: l, tools: [x], limit: 1, window: soon}\n", []string{"invalid duration"}},
		{"wrong apiVersion", "apiVersion: v0\nkind: AgentPolicy\nname: p\nagents: [a]\n", []string{"apiVersion"}},
		{"missing agents", "apiVersion: agentpdp/v1\nkind: AgentPolicy\nname: p\n", []string{"agents is required"}},
		{"broken YAML", header + "rules: [\n", []string{"policies/p.yaml"}},
		{"bad mode", header + "mode: loud\n", []string{"mode must be"}},
		{"redact outside args", header + "audit: {redact: [principal.attributes.email]}\n",
			[]string{"policies/p.yaml:1", `audit.redact: "principal.attributes.email" must name a field of args`}},
		{"redact without args.", header + "audit: {redact: [body]}\n", []string{`audit.redact: "body"`}},
		{"redact with an empty field", header + "audit: {redact: [args.card..number]}\n", []string{`audit.redact: "args.card..number"`}},
		{"redact of args whole", header + "audit: {redact: [args]}\n", []string{`audit.redact: "args"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadYAML(t, map[string]string{"p.yaml": tc.body})
			if err == nil {
				t.Fatal("loaded; want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestLoadRefusesWholeSetOnOneBadFile(t *testing.T) {
	_, err := loadYAML(t, map[string]string{
		"good.yaml": header,
		"bad.yaml":  "apiVersion: agentpdp/v1\nkind: AgentPolicy\nname: q\nagents: [b]\nrules: [{id: x}]\n",
	})
	if err == nil || !strings.Contains(err.Error(), "bad.yaml") {
		t.Fatalf("err = %v", err)
	}
}

func TestDuplicateAgentRefused(t *testing.T) {
	_, err := loadYAML(t, map[string]string{
		"a.yaml": header,
		"b.yaml": "apiVersion: agentpdp/v1\nkind: AgentPolicy\nname: q\nagents: [a]\n",
	})
	if err == nil || !strings.Contains(err.Error(), "already governed") {
		t.Fatalf("err = %v", err)
	}
}

func TestTestFilesAndHiddenDirsSkipped(t *testing.T) {
	set := mustLoad(t, map[string]string{
		"p.yaml":          header,
		"p_test.yaml":     "tests: []\n",
		"..data/old.yaml": "garbage: [",
		"notes.txt":       "not a policy",
		"sub/nested.yaml": "apiVersion: agentpdp/v1\nkind: AgentPolicy\nname: n\nagents: [n]\n",
		"multi.yml":       "apiVersion: agentpdp/v1\nkind: AgentPolicy\nname: m1\nagents: [m1]\n---\napiVersion: agentpdp/v1\nkind: AgentPolicy\nname: m2\nagents: [m2]\n",
	})
	if len(set.Policies) != 4 {
		t.Fatalf("loaded %d policies, want 4", len(set.Policies))
	}
}

func TestVersionIsContentDigest(t *testing.T) {
	a := mustLoad(t, map[string]string{"p.yaml": header})
	b := mustLoad(t, map[string]string{"p.yaml": header})
	c := mustLoad(t, map[string]string{"p.yaml": header + "default: allow\n"})
	if a.Version != b.Version || a.Version == c.Version || len(a.Version) != 16 {
		t.Fatalf("versions %s %s %s", a.Version, b.Version, c.Version)
	}
}

func FuzzLoad(f *testing.F) {
	f.Add(header + "rules:\n  - {id: r, tools: [x], effect: allow, when: 'args.a > 1'}\n")
	f.Add(header + "variables:\n  v: 'now'\nrate_limits:\n  - {id: l, tools: ['*'], limit: 2, window: 1d, key: principal.id}\n")
	f.Add("{{{")
	f.Add(header + "rules: [[[[[]]]]]\n")
	f.Fuzz(func(t *testing.T, body string) {
		// Any input either loads or fails with an error; it never panics.
		_, _ = loadYAML(t, map[string]string{"p.yaml": body})
	})
}

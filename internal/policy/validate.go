package policy

import (
	"fmt"
	"regexp"
)

var (
	ruleIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]*$`)
	varPattern    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// redactPattern: a field of args, nested fields by dots.
	redactPattern = regexp.MustCompile(`^args(\.[^.]+)+$`)
)

// Modes and effects as written in YAML.
var (
	Modes    = []string{"observe", "warn", "enforce"}
	Defaults = []string{"deny", "allow"}
	Effects  = []string{"allow", "deny", "require_approval"}
)

// validate checks what the YAML schema cannot: required fields, enums, ids,
// globs. CEL is checked later, by the compiler.
func (p *Policy) validate() error {
	fail := func(line int, rule, format string, a ...any) error {
		return &Error{File: p.File, Line: line, Rule: rule, Msg: fmt.Sprintf(format, a...)}
	}
	if p.APIVersion != APIVersion {
		return fail(p.Line, "", "apiVersion must be %q, got %q", APIVersion, p.APIVersion)
	}
	if p.Kind != Kind {
		return fail(p.Line, "", "kind must be %q, got %q", Kind, p.Kind)
	}
	if p.Name == "" {
		return fail(p.Line, "", "name is required")
	}
	if len(p.Agents) == 0 {
		return fail(p.Line, "", "agents is required: list the agent ids (globs allowed) this policy governs")
	}
	if err := checkGlobs(p.Agents); err != nil {
		return fail(p.Line, "", "agents: %v", err)
	}
	if p.Mode == "" {
		p.Mode = "enforce"
	}
	if !oneOf(p.Mode, Modes) {
		return fail(p.Line, "", "mode must be one of %v, got %q", Modes, p.Mode)
	}
	if p.Default == "" {
		p.Default = "deny"
	}
	if !oneOf(p.Default, Defaults) {
		return fail(p.Line, "", "default must be one of %v, got %q", Defaults, p.Default)
	}
	for _, v := range p.Variables {
		if !varPattern.MatchString(v.Name) {
			return fail(v.Expr.Line, "", "variable name %q must be an identifier", v.Name)
		}
	}
	if err := p.validateRules(fail); err != nil {
		return err
	}
	if err := p.validateLimits(fail); err != nil {
		return err
	}
	for _, r := range p.Audit.Redact {
		// Anything else would be silently ignored, leaving in the trail
		// what the author meant to keep out.
		if !redactPattern.MatchString(r) {
			return fail(p.Line, "", "audit.redact: %q must name a field of args, e.g. \"args.body\" or \"args.card.number\"", r)
		}
	}
	if s := p.SuspendAfter; s != nil && (s.Denials <= 0 || s.Window.Duration <= 0) {
		return fail(p.Line, "", "suspend_after needs denials > 0 and a window")
	}
	return nil
}

type failFunc func(line int, rule, format string, a ...any) error

func (p *Policy) validateRules(fail failFunc) error {
	seen := map[string]bool{}
	for _, r := range p.Rules {
		if !ruleIDPattern.MatchString(r.ID) {
			return fail(r.Line, r.ID, "rule id is required and must match %s", ruleIDPattern)
		}
		if seen[r.ID] {
			return fail(r.Line, r.ID, "duplicate rule id")
		}
		seen[r.ID] = true
		if len(r.Tools) == 0 {
			return fail(r.Line, r.ID, `tools is required (use ["*"] for every tool)`)
		}
		if err := checkGlobs(r.Tools); err != nil {
			return fail(r.Line, r.ID, "tools: %v", err)
		}
		if !oneOf(r.Effect, Effects) {
			return fail(r.Line, r.ID, "effect must be one of %v, got %q", Effects, r.Effect)
		}
	}
	return nil
}

func (p *Policy) validateLimits(fail failFunc) error {
	seen := map[string]bool{}
	for _, l := range p.RateLimits {
		if !ruleIDPattern.MatchString(l.ID) {
			return fail(l.Line, l.ID, "rate limit id is required and must match %s", ruleIDPattern)
		}
		if seen[l.ID] {
			return fail(l.Line, l.ID, "duplicate rate limit id")
		}
		seen[l.ID] = true
		if len(l.Tools) == 0 {
			return fail(l.Line, l.ID, `tools is required (use ["*"] for every tool)`)
		}
		if err := checkGlobs(l.Tools); err != nil {
			return fail(l.Line, l.ID, "tools: %v", err)
		}
		if l.Limit <= 0 {
			return fail(l.Line, l.ID, "limit must be a positive integer")
		}
		if l.Window.Duration <= 0 {
			return fail(l.Line, l.ID, "window is required, e.g. 1h")
		}
	}
	return nil
}

func checkGlobs(globs []string) error {
	for _, g := range globs {
		if g == "" {
			return fmt.Errorf("empty pattern")
		}
	}
	return nil
}

func oneOf(s string, set []string) bool {
	for _, v := range set {
		if s == v {
			return true
		}
	}
	return false
}

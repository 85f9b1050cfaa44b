// Package policy reads AgentPolicy YAML files into plain structs, checking
// their structure and remembering the line of every rule and expression.
package policy

import (
	"fmt"
	"time"
)

// APIVersion and Kind are the only accepted header values.
const (
	APIVersion = "agentpdp/v1"
	Kind       = "AgentPolicy"
)

// Policy is one AgentPolicy document as written.
type Policy struct {
	APIVersion   string            `yaml:"apiVersion"`
	Kind         string            `yaml:"kind"`
	Name         string            `yaml:"name"`
	Description  string            `yaml:"description"`
	Agents       []string          `yaml:"agents"`
	Mode         string            `yaml:"mode"`
	Default      string            `yaml:"default"`
	Variables    Variables         `yaml:"variables"`
	Rules        []Rule            `yaml:"rules"`
	RateLimits   []RateLimit       `yaml:"rate_limits"`
	Audit        Audit             `yaml:"audit"`
	Approval     Approval          `yaml:"approval"`
	SuspendAfter *SuspendAfter     `yaml:"suspend_after"`
	Labels       map[string]string `yaml:"labels"`

	// Where it came from, set by the loader.
	File string `yaml:"-"`
	Line int    `yaml:"-"`
}

// Expr is a CEL expression with the line it was written on.
type Expr struct {
	Src  string
	Line int
}

// Variable is one named expression, usable in rules as vars.NAME.
type Variable struct {
	Name string
	Expr Expr
}

// Variables keeps the order they were written in, so a variable can use the
// ones declared before it.
type Variables []Variable

// Rule is one entry of rules.
type Rule struct {
	ID      string            `yaml:"id"`
	Tools   []string          `yaml:"tools"`
	Effect  string            `yaml:"effect"`
	When    Expr              `yaml:"when"`
	Message string            `yaml:"message"`
	Tags    map[string]string `yaml:"tags"`
	Line    int               `yaml:"-"`
}

// RateLimit is one entry of rate_limits.
type RateLimit struct {
	ID     string   `yaml:"id"`
	Tools  []string `yaml:"tools"`
	Limit  int64    `yaml:"limit"`
	Window Duration `yaml:"window"`
	Key    Expr     `yaml:"key"`
	Cost   Expr     `yaml:"cost"`
	When   Expr     `yaml:"when"`
	Line   int      `yaml:"-"`
}

// Audit says what to keep out of audit records.
type Audit struct {
	Redact []string `yaml:"redact"`
}

// Approval configures approvals the policy's rules ask for.
type Approval struct {
	// TTL is how long a pending or granted approval stays valid (default 1h).
	TTL Duration `yaml:"ttl"`
}

// SuspendAfter suspends an agent automatically after Denials denials within
// Window.
type SuspendAfter struct {
	Denials int64    `yaml:"denials"`
	Window  Duration `yaml:"window"`
	// For is how long the suspension lasts; zero means until resumed.
	For Duration `yaml:"for"`
	// PerPrincipal suspends only the (agent, principal) pair.
	PerPrincipal bool `yaml:"per_principal"`
}

// Duration accepts Go durations plus a "d" suffix for days ("1d", "7d").
type Duration struct {
	time.Duration
	Line int
}

// Error is a problem in one policy file, located by line and, when it
// concerns one, the rule id.
type Error struct {
	File string
	Line int
	Rule string
	Msg  string
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Rule != "" {
		return fmt.Sprintf("%s: rule %q: %s", loc, e.Rule, e.Msg)
	}
	return fmt.Sprintf("%s: %s", loc, e.Msg)
}

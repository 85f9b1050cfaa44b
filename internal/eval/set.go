package eval

import (
	"sort"
	"sync"
	"time"

	"cel.dev/cel-go/common/types"

	"github.com/agentpdp/agentpdp/internal/policy"
)

// Effect is what a rule, or a whole evaluation, decides.
type Effect int

const (
	Allow Effect = iota + 1
	Deny
	RequireApproval
)

func (e Effect) String() string {
	switch e {
	case Allow:
		return "ALLOW"
	case Deny:
		return "DENY"
	case RequireApproval:
		return "REQUIRE_APPROVAL"
	}
	return "UNSPECIFIED"
}

// Mode is how a policy is rolled out.
type Mode int

const (
	Enforce Mode = iota + 1
	Warn
	Observe
)

func (m Mode) String() string {
	switch m {
	case Enforce:
		return "ENFORCE"
	case Warn:
		return "WARN"
	case Observe:
		return "OBSERVE"
	}
	return "UNSPECIFIED"
}

// Set is a compiled, immutable policy set. It is swapped whole on reload.
type Set struct {
	// Version is a digest of every loaded file's name and bytes.
	Version  string
	Policies []*Policy

	exact   map[string]*Policy
	globs   []agentGlob // most specific first
	adapter types.Adapter
	acts    sync.Pool // *activation
}

type agentGlob struct {
	pattern string
	policy  *Policy
}

// Policy is one compiled AgentPolicy.
type Policy struct {
	Name         string
	File         string
	Mode         Mode
	Default      Effect
	ApprovalTTL  time.Duration
	SuspendAfter *policy.SuspendAfter
	// Redact holds the audit.redact paths split into field names, "args."
	// dropped: split once here rather than on every audited decision.
	Redact [][]string

	rules  []*rule
	limits []*limit
	// plans holds, for every tool named exactly somewhere in the policy, the
	// rules and limits that can match it, so a decision skips the rest.
	plans map[string]*plan
	// wild is the plan for tools no rule names exactly: only glob entries.
	wild *plan
}

type plan struct {
	rules  []*rule
	limits []*limit
}

type rule struct {
	id      string
	tools   []string
	effect  Effect
	when    *program // nil: always
	message string
	tags    map[string]string
	line    int
}

type limit struct {
	id     string
	tools  []string
	limit  int64
	window time.Duration
	key    *program // nil: one counter for the whole policy
	cost   *program // nil: 1
	when   *program // nil: always
}

// PolicyFor finds the policy that governs an agent id: an exact id wins,
// then the most specific glob (longest pattern). Nil when none names it.
func (s *Set) PolicyFor(agentID string) *Policy {
	if p, ok := s.exact[agentID]; ok {
		return p
	}
	for _, g := range s.globs {
		if policy.Match(g.pattern, agentID) {
			return g.policy
		}
	}
	return nil
}

// AgentLabel names an agent for metrics without letting callers mint label
// values: an exact id a policy names, else the glob that matched, else
// "unknown".
func (s *Set) AgentLabel(agentID string) string {
	if _, ok := s.exact[agentID]; ok {
		return agentID
	}
	for _, g := range s.globs {
		if policy.Match(g.pattern, agentID) {
			return g.pattern
		}
	}
	return "unknown"
}

// ToolLabel is tool when the policy names it exactly, else "other".
func (p *Policy) ToolLabel(tool string) string {
	if _, ok := p.plans[tool]; ok {
		return tool
	}
	return "other"
}

func (p *Policy) planFor(tool string) *plan {
	if pl, ok := p.plans[tool]; ok {
		return pl
	}
	return p.wild
}

// index builds the per-tool plans once, at load.
func (p *Policy) index() {
	names := map[string]bool{}
	for _, r := range p.rules {
		for _, t := range r.tools {
			if !policy.IsGlob(t) {
				names[t] = true
			}
		}
	}
	for _, l := range p.limits {
		for _, t := range l.tools {
			if !policy.IsGlob(t) {
				names[t] = true
			}
		}
	}
	p.plans = make(map[string]*plan, len(names))
	for name := range names {
		p.plans[name] = p.buildPlan(func(pattern string) bool { return policy.Match(pattern, name) })
	}
	p.wild = p.buildPlan(policy.IsGlob)
}

func (p *Policy) buildPlan(keep func(pattern string) bool) *plan {
	pl := &plan{}
	for _, r := range p.rules {
		if anyOf(r.tools, keep) {
			pl.rules = append(pl.rules, r)
		}
	}
	for _, l := range p.limits {
		if anyOf(l.tools, keep) {
			pl.limits = append(pl.limits, l)
		}
	}
	return pl
}

func anyOf(patterns []string, keep func(string) bool) bool {
	for _, t := range patterns {
		if keep(t) {
			return true
		}
	}
	return false
}

// toolMatches is checked at decision time for wild plans, whose glob
// entries were kept without knowing the tool.
func toolMatches(patterns []string, tool string) bool {
	for _, t := range patterns {
		if policy.Match(t, tool) {
			return true
		}
	}
	return false
}

func sortGlobs(gs []agentGlob) {
	sort.SliceStable(gs, func(i, j int) bool { return len(gs[i].pattern) > len(gs[j].pattern) })
}

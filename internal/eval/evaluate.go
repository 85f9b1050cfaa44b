package eval

import (
	"context"
	"fmt"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"
	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
	"github.com/agentpdp/agentpdp/internal/ratelimit"
)

// Built-in reason ids, for decisions no rule made.
const (
	ReasonUnknownAgent = "unknown_agent"
	ReasonDefault      = "default"
	ReasonError        = "evaluation_error"
)

// Reason is one matched rule or built-in reason.
type Reason struct {
	Policy  string
	RuleID  string
	Effect  Effect
	Message string
	Tags    map[string]string
}

// Result is what the rules say about one call.
type Result struct {
	// Policy is nil when no policy names the agent.
	Policy  *Policy
	Effect  Effect
	Reasons []Reason
	// Limits are the rate limits that apply, evaluated, unless the rules deny.
	Limits []ratelimit.Request

	reasonBuf [2]Reason // most decisions match one or two rules
}

// Evaluate runs every rule that can match the call and combines them: any
// DENY wins, then any REQUIRE_APPROVAL, then any ALLOW, else the policy's
// default. An expression that fails is a DENY naming it (fail closed).
func (s *Set) Evaluate(ctx context.Context, req *pb.AuthorizeRequest, now time.Time) *Result {
	agentID := req.GetAgent().GetId()
	p := s.PolicyFor(agentID)
	if p == nil {
		return &Result{Effect: Deny, Reasons: []Reason{{
			RuleID: ReasonUnknownAgent, Effect: Deny,
			Message: fmt.Sprintf("no policy governs agent %q", agentID),
		}}}
	}
	act := s.activation(req, now)
	defer s.acts.Put(act)
	res := &Result{Policy: p}
	res.Reasons = res.reasonBuf[:0]
	pl := p.planFor(req.GetTool())
	matched := [3]bool{}
	for _, r := range pl.rules {
		if pl == p.wild && !toolMatches(r.tools, req.GetTool()) {
			continue
		}
		ok, err := evalBool(r.when, act)
		if err != nil {
			res.Reasons = append(res.Reasons, Reason{Policy: p.Name, RuleID: r.id, Effect: Deny,
				Message: fmt.Sprintf("%s: rule %s: %v", ReasonError, r.id, err), Tags: r.tags})
			matched[Deny-1] = true
			continue
		}
		if ok {
			res.Reasons = append(res.Reasons, Reason{Policy: p.Name, RuleID: r.id, Effect: r.effect,
				Message: r.message, Tags: r.tags})
			matched[r.effect-1] = true
		}
	}
	switch {
	case matched[Deny-1]:
		res.Effect = Deny
	case matched[RequireApproval-1]:
		res.Effect = RequireApproval
	case matched[Allow-1]:
		res.Effect = Allow
	default:
		res.Effect = p.Default
		res.Reasons = append(res.Reasons, Reason{Policy: p.Name, RuleID: ReasonDefault, Effect: p.Default,
			Message: "no rule matched; policy default"})
	}
	if res.Effect != Deny {
		s.evalLimits(p, pl, req.GetTool(), act, res)
	}
	return res
}

func (s *Set) evalLimits(p *Policy, pl *plan, tool string, act *activation, res *Result) {
	if len(pl.limits) > 0 {
		res.Limits = make([]ratelimit.Request, 0, len(pl.limits))
	}
	for _, l := range pl.limits {
		if pl == p.wild && !toolMatches(l.tools, tool) {
			continue
		}
		req, apply, err := l.evaluate(p.Name, act)
		if err != nil {
			res.Effect = Deny
			res.Reasons = append(res.Reasons, Reason{Policy: p.Name, RuleID: l.id, Effect: Deny,
				Message: fmt.Sprintf("%s: rate limit %s: %v", ReasonError, l.id, err)})
			res.Limits = nil
			return
		}
		if apply {
			res.Limits = append(res.Limits, req)
		}
	}
}

func (l *limit) evaluate(policyName string, act *activation) (ratelimit.Request, bool, error) {
	req := ratelimit.Request{Policy: policyName, ID: l.id, Limit: l.limit, Window: l.window, Cost: 1}
	if ok, err := evalBool(l.when, act); err != nil || !ok {
		return req, false, err
	}
	if l.key != nil {
		v, err := l.key.eval(act)
		if err != nil {
			return req, false, fmt.Errorf("key: %w", err)
		}
		req.Key = keyString(v)
	}
	if l.cost != nil {
		v, err := l.cost.eval(act)
		if err != nil {
			return req, false, fmt.Errorf("cost: %w", err)
		}
		n, ok := v.(types.Int)
		if !ok || n < 0 {
			return req, false, fmt.Errorf("cost must be a non-negative int, got %v", v)
		}
		req.Cost = int64(n)
	}
	// A call that costs nothing (no recipients, say) is not limited.
	return req, req.Cost > 0, nil
}

func keyString(v ref.Val) string {
	if s, ok := v.(types.String); ok {
		return string(s)
	}
	return fmt.Sprint(v.Value())
}

func evalBool(prg *program, act *activation) (bool, error) {
	if prg == nil {
		return true, nil
	}
	v, err := prg.eval(act)
	if err != nil {
		return false, err
	}
	b, ok := v.(types.Bool)
	if !ok {
		return false, fmt.Errorf("expected bool, got %s", v.Type())
	}
	return bool(b), nil
}

// activation resolves the CEL variables from the request, converting each
// at most once per decision however many rules read it. It holds the
// request's objects and the args wrapper itself, and the Set recycles it,
// so resolving them allocates nothing.
type activation struct {
	adapter  types.Adapter
	req      *pb.AuthorizeRequest
	now      time.Time
	vals     [7]ref.Val
	size     int // request weight + 1; 0 until measured
	objects  [3]objectVal
	args     structVal
	results  [4]result // of shared programs
	nResults int
}

// The variables a rule can read, as indexes into activation.vals.
const (
	varAgent = iota
	varPrincipal
	varTool
	varArgs
	varResource
	varInputs
	varNow
	numVars
)

// varIndex is a switch, not a loop over names: CEL resolves a variable on
// every reference in every rule.
func varIndex(name string) int {
	switch name {
	case "agent":
		return varAgent
	case "principal":
		return varPrincipal
	case "tool":
		return varTool
	case "args":
		return varArgs
	case "resource":
		return varResource
	case "inputs":
		return varInputs
	case "now":
		return varNow
	}
	return -1
}

// activation takes a recycled activation; nothing of it outlives Evaluate
// (results hold copies: strings, numbers, booleans).
func (s *Set) activation(req *pb.AuthorizeRequest, now time.Time) *activation {
	a, _ := s.acts.Get().(*activation)
	if a == nil {
		a = new(activation)
	}
	*a = activation{adapter: s.adapter, req: req, now: now}
	return a
}

func (a *activation) ResolveName(name string) (any, bool) {
	i := varIndex(name)
	if i < 0 {
		return nil, false
	}
	if a.vals[i] == nil {
		a.vals[i] = a.value(i)
	}
	return a.vals[i], true
}

func (a *activation) Parent() interpreter.Activation { return nil }

var (
	emptyArgs = &structpb.Struct{}
	noInputs  = types.DefaultTypeAdapter.NativeToValue([]any{})
)

func (a *activation) value(i int) ref.Val {
	r, adapt := a.req, a.adapter.NativeToValue
	switch i {
	case varAgent:
		return a.object(agentObject)
	case varPrincipal:
		return a.object(principalObject)
	case varTool:
		return types.String(r.GetTool())
	case varArgs:
		a.args = structVal{s: r.GetArgs(), adapter: a.adapter}
		return &a.args
	case varResource:
		return a.object(resourceObject)
	case varInputs:
		if len(r.GetInputs()) == 0 {
			return noInputs
		}
		ins := make([]any, len(r.GetInputs()))
		for j, in := range r.GetInputs() {
			ins[j] = map[string]any{"source": in.GetSource(), "text": in.GetText()}
		}
		return adapt(ins)
	}
	return types.Timestamp{Time: a.now}
}

func (a *activation) object(k objectKind) *objectVal {
	a.objects[k] = objectVal{kind: k, req: a.req, adapter: a.adapter}
	return &a.objects[k]
}

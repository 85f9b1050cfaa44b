package eval

import (
	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types/ref"
	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
)

// fastBound is the request weight (see weight) up to which programs proven
// cheap at load time run without runtime cost tracking. No list, map or
// string in a request holds more elements than the request weighs, so the
// load-time estimate made with this bound covers every such request.
const fastBound = 16 << 10

// program is one compiled expression. Runtime cost tracking costs several
// allocations per evaluation, so it is skipped when the static worst case
// for small requests is already within the limit; large requests, and
// expressions that could be costly, always run tracked.
type program struct {
	fast cel.Program // nil when the expression is not proven cheap
	safe cel.Program
	// shared marks an expression the policy uses more than once; its
	// result is remembered for the rest of the decision.
	shared bool
}

func (c *Compiler) newProgram(env *cel.Env, ast *cel.Ast) (*program, error) {
	safe, err := env.Program(ast, cel.CostLimit(c.costLimit), cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, err
	}
	p := &program{safe: safe}
	est, err := env.EstimateCost(ast, sizeBound{max: fastBound})
	if err == nil && est.Max <= c.costLimit {
		if p.fast, err = env.Program(ast, cel.EvalOptions(cel.OptOptimize)); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// eval runs without a context: the cost limit, not a deadline, bounds
// evaluation, and ContextEval allocates a cancel context per call.
func (p *program) eval(act *activation) (ref.Val, error) {
	if p.shared {
		return act.evalShared(p)
	}
	return p.run(act)
}

func (p *program) run(act *activation) (ref.Val, error) {
	prg := p.safe
	if p.fast != nil && act.small() {
		prg = p.fast
	}
	v, _, err := prg.Eval(act)
	return v, err
}

// evalShared runs a shared program once per decision.
func (a *activation) evalShared(p *program) (ref.Val, error) {
	for _, r := range a.results[:a.nResults] {
		if r.prg == p {
			return r.val, r.err
		}
	}
	v, err := p.run(a)
	if a.nResults < len(a.results) {
		a.results[a.nResults] = result{p, v, err}
		a.nResults++
	}
	return v, err
}

type result struct {
	prg *program
	val ref.Val
	err error
}

// small reports, once per decision, whether the request is within fastBound.
func (a *activation) small() bool {
	if a.size == 0 {
		a.size = weight(a.req) + 1
	}
	return a.size <= fastBound
}

// weight is the bytes of every string plus one per value in the request:
// at least the size of any list, map or string in it. It stops counting
// past fastBound. It is proto.Size's bound without proto.Size's reflection.
func weight(req *pb.AuthorizeRequest) int {
	w := len(req.GetTool()) + len(req.GetApprovalId())
	for _, s := range []string{req.GetAgent().GetId(), req.GetAgent().GetFramework(),
		req.GetAgent().GetSessionId(), req.GetPrincipal().GetId(), req.GetResource().GetKind(),
		req.GetResource().GetId()} {
		w += len(s)
	}
	for _, r := range req.GetPrincipal().GetRoles() {
		w += len(r) + 1
	}
	for _, in := range req.GetInputs() {
		w += len(in.GetSource()) + len(in.GetText()) + 1
	}
	for _, s := range []*structpb.Struct{req.GetArgs(), req.GetAgent().GetAttributes(),
		req.GetPrincipal().GetAttributes(), req.GetResource().GetAttributes()} {
		if w > fastBound {
			return w
		}
		w += structWeight(s, fastBound-w)
	}
	return w
}

func structWeight(s *structpb.Struct, budget int) int {
	if s == nil {
		return 0
	}
	w := 0
	var buf [32]*structpb.Value
	stack := buf[:0]
	for key, f := range s.GetFields() {
		w += len(key) + 1
		stack = append(stack, f)
	}
	for len(stack) > 0 && w <= budget {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		w++
		switch k := v.GetKind().(type) {
		case *structpb.Value_StringValue:
			w += len(k.StringValue)
		case *structpb.Value_StructValue:
			for key, f := range k.StructValue.GetFields() {
				w += len(key) + 1
				stack = append(stack, f)
			}
		case *structpb.Value_ListValue:
			stack = append(stack, k.ListValue.GetValues()...)
		}
	}
	return w
}

// sizeBound sizes every list, map and string of the request at most max.
// Custom functions cost 1 here as in the runtime tracker: what bounds the
// content functions' work is the request size limits, not CEL's cost.
type sizeBound struct{ max uint64 }

func (s sizeBound) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	if n.ComputedSize() != nil {
		return nil
	}
	return &cost.SizeEstimate{Min: 0, Max: s.max}
}

func (s sizeBound) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}

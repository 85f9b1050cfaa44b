package eval

import (
	"fmt"

	"cel.dev/cel-go/cel"

	"github.com/agentpdp/agentpdp/internal/policy"
)

// policyCompiler compiles one policy's expressions in an environment that
// knows its variables. vars.NAME references are inlined at compile time
// (cel.bind where one expression reads a variable twice), so constants fold
// and evaluation pays nothing for the indirection.
type policyCompiler struct {
	c       *Compiler
	src     *policy.Policy
	env     *cel.Env
	inlines []*cel.InlineVariable
	// seen shares one program among a policy's identical expressions (two
	// limits keyed by principal.id), so a decision evaluates it once.
	seen map[string]*program
}

func (c *Compiler) newPolicyCompiler(src *policy.Policy) (*policyCompiler, error) {
	pc := &policyCompiler{c: c, src: src, env: c.env, seen: map[string]*program{}}
	for _, v := range src.Variables {
		ast, err := pc.check(v.Expr, "", "variable "+v.Name, nil)
		if err != nil {
			return nil, err
		}
		name := "vars." + v.Name
		env, err := pc.env.Extend(cel.Variable(name, ast.OutputType()))
		if err != nil {
			return nil, pc.errorf(v.Expr.Line, "", "variable %s: %v", v.Name, err)
		}
		pc.env = env
		pc.inlines = append(pc.inlines, cel.NewInlineVariable(name, ast))
	}
	return pc, nil
}

func (pc *policyCompiler) rule(r policy.Rule) (*rule, error) {
	cr := &rule{
		id: r.ID, tools: r.Tools, effect: parseEffect(r.Effect),
		message: r.Message, tags: r.Tags, line: r.Line,
	}
	var err error
	cr.when, err = pc.program(r.When, r.ID, "when", cel.BoolType)
	return cr, err
}

func (pc *policyCompiler) limit(l policy.RateLimit) (*limit, error) {
	cl := &limit{id: l.ID, tools: l.Tools, limit: l.Limit, window: l.Window.Duration}
	var err error
	if cl.key, err = pc.program(l.Key, l.ID, "key", nil); err != nil {
		return nil, err
	}
	if cl.cost, err = pc.program(l.Cost, l.ID, "cost", cel.IntType); err != nil {
		return nil, err
	}
	if cl.when, err = pc.program(l.When, l.ID, "when", cel.BoolType); err != nil {
		return nil, err
	}
	return cl, nil
}

// program compiles one expression; an empty one yields a nil program.
func (pc *policyCompiler) program(e policy.Expr, id, field string, want *cel.Type) (*program, error) {
	if e.Src == "" {
		return nil, nil
	}
	ast, err := pc.check(e, id, field, want)
	if err != nil {
		return nil, err
	}
	if prg := pc.seen[e.Src]; prg != nil {
		prg.shared = true
		return prg, nil
	}
	prg, err := pc.c.newProgram(pc.env, ast)
	if err != nil {
		return nil, pc.errorf(e.Line, id, "%s: %v", field, err)
	}
	pc.seen[e.Src] = prg
	return prg, nil
}

// check parses, type-checks and inlines variables. want nil accepts any type.
func (pc *policyCompiler) check(e policy.Expr, id, field string, want *cel.Type) (*cel.Ast, error) {
	ast, iss := pc.env.Compile(e.Src)
	if iss.Err() != nil {
		return nil, pc.errorf(e.Line, id, "%s: %v", field, iss.Err())
	}
	if err := checkFields(ast); err != nil {
		return nil, pc.errorf(e.Line, id, "%s: %v", field, err)
	}
	out := ast.OutputType()
	if want != nil && !out.IsExactType(want) && !out.IsExactType(cel.DynType) {
		return nil, pc.errorf(e.Line, id, "%s must be %s, is %s", field, want, out)
	}
	if len(pc.inlines) > 0 {
		opt, err := cel.NewStaticOptimizer(cel.NewInliningOptimizer(pc.inlines...))
		if err != nil {
			return nil, pc.errorf(e.Line, id, "%s: %v", field, err)
		}
		var iss *cel.Issues
		if ast, iss = opt.Optimize(pc.env, ast); iss.Err() != nil {
			return nil, pc.errorf(e.Line, id, "%s: %v", field, iss.Err())
		}
	}
	return ast, nil
}

func (pc *policyCompiler) errorf(line int, id, format string, a ...any) error {
	return &policy.Error{File: pc.src.File, Line: line, Rule: id, Msg: fmt.Sprintf(format, a...)}
}

package eval

import (
	"fmt"
	"sort"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
)

// knownFields are the fields each request object has; a policy that selects
// another (agent.idd) is refused at load instead of failing every call.
var knownFields = map[string][]string{
	"agent":     {"id", "framework", "session_id", "attributes"},
	"principal": {"id", "roles", "attributes"},
	"resource":  {"kind", "id", "attributes"},
}

// inputFields are the fields of each element of inputs.
var inputFields = []string{"source", "text"}

// checkFields finds selections of unknown fields on the request objects.
func checkFields(checked *cel.Ast) error {
	root := ast.NavigateAST(checked.NativeRep())
	var bad []string
	ast.MatchDescendants(root, func(e ast.NavigableExpr) bool {
		if e.Kind() != ast.SelectKind {
			return false
		}
		sel := e.AsSelect()
		op := sel.Operand()
		if op.Kind() != ast.IdentKind {
			return false
		}
		fields, ok := knownFields[op.AsIdent()]
		if ok && !contains(fields, sel.FieldName()) {
			bad = append(bad, fmt.Sprintf("%s has no field %q (fields: %s)",
				op.AsIdent(), sel.FieldName(), strings.Join(fields, ", ")))
		}
		return false
	})
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("%s", strings.Join(bad, "; "))
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

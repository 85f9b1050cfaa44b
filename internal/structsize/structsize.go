// Package structsize bounds the size of a protobuf Struct without
// encoding it: request validation checks args against their limit with it,
// and the audit trail budgets its queue with it.
package structsize

import "google.golang.org/protobuf/types/known/structpb"

// nodeOverhead bounds the wire bytes a Struct value costs besides its key and
// string payload: the map entry's tag and length, the key's tag and length,
// the value's tag and length, the kind's tag and its fixed payload (8 bytes
// for a number, a length for a string, struct or list), lengths at most 5
// bytes each.
const nodeOverhead = 1 + 5 + 1 + 5 + 1 + 5 + 1 + 8

// Bound reports an upper bound of s's encoded size and whether s nests
// values deeper than max (s itself is level 1), in one walk, iteratively so
// a hostile request cannot exhaust the stack. It stops at the first level
// too deep; the bound is then partial.
func Bound(s *structpb.Struct, max int) (bound int, deep bool) {
	if s == nil {
		return 0, false
	}
	type item struct {
		s     *structpb.Struct
		l     *structpb.ListValue
		depth int
	}
	stack := []item{{s: s, depth: 1}}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		visit := func(key string, v *structpb.Value) {
			deep = deep || it.depth+1 > max
			bound += nodeOverhead + len(key)
			switch k := v.GetKind().(type) {
			case *structpb.Value_StringValue:
				bound += len(k.StringValue)
			case *structpb.Value_StructValue:
				stack = append(stack, item{s: k.StructValue, depth: it.depth + 1})
			case *structpb.Value_ListValue:
				stack = append(stack, item{l: k.ListValue, depth: it.depth + 1})
			}
		}
		for k, v := range it.s.GetFields() {
			visit(k, v)
		}
		for _, v := range it.l.GetValues() {
			visit("", v)
		}
		if deep {
			return bound, true
		}
	}
	return bound, false
}

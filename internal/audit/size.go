package audit

import (
	"math"

	"github.com/agentpdp/agentpdp/internal/structsize"
)

// sizeHint estimates r's encoded size without encoding it, for the queue's
// byte budget: a fixed allowance for the fields the PDP sets, plus what a
// caller controls (inputs, args, attributes, an outcome's summary and
// details), which is what can make a record big.
func (r *Record) sizeHint() int64 {
	n := 1024
	for _, in := range r.Inputs {
		n += len(in.Source) + len(in.Text) + 32
	}
	if r.ArgsFrom != nil {
		b, _ := structsize.Bound(r.ArgsFrom.Struct, math.MaxInt)
		n += b
	}
	n += anySize(r.Args)
	if a := r.Agent; a != nil {
		n += anySize(a.Attrs)
	}
	if p := r.Principal; p != nil {
		n += anySize(p.Attrs)
		for _, role := range p.Roles {
			n += len(role) + 3
		}
	}
	if res := r.Resource; res != nil {
		n += anySize(res.Attrs)
	}
	if o := r.Outcome; o != nil {
		n += len(o.Summary) + anySize(o.Details)
	}
	return int64(n)
}

// anySize counts a JSON value's strings plus a few bytes of punctuation per
// value; numbers and the like count as 8.
func anySize(v any) int {
	switch x := v.(type) {
	case string:
		return len(x) + 3
	case map[string]any:
		n := 2
		for k, e := range x {
			n += len(k) + 4 + anySize(e)
		}
		return n
	case []any:
		n := 2
		for _, e := range x {
			n += 1 + anySize(e)
		}
		return n
	}
	return 8
}

package eval

import (
	"reflect"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
)

type objectKind uint8

const (
	agentObject objectKind = iota
	principalObject
	resourceObject
)

// objectKeys are the fields of agent, principal and resource as policies
// see them (checkFields enforces the same names at load).
var objectKeys = [...][]string{
	agentObject:     {"id", "framework", "session_id", "attributes"},
	principalObject: {"id", "roles", "attributes"},
	resourceObject:  {"kind", "id", "attributes"},
}

// objectVal is agent, principal or resource as a CEL map read straight from
// the request: a field is converted when a rule first reads it, and the
// whole map is built only when a rule treats the object as one value
// (equality, iteration, conversion). Building a Go map for each of them on
// every decision was a fifth of a decision's allocations.
type objectVal struct {
	kind    objectKind
	req     *pb.AuthorizeRequest
	adapter types.Adapter
	fields  [4]ref.Val
	whole   traits.Mapper
}

var _ traits.Mapper = (*objectVal)(nil)

func (o *objectVal) field(i int) ref.Val {
	if o.fields[i] == nil {
		o.fields[i] = o.load(i)
	}
	return o.fields[i]
}

// load converts field i; nil message fields read as their defaults.
func (o *objectVal) load(i int) ref.Val {
	name := objectKeys[o.kind][i]
	if name == "attributes" {
		return &structVal{s: o.attributes(), adapter: o.adapter}
	}
	r := o.req
	switch {
	case o.kind == principalObject && name == "roles":
		return types.NewStringList(o.adapter, orDefaultSlice(r.GetPrincipal().GetRoles()))
	case o.kind == principalObject:
		return types.String(r.GetPrincipal().GetId())
	case o.kind == resourceObject && name == "kind":
		return types.String(r.GetResource().GetKind())
	case o.kind == resourceObject:
		return types.String(r.GetResource().GetId())
	case name == "framework":
		return types.String(r.GetAgent().GetFramework())
	case name == "session_id":
		return types.String(r.GetAgent().GetSessionId())
	}
	return types.String(r.GetAgent().GetId())
}

func (o *objectVal) attributes() *structpb.Struct {
	switch o.kind {
	case agentObject:
		return o.req.GetAgent().GetAttributes()
	case principalObject:
		return o.req.GetPrincipal().GetAttributes()
	}
	return o.req.GetResource().GetAttributes()
}

func orDefaultSlice(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (o *objectVal) index(key ref.Val) int {
	if k, ok := key.(types.String); ok {
		for i, name := range objectKeys[o.kind] {
			if name == string(k) {
				return i
			}
		}
	}
	return -1
}

func (o *objectVal) asMap() traits.Mapper {
	if o.whole == nil {
		m := make(map[string]any, len(objectKeys[o.kind]))
		for i, name := range objectKeys[o.kind] {
			m[name] = o.field(i)
		}
		o.whole = types.NewStringInterfaceMap(o.adapter, m)
	}
	return o.whole
}

// Find is what field selection and has() use.
func (o *objectVal) Find(key ref.Val) (ref.Val, bool) {
	if i := o.index(key); i >= 0 {
		return o.field(i), true
	}
	return o.asMap().Find(key)
}

func (o *objectVal) Get(key ref.Val) ref.Val {
	if i := o.index(key); i >= 0 {
		return o.field(i)
	}
	return o.asMap().Get(key)
}

func (o *objectVal) Contains(key ref.Val) ref.Val { return o.asMap().Contains(key) }
func (o *objectVal) Iterator() traits.Iterator    { return o.asMap().Iterator() }
func (o *objectVal) Size() ref.Val                { return types.Int(len(objectKeys[o.kind])) }
func (o *objectVal) Equal(other ref.Val) ref.Val  { return o.asMap().Equal(other) }
func (o *objectVal) Type() ref.Type               { return types.MapType }
func (o *objectVal) Value() any                   { return o.asMap().Value() }

func (o *objectVal) ConvertToNative(t reflect.Type) (any, error) {
	return o.asMap().ConvertToNative(t)
}

func (o *objectVal) ConvertToType(t ref.Type) ref.Val { return o.asMap().ConvertToType(t) }

package eval

import (
	"reflect"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"google.golang.org/protobuf/types/known/structpb"
)

// structVal is a google.protobuf.Struct (args, attributes) as a CEL map.
// It remembers the fields rules read: cel-go's own JSON map converts a
// field anew on every access (a list wrapper for args.to each time), and
// the rules of one policy read the same few fields again and again. The
// whole map is built only when a rule treats the struct as one value
// (equality, iteration, `in`, conversion).
type structVal struct {
	s       *structpb.Struct
	adapter types.Adapter
	keys    [8]string
	vals    [8]ref.Val // nil: the field is absent
	n       int
	whole   traits.Mapper
}

var _ traits.Mapper = (*structVal)(nil)

func (m *structVal) asMap() traits.Mapper {
	if m.whole == nil {
		s := m.s
		if s == nil {
			s = emptyArgs
		}
		m.whole = m.adapter.NativeToValue(s).(traits.Mapper)
	}
	return m.whole
}

// Find is what field selection and has() use.
func (m *structVal) Find(key ref.Val) (ref.Val, bool) {
	k, ok := key.(types.String)
	if !ok {
		return m.asMap().Find(key)
	}
	for i := 0; i < m.n; i++ {
		if m.keys[i] == string(k) {
			return m.vals[i], m.vals[i] != nil
		}
	}
	var v ref.Val
	if f, found := m.s.GetFields()[string(k)]; found {
		v = m.adapter.NativeToValue(f)
	}
	if m.n < len(m.keys) {
		m.keys[m.n], m.vals[m.n] = string(k), v
		m.n++
	}
	return v, v != nil
}

func (m *structVal) Get(key ref.Val) ref.Val {
	if v, found := m.Find(key); found {
		return v
	}
	return m.asMap().Get(key)
}

func (m *structVal) Contains(key ref.Val) ref.Val     { return m.asMap().Contains(key) }
func (m *structVal) Iterator() traits.Iterator        { return m.asMap().Iterator() }
func (m *structVal) Size() ref.Val                    { return types.Int(len(m.s.GetFields())) }
func (m *structVal) Equal(other ref.Val) ref.Val      { return m.asMap().Equal(other) }
func (m *structVal) Type() ref.Type                   { return types.MapType }
func (m *structVal) Value() any                       { return m.asMap().Value() }
func (m *structVal) ConvertToType(t ref.Type) ref.Val { return m.asMap().ConvertToType(t) }

func (m *structVal) ConvertToNative(t reflect.Type) (any, error) {
	return m.asMap().ConvertToNative(t)
}

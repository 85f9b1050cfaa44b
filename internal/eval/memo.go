package eval

import (
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// memoMap wraps a map value and remembers the fields read from it. A JSON
// Struct converts a field anew on every access (a list wrapper for args.to
// each time), and the rules of one policy read the same few fields again
// and again.
type memoMap struct {
	traits.Mapper
	keys [8]string
	vals [8]ref.Val
	n    int
}

func newMemoMap(v ref.Val) ref.Val {
	m, ok := v.(traits.Mapper)
	if !ok {
		return v
	}
	return &memoMap{Mapper: m}
}

// Find is what field selection and has() use.
func (m *memoMap) Find(key ref.Val) (ref.Val, bool) {
	k, ok := key.(types.String)
	if !ok {
		return m.Mapper.Find(key)
	}
	for i := 0; i < m.n; i++ {
		if m.keys[i] == string(k) {
			return m.vals[i], m.vals[i] != nil
		}
	}
	v, found := m.Mapper.Find(key)
	if m.n < len(m.keys) {
		m.keys[m.n] = string(k)
		if found {
			m.vals[m.n] = v
		}
		m.n++
	}
	return v, found
}

func (m *memoMap) Get(key ref.Val) ref.Val {
	if v, found := m.Find(key); found {
		return v
	}
	return m.Mapper.Get(key)
}

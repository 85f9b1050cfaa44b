package audit

import (
	"bytes"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"
)

// reference is the definition ProtoArgs implements: Struct.AsMap, every
// string masked, then each path redacted in order.
func reference(s *structpb.Struct, mask func(string) string, paths [][]string) map[string]any {
	if len(s.GetFields()) == 0 {
		return nil
	}
	m := s.AsMap()
	var walk func(v any) any
	walk = func(v any) any {
		switch t := v.(type) {
		case string:
			return mask(t)
		case map[string]any:
			for k, e := range t {
				t[k] = walk(e)
			}
		case []any:
			for i, e := range t {
				t[i] = walk(e)
			}
		}
		return v
	}
	walk(m)
	for _, p := range paths {
		redactPath(m, p)
	}
	return m
}

var fieldNames = []string{"to", "body", "card", "a", "b", "<x>", "é", ""}

func randomValue(r *rand.Rand, depth int) any {
	switch n := r.IntN(8); {
	case n == 0 && depth < 4:
		return randomMap(r, depth+1)
	case n == 1 && depth < 4:
		l := make([]any, r.IntN(3))
		for i := range l {
			l[i] = randomValue(r, depth+1)
		}
		return l
	case n == 2:
		return []float64{0, -1.5, 1e-7, 1e21, 42}[r.IntN(5)]
	case n == 3:
		return r.IntN(2) == 0
	case n == 4:
		return nil
	default:
		return []string{"alice@customer.com", "plain", "<b>&amp;", "call +1 415 555 0100", "漢字 \u2028"}[r.IntN(5)]
	}
}

func randomMap(r *rand.Rand, depth int) map[string]any {
	m := map[string]any{}
	for range r.IntN(4) {
		m[fieldNames[r.IntN(len(fieldNames))]] = randomValue(r, depth)
	}
	return m
}

func randomPaths(r *rand.Rand) [][]string {
	var ps [][]string
	for range r.IntN(4) {
		p := make([]string, 1+r.IntN(3))
		for i := range p {
			p[i] = fieldNames[r.IntN(len(fieldNames))]
		}
		ps = append(ps, p)
	}
	return ps
}

type maskEmails struct{}

func (maskEmails) Mask(s string) string {
	return strings.ReplaceAll(s, "alice@customer.com", "[EMAIL]")
}

// TestProtoArgsMatchDefinition checks, over random arguments and redact
// paths (nested, overlapping, through lists and absent fields), that a
// record encoded straight from the Struct has the bytes of one holding the
// reference map, and that Map returns that map.
func TestProtoArgsMatchDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		s, err := structpb.NewStruct(randomMap(r, 0))
		if err != nil {
			t.Fatal(err)
		}
		var mask Masker
		if i%3 != 0 {
			mask = maskEmails{}
		}
		p := &ProtoArgs{Struct: s, Mask: mask, Redact: randomPaths(r)}
		want := reference(s, p.mask, p.Redact)
		if got := p.Map(); !reflect.DeepEqual(got, want) {
			t.Fatalf("case %d: Map()\n got %v\nwant %v", i, got, want)
		}
		direct, err := newEncoder().body(&Record{Type: TypeDecision, ArgsFrom: p})
		if err != nil {
			t.Fatal(err)
		}
		viaMap, err := newEncoder().body(&Record{Type: TypeDecision, Args: want})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(direct, viaMap) {
			t.Fatalf("case %d (redact %q): encoded\n got %s\nwant %s", i, p.Redact, direct, viaMap)
		}
	}
}

// TestProtoArgsNonFinite: a NaN or infinity (possible in a protobuf Struct)
// makes the record take the sanitising path, as a map holding one does.
func TestProtoArgsNonFinite(t *testing.T) {
	s := &structpb.Struct{Fields: map[string]*structpb.Value{
		"nan": structpb.NewNumberValue(math.NaN()), "inf": structpb.NewNumberValue(math.Inf(-1)), "ok": structpb.NewStringValue("x"),
	}}
	p := &ProtoArgs{Struct: s}
	enc := newEncoder()
	rec, err := enc.prepare(&Record{Type: TypeDecision, ArgsFrom: p})
	if err != nil {
		t.Fatal(err)
	}
	got := string(enc.w.b)
	if rec.ArgsFrom != nil || !strings.Contains(got, `"args":{"inf":"-Inf","nan":"NaN","ok":"x"}`) {
		t.Fatalf("sanitised record: %s (%+v)", got, rec)
	}
}

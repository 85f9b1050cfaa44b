package structsize

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// TestBoundIsOverSize pins the cheap size bound above protobuf's exact size
// (decision.Validate skips the exact size when the bound is under the
// limit) and the depth check to a recursive reference, over random
// structures.
func TestBoundIsOverSize(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		s := randomStruct(rng, 1+rng.IntN(6))
		bound, deep := Bound(s, 4)
		if n := proto.Size(s); !deep && bound < n {
			t.Fatalf("bound %d under the exact size %d for %v", bound, n, s)
		}
		if want := depthOf(structpb.NewStructValue(s)) > 4; deep != want {
			t.Fatalf("deep = %v, want %v for %v", deep, want, s)
		}
	}
}

func randomStruct(rng *rand.Rand, depth int) *structpb.Struct {
	s := &structpb.Struct{Fields: map[string]*structpb.Value{}}
	for i := rng.IntN(4); i > 0; i-- {
		s.Fields[strings.Repeat("k", rng.IntN(200))+strconv.Itoa(i)] = randomValue(rng, depth-1)
	}
	return s
}

func randomValue(rng *rand.Rand, depth int) *structpb.Value {
	switch k := rng.IntN(6); {
	case k == 0 && depth > 0:
		return structpb.NewStructValue(randomStruct(rng, depth))
	case k == 1 && depth > 0:
		l := &structpb.ListValue{}
		for i := rng.IntN(4); i > 0; i-- {
			l.Values = append(l.Values, randomValue(rng, depth-1))
		}
		return structpb.NewListValue(l)
	case k == 2:
		return structpb.NewNumberValue(rng.NormFloat64())
	case k == 3:
		return structpb.NewBoolValue(true)
	case k == 4:
		return structpb.NewNullValue()
	default:
		return structpb.NewStringValue(strings.Repeat("é", rng.IntN(300)))
	}
}

// depthOf counts levels the way DESIGN.md's limit does: the top-level
// structure is level 1, each value inside a structure or list one more.
func depthOf(v *structpb.Value) int {
	d := 0
	for _, c := range v.GetStructValue().GetFields() {
		d = max(d, depthOf(c))
	}
	for _, c := range v.GetListValue().GetValues() {
		d = max(d, depthOf(c))
	}
	return d + 1
}

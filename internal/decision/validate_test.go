package decision

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
)

func nested(depth int) *structpb.Struct {
	v := structpb.NewStringValue("leaf")
	for i := 0; i < depth; i++ {
		v = structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"k": v}})
	}
	return v.GetStructValue()
}

func TestValidate(t *testing.T) {
	big, _ := structpb.NewStruct(map[string]any{"blob": strings.Repeat("x", MaxArgsBytes+1)})
	cases := []struct {
		name  string
		req   *pb.AuthorizeRequest
		field string // "" means valid
	}{
		{"valid", &pb.AuthorizeRequest{Agent: &pb.Agent{Id: "a"}, Tool: "t"}, ""},
		{"missing agent", &pb.AuthorizeRequest{Tool: "t"}, "agent.id"},
		{"missing tool", &pb.AuthorizeRequest{Agent: &pb.Agent{Id: "a"}}, "tool"},
		{"args over 1 MiB", &pb.AuthorizeRequest{Agent: &pb.Agent{Id: "a"}, Tool: "t", Args: big}, "args"},
		{"args 31 deep", &pb.AuthorizeRequest{Agent: &pb.Agent{Id: "a"}, Tool: "t", Args: nested(31)}, ""},
		{"args 40 deep", &pb.AuthorizeRequest{Agent: &pb.Agent{Id: "a"}, Tool: "t", Args: nested(40)}, "args"},
		{"attributes deep", &pb.AuthorizeRequest{Agent: &pb.Agent{Id: "a"}, Tool: "t",
			Principal: &pb.Principal{Attributes: nested(40)}}, "principal.attributes"},
		{"huge tool name", &pb.AuthorizeRequest{Agent: &pb.Agent{Id: "a"}, Tool: strings.Repeat("t", 300)}, "tool"},
		{"too many inputs", &pb.AuthorizeRequest{Agent: &pb.Agent{Id: "a"}, Tool: "t",
			Inputs: make([]*pb.Input, MaxInputs+1)}, "inputs"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.req)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			ie, ok := err.(*InvalidError)
			if !ok || ie.Field != tc.field {
				t.Fatalf("got %v, want an error naming %s", err, tc.field)
			}
		})
	}
}

func TestShortNamesMatchEnums(t *testing.T) {
	for v := range pb.Decision_name {
		d := pb.Decision(v)
		if got, want := shortDecision(d), strings.TrimPrefix(d.String(), "DECISION_"); got != want {
			t.Errorf("shortDecision(%v) = %q, want %q", d, got, want)
		}
	}
	for v := range pb.Mode_name {
		m := pb.Mode(v)
		if got, want := shortMode(m), strings.TrimPrefix(m.String(), "MODE_"); got != want {
			t.Errorf("shortMode(%v) = %q, want %q", m, got, want)
		}
	}
}

// TestWalkBoundsSize pins the cheap size bound above protobuf's exact size
// (Validate skips the exact size when the bound is under the limit) and the
// depth check to a recursive reference, over random structures.
func TestWalkBoundsSize(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		s := randomStruct(rng, 1+rng.IntN(6))
		bound, deep := walk(s, 4)
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

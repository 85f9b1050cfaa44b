package decision

import (
	"strings"
	"testing"

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

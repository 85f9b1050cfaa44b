package decision

import (
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
	"github.com/agentpdp/agentpdp/internal/structsize"
)

// Limits on what one request may carry.
const (
	MaxArgsBytes   = 1 << 20
	MaxArgsDepth   = 32
	MaxInputs      = 64
	MaxInputsBytes = 4 << 20
	MaxIDLength    = 256
)

// InvalidError names the request field that is wrong.
type InvalidError struct {
	Field string
	Msg   string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Msg }

// Validate checks a request before any policy sees it.
func Validate(req *pb.AuthorizeRequest) error {
	if req.GetAgent().GetId() == "" {
		return &InvalidError{"agent.id", "required"}
	}
	if req.GetTool() == "" {
		return &InvalidError{"tool", "required"}
	}
	// An array, not a map: no allocation per request, and a request with
	// several bad ids always names the same one.
	for _, id := range [...]struct{ field, s string }{
		{"agent.id", req.GetAgent().GetId()}, {"principal.id", req.GetPrincipal().GetId()},
		{"tool", req.GetTool()}, {"approval_id", req.GetApprovalId()},
	} {
		if len(id.s) > MaxIDLength {
			return &InvalidError{id.field, fmt.Sprintf("longer than %d bytes", MaxIDLength)}
		}
		if !utf8.ValidString(id.s) {
			return &InvalidError{id.field, "invalid UTF-8"}
		}
	}
	bound, deep := structsize.Bound(req.GetArgs(), MaxArgsDepth)
	// The exact size costs a second walk through protobuf's sizer, so it is
	// computed only when the cheap bound does not clear the limit (a walk
	// stopped by depth has a partial bound).
	if bound > MaxArgsBytes || deep {
		if n := proto.Size(req.GetArgs()); n > MaxArgsBytes {
			return &InvalidError{"args", fmt.Sprintf("%d bytes, over the %d-byte limit", n, MaxArgsBytes)}
		}
	}
	if deep {
		return tooDeep("args", MaxArgsDepth)
	}
	for _, f := range []struct {
		name string
		s    *structpb.Struct
	}{
		{"agent.attributes", req.GetAgent().GetAttributes()},
		{"principal.attributes", req.GetPrincipal().GetAttributes()},
		{"resource.attributes", req.GetResource().GetAttributes()},
	} {
		if err := checkDepth(f.name, f.s, MaxArgsDepth); err != nil {
			return err
		}
	}
	return validateInputs(req.GetInputs())
}

func validateInputs(inputs []*pb.Input) error {
	if len(inputs) > MaxInputs {
		return &InvalidError{"inputs", fmt.Sprintf("%d inputs, over the limit of %d", len(inputs), MaxInputs)}
	}
	total := 0
	for _, in := range inputs {
		total += len(in.GetText())
	}
	if total > MaxInputsBytes {
		return &InvalidError{"inputs", fmt.Sprintf("%d bytes of text, over the %d-byte limit", total, MaxInputsBytes)}
	}
	return nil
}

// checkDepth refuses structures nested deeper than max.
func checkDepth(field string, s *structpb.Struct, max int) error {
	if _, deep := structsize.Bound(s, max); deep {
		return tooDeep(field, max)
	}
	return nil
}

func tooDeep(field string, max int) error {
	return &InvalidError{field, fmt.Sprintf("nested deeper than %d levels", max)}
}

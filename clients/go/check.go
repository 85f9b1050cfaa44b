package pdpclient

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
)

// Call is one tool call to decide, in plain Go values.
type Call struct {
	Agent     string // required: the agent's id as policies name it
	Framework string
	Session   string
	Principal string // the user the agent acts for
	Roles     []string
	Tool      string // required
	// Args are the call's arguments: a map, a struct (encoded through
	// encoding/json, so its json tags name the fields), a *structpb.Struct,
	// or nil. They must encode as a JSON object.
	Args       any
	Resource   *pb.Resource
	Inputs     []*pb.Input
	ApprovalID string
	DryRun     bool
}

// Request builds the AuthorizeRequest for c.
func (c Call) Request() (*pb.AuthorizeRequest, error) {
	args, err := ToStruct(c.Args)
	if err != nil {
		return nil, err
	}
	req := &pb.AuthorizeRequest{
		Agent: &pb.Agent{Id: c.Agent, Framework: c.Framework, SessionId: c.Session},
		Tool:  c.Tool, Args: args, Resource: c.Resource, Inputs: c.Inputs,
		ApprovalId: c.ApprovalID, DryRun: c.DryRun,
	}
	if c.Principal != "" || len(c.Roles) > 0 {
		req.Principal = &pb.Principal{Id: c.Principal, Roles: c.Roles}
	}
	return req, nil
}

// Decision is the PDP's answer in plain Go values; Response holds all of it.
type Decision struct {
	Response *pb.AuthorizeResponse
}

// Allowed reports whether the call may run. Only ALLOW allows.
func (d Decision) Allowed() bool { return d.Response.GetDecision() == pb.Decision_DECISION_ALLOW }

// Denied reports whether the call must not run: DENY, or no usable answer.
func (d Decision) Denied() bool { return !d.Allowed() && !d.NeedsApproval() }

// NeedsApproval reports REQUIRE_APPROVAL; ApprovalID names the approval.
func (d Decision) NeedsApproval() bool {
	return d.Response.GetDecision() == pb.Decision_DECISION_REQUIRE_APPROVAL
}

// Unavailable reports a decision the client made because the PDP could not
// be reached.
func (d Decision) Unavailable() bool { return IsUnavailable(d.Response) }

// ID is the decision's id (empty when the client decided alone).
func (d Decision) ID() string { return d.Response.GetDecisionId() }

// ApprovalID is set on REQUIRE_APPROVAL.
func (d Decision) ApprovalID() string { return d.Response.GetApprovalId() }

// Reasons are the matched rules.
func (d Decision) Reasons() []*pb.Reason { return d.Response.GetReasons() }

// RuleIDs are the matched rules' ids, in order.
func (d Decision) RuleIDs() []string { return ruleIDs(d.Response.GetReasons()) }

// String is "ALLOW", "DENY (rule: message; ...)"...
func (d Decision) String() string {
	s := strings.TrimPrefix(d.Response.GetDecision().String(), "DECISION_")
	if len(d.Reasons()) > 0 {
		s += " (" + explain(d.Reasons()) + ")"
	}
	return s
}

// Check decides call. Like Authorize it fails closed: an unreachable PDP
// yields a Decision that is not Allowed, with a nil error. The error is set
// only when the call cannot be encoded or the PDP refused it as malformed.
func (c *Client) Check(ctx context.Context, call Call) (Decision, error) {
	req, err := call.Request()
	if err != nil {
		return Decision{Response: invalidResponse(err.Error())}, err
	}
	resp, err := c.Authorize(ctx, req)
	return Decision{Response: resp}, err
}

// ToStruct converts tool arguments to the request's args: a
// *structpb.Struct or map[string]any directly, anything else through a JSON
// round trip, which must yield a JSON object (or null).
func ToStruct(v any) (*structpb.Struct, error) {
	switch a := v.(type) {
	case nil:
		return nil, nil
	case *structpb.Struct:
		return a, nil
	case map[string]any:
		if s, err := structpb.NewStruct(a); err == nil {
			return s, nil
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("pdpclient: encode args: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("pdpclient: args must encode as a JSON object, got %.40s", b)
	}
	if m == nil {
		return nil, nil
	}
	s, err := structpb.NewStruct(m)
	if err != nil {
		return nil, fmt.Errorf("pdpclient: encode args: %w", err)
	}
	return s, nil
}

func ruleIDs(rs []*pb.Reason) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.GetRuleId()
	}
	return out
}

func explain(rs []*pb.Reason) string {
	parts := make([]string, 0, len(rs))
	for _, r := range rs {
		p := r.GetRuleId()
		if r.GetMessage() != "" {
			p += ": " + r.GetMessage()
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
}

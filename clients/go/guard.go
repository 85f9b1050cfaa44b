package pdpclient

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
)

// ErrNotAllowed matches (errors.Is) every error Guard returns instead of
// running the tool: *DeniedError and *ApprovalRequiredError.
var ErrNotAllowed = errors.New("pdpclient: tool call not allowed")

// DeniedError is returned by a guarded tool the PDP denied (or could not be
// asked: then Unavailable is true). The tool did not run.
type DeniedError struct {
	Tool       string
	Reasons    []*pb.Reason
	DecisionID string
	Response   *pb.AuthorizeResponse
	// Cause is set when the request itself was refused (*InvalidRequestError).
	Cause error
}

func (e *DeniedError) Error() string {
	s := "agentpdp: " + e.Tool + " denied"
	if len(e.Reasons) > 0 {
		s += ": " + explain(e.Reasons)
	}
	return s
}

// Unwrap returns Cause.
func (e *DeniedError) Unwrap() error { return e.Cause }

// Is makes errors.Is(err, ErrNotAllowed) true.
func (e *DeniedError) Is(target error) bool { return target == ErrNotAllowed }

// Unavailable reports a denial because the PDP could not be reached.
func (e *DeniedError) Unavailable() bool { return IsUnavailable(e.Response) }

// RuleIDs are the denying rules' ids.
func (e *DeniedError) RuleIDs() []string { return ruleIDs(e.Reasons) }

// ApprovalRequiredError is returned by a guarded tool whose call needs a
// human's approval that was not (yet) given: the Guard does not wait, the
// wait timed out, or the approval could not be waited for (Cause). The tool
// did not run; retry with ApprovalID once approved.
type ApprovalRequiredError struct {
	Tool       string
	ApprovalID string
	Reasons    []*pb.Reason
	DecisionID string
	Response   *pb.AuthorizeResponse
	TimedOut   bool
	Cause      error
}

func (e *ApprovalRequiredError) Error() string {
	s := "agentpdp: " + e.Tool + " requires approval"
	if e.ApprovalID != "" {
		s += " " + e.ApprovalID
	}
	if len(e.Reasons) > 0 {
		s += ": " + explain(e.Reasons)
	}
	if e.TimedOut {
		s += " (timed out waiting)"
	}
	if e.Cause != nil {
		s += " (" + e.Cause.Error() + ")"
	}
	return s
}

// Is makes errors.Is(err, ErrNotAllowed) true.
func (e *ApprovalRequiredError) Is(target error) bool { return target == ErrNotAllowed }

// Unwrap returns Cause.
func (e *ApprovalRequiredError) Unwrap() error { return e.Cause }

// ToolSpec says how a guarded tool is presented to the PDP.
type ToolSpec struct {
	Tool      string // required: the tool's name in policies, e.g. "gmail.send"
	Agent     string // the agent id; WithAgent on the context overrides it
	Framework string
	// Principal is the user the agent acts for when the context names none
	// (WithPrincipal).
	Principal string
	// WaitApproval, when positive, makes a REQUIRE_APPROVAL call wait up to
	// this long for a human's decision, then retry with the approval id.
	// Zero returns *ApprovalRequiredError at once.
	WaitApproval time.Duration
	// Enrich, when set, completes each request (resource, attributes, ...)
	// after the Guard has filled it in from the spec, the context and args.
	Enrich func(ctx context.Context, args any, req *pb.AuthorizeRequest)
	// Summarize, when set, makes the outcome report's summary. The default
	// summary is empty on success and the error's text on failure.
	Summarize func(result any, err error) string
	// NoOutcome turns the outcome report off.
	NoOutcome bool
}

type ctxKey int

const (
	keyAgent ctxKey = iota
	keyPrincipal
	keySession
	keyInputs
)

// WithAgent names the agent for the guarded calls made with ctx.
func WithAgent(ctx context.Context, agentID string) context.Context {
	return context.WithValue(ctx, keyAgent, agentID)
}

// WithPrincipal names the user the agent acts for in the calls made with ctx.
func WithPrincipal(ctx context.Context, p *pb.Principal) context.Context {
	return context.WithValue(ctx, keyPrincipal, p)
}

// WithSession sets the agent's session id for the calls made with ctx.
func WithSession(ctx context.Context, sessionID string) context.Context {
	return context.WithValue(ctx, keySession, sessionID)
}

// WithInputs attaches untrusted content that led to the calls made with ctx
// (an email body, a web page, a tool result), for the PDP to score.
func WithInputs(ctx context.Context, inputs ...*pb.Input) context.Context {
	prev, _ := ctx.Value(keyInputs).([]*pb.Input)
	all := append(append([]*pb.Input(nil), prev...), inputs...)
	return context.WithValue(ctx, keyInputs, all)
}

// RequestFor builds the AuthorizeRequest Guard sends for args with ctx.
func (s ToolSpec) RequestFor(ctx context.Context, args any) (*pb.AuthorizeRequest, error) {
	st, err := ToStruct(args)
	if err != nil {
		return nil, err
	}
	agentID := s.Agent
	if a, ok := ctx.Value(keyAgent).(string); ok && a != "" {
		agentID = a
	}
	req := &pb.AuthorizeRequest{
		Agent: &pb.Agent{Id: agentID, Framework: s.Framework},
		Tool:  s.Tool,
		Args:  st,
	}
	if sid, ok := ctx.Value(keySession).(string); ok {
		req.Agent.SessionId = sid
	}
	if p, ok := ctx.Value(keyPrincipal).(*pb.Principal); ok && p != nil {
		req.Principal = proto.Clone(p).(*pb.Principal)
	} else if s.Principal != "" {
		req.Principal = &pb.Principal{Id: s.Principal}
	}
	if in, ok := ctx.Value(keyInputs).([]*pb.Input); ok {
		req.Inputs = in
	}
	if s.Enrich != nil {
		s.Enrich(ctx, args, req)
	}
	return req, nil
}

// Guard wraps fn so it runs only when the PDP answers ALLOW for the call:
//   - DENY (or an unreachable PDP, fail closed): fn does not run; the error
//     is a *DeniedError with the reasons;
//   - REQUIRE_APPROVAL: with spec.WaitApproval set, it waits for a human's
//     decision and retries with the approval id; otherwise, or when the
//     approval does not come, the error is an *ApprovalRequiredError;
//   - ALLOW: fn runs, and its outcome (succeeded/failed) is reported to the
//     audit trail in the background; a failed report never fails the call.
//
// args are sent as the request's args (see ToStruct). The context may carry
// the principal, session and inputs (WithPrincipal, WithSession, WithInputs);
// its trace context reaches the PDP.
func Guard[A any, R any](c *Client, spec ToolSpec, fn func(ctx context.Context, args A) (R, error)) func(ctx context.Context, args A) (R, error) {
	return func(ctx context.Context, args A) (R, error) {
		var zero R
		resp, err := c.Require(ctx, spec, args)
		if err != nil {
			return zero, err
		}
		result, err := fn(ctx, args)
		if !spec.NoOutcome {
			out := &pb.ReportOutcomeRequest{DecisionId: resp.GetDecisionId(), AgentId: spec.Agent,
				Status: pb.OutcomeStatus_OUTCOME_STATUS_SUCCEEDED}
			if a, ok := ctx.Value(keyAgent).(string); ok && a != "" {
				out.AgentId = a
			}
			if err != nil {
				out.Status = pb.OutcomeStatus_OUTCOME_STATUS_FAILED
			}
			if spec.Summarize != nil {
				out.Summary = spec.Summarize(result, err)
			} else if err != nil {
				out.Summary = err.Error()
			}
			if len(out.Summary) > 4096 {
				out.Summary = out.Summary[:4096]
			}
			c.reportAsync(ctx, out)
		}
		return result, err
	}
}

// Require is Guard's decision step without running anything: it returns
// the ALLOW response, or a *DeniedError / *ApprovalRequiredError (waiting for
// an approval when spec.WaitApproval is set), or an error building the request.
func (c *Client) Require(ctx context.Context, spec ToolSpec, args any) (*pb.AuthorizeResponse, error) {
	req, err := spec.RequestFor(ctx, args)
	if err != nil {
		return nil, err
	}
	resp, err := c.Authorize(ctx, req)
	if err != nil {
		return nil, &DeniedError{Tool: spec.Tool, Reasons: resp.GetReasons(), Response: resp, Cause: err}
	}
	if resp.GetDecision() == pb.Decision_DECISION_REQUIRE_APPROVAL {
		resp, err = c.awaitApproval(ctx, spec, req, resp)
		if err != nil {
			return nil, err
		}
	}
	switch resp.GetDecision() {
	case pb.Decision_DECISION_ALLOW:
		return resp, nil
	case pb.Decision_DECISION_REQUIRE_APPROVAL:
		return nil, approvalErr(spec, resp, false, nil)
	}
	return nil, &DeniedError{Tool: spec.Tool, Reasons: resp.GetReasons(), DecisionID: resp.GetDecisionId(), Response: resp}
}

func approvalErr(spec ToolSpec, resp *pb.AuthorizeResponse, timedOut bool, cause error) *ApprovalRequiredError {
	return &ApprovalRequiredError{Tool: spec.Tool, ApprovalID: resp.GetApprovalId(), Reasons: resp.GetReasons(),
		DecisionID: resp.GetDecisionId(), Response: resp, TimedOut: timedOut, Cause: cause}
}

// awaitApproval waits for the approval resp asks for, then retries req with
// its id and returns the retry's answer.
func (c *Client) awaitApproval(ctx context.Context, spec ToolSpec, req *pb.AuthorizeRequest, resp *pb.AuthorizeResponse) (*pb.AuthorizeResponse, error) {
	if spec.WaitApproval <= 0 {
		return nil, approvalErr(spec, resp, false, nil)
	}
	if resp.GetApprovalId() == "" {
		return nil, approvalErr(spec, resp, false, errors.New("the PDP created no approval to wait for"))
	}
	w, err := c.WaitApproval(ctx, resp.GetApprovalId(), spec.WaitApproval)
	if err != nil {
		return nil, approvalErr(spec, resp, false, err)
	}
	if w.GetTimedOut() {
		return nil, approvalErr(spec, resp, true, nil)
	}
	a := w.GetApproval()
	switch a.GetStatus() {
	case pb.ApprovalStatus_APPROVAL_STATUS_APPROVED:
	case pb.ApprovalStatus_APPROVAL_STATUS_REJECTED:
		return nil, &DeniedError{Tool: spec.Tool, DecisionID: resp.GetDecisionId(), Response: resp,
			Reasons: append([]*pb.Reason{{RuleId: ReasonApprovalRejected, Effect: pb.Effect_EFFECT_DENY,
				Message: rejectedMessage(a)}}, resp.GetReasons()...)}
	case pb.ApprovalStatus_APPROVAL_STATUS_EXPIRED:
		return nil, &DeniedError{Tool: spec.Tool, DecisionID: resp.GetDecisionId(), Response: resp,
			Reasons: append([]*pb.Reason{{RuleId: ReasonApprovalExpired, Effect: pb.Effect_EFFECT_DENY,
				Message: "the approval expired before anyone decided"}}, resp.GetReasons()...)}
	default:
		return nil, approvalErr(spec, resp, false, fmt.Errorf("approval is %s", a.GetStatus()))
	}
	retry := proto.Clone(req).(*pb.AuthorizeRequest)
	retry.ApprovalId = resp.GetApprovalId()
	again, err := c.Authorize(ctx, retry)
	if err != nil {
		return nil, &DeniedError{Tool: spec.Tool, Reasons: again.GetReasons(), Response: again, Cause: err}
	}
	return again, nil
}

func rejectedMessage(a *pb.Approval) string {
	msg := "a human rejected the call"
	if a.GetApprover() != "" {
		msg = a.GetApprover() + " rejected the call"
	}
	if a.GetNote() != "" {
		msg += ": " + a.GetNote()
	}
	return msg
}

package mcpproxy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
)

// Built-in reasons the proxy gives when it refuses without a policy rule.
const (
	ReasonPDPUnavailable   = "pdp_unavailable"
	ReasonPDPError         = "pdp_error"
	ReasonBadCall          = "invalid_call"
	ReasonApprovalRejected = "approval_rejected"
	ReasonApprovalExpired  = "approval_expired"
	ReasonApprovalTimeout  = "approval_timeout"
	ReasonApprovalMissing  = "approval_missing"
	ReasonScanUnavailable  = "scan_unavailable"
	ReasonInjection        = "prompt_injection"
)

// approvalPoll is the longest single WaitApproval; the proxy loops, and
// sends a progress notification (when the client asked for progress)
// between polls, so the client knows the call is alive.
const approvalPoll = 30 * time.Second

// toolCall is one tools/call the proxy let through.
type toolCall struct {
	id         jsonrpc.ID
	name       string // the MCP tool name
	tool       string // SERVER.name, as the policies know it
	decisionID string
	principal  string
	sess       *Session
}

// progressFunc sends a progress notification to the client, or is nil.
type progressFunc func(ctx context.Context, n *jsonrpc.Request)

// refusal is why a call is not forwarded: the reason id and the text the
// model sees.
type refusal struct {
	reason     string
	text       string
	decisionID string
	decision   pb.Decision
}

func (r *refusal) result() []byte {
	note := map[string]any{"reason": r.reason, "decision": decisionName(r.decision)}
	if r.decisionID != "" {
		note["decision_id"] = r.decisionID
	}
	return toolError("Denied by policy: "+r.text, map[string]any{metaKeyDecision: note})
}

// AuthorizeCall decides a tools/call request. It returns the call to
// forward, or the response to answer the client with instead.
func (p *Proxy) AuthorizeCall(ctx context.Context, sess *Session, principal string, req *jsonrpc.Request, progress progressFunc) (*toolCall, *jsonrpc.Response) {
	params, err := parseCallParams(req.Params)
	if err != nil {
		return nil, errorResponse(req.ID, jsonrpc.CodeInvalidParams, err.Error())
	}
	c := &toolCall{id: req.ID, name: params.Name, tool: p.tool(params.Name), principal: principal, sess: sess}
	areq, ref := p.authorizeRequest(sess, principal, c.tool, params)
	if ref == nil {
		var resp *pb.AuthorizeResponse
		resp, ref = p.decide(ctx, areq, c, progressTo(progress, params.ProgressToken))
		if resp != nil {
			c.decisionID = resp.GetDecisionId()
		}
	}
	if ref != nil {
		p.log.InfoContext(ctx, "mcp tool call refused", "tool", c.tool, "session", sess.ID,
			"reason", ref.reason, "decision_id", ref.decisionID)
		return nil, resultResponse(req.ID, ref.result())
	}
	p.log.DebugContext(ctx, "mcp tool call allowed", "tool", c.tool, "session", sess.ID, "decision_id", c.decisionID)
	return c, nil
}

// authorizeRequest builds the Authorize request of a call.
func (p *Proxy) authorizeRequest(sess *Session, principal, tool string, params *callParams) (*pb.AuthorizeRequest, *refusal) {
	args, err := argsStruct(params.Arguments)
	if err != nil {
		return nil, &refusal{reason: ReasonBadCall, text: ReasonBadCall + ": " + err.Error(), decision: pb.Decision_DECISION_DENY}
	}
	attrs, _ := structpb.NewStruct(map[string]any{"mcp_server": p.cfg.ServerName, "mcp_tool": params.Name})
	req := &pb.AuthorizeRequest{
		Agent: &pb.Agent{Id: p.cfg.AgentID, Framework: "mcp", SessionId: sess.ID, Attributes: attrs},
		Tool:  tool, Args: args, Inputs: sess.inputs(),
	}
	if principal != "" {
		req.Principal = &pb.Principal{Id: principal}
	}
	return req, nil
}

// decide asks the PDP and, for REQUIRE_APPROVAL, waits for the human and
// retries. It returns the ALLOW response, or why the call is refused.
func (p *Proxy) decide(ctx context.Context, req *pb.AuthorizeRequest, c *toolCall, progress func(context.Context, string)) (*pb.AuthorizeResponse, *refusal) {
	resp, err := p.authorize(ctx, req)
	if err != nil {
		return nil, pdpRefusal(err)
	}
	switch resp.GetDecision() {
	case pb.Decision_DECISION_ALLOW:
		if resp.GetWarning() != "" {
			p.log.WarnContext(ctx, "policy warning", "tool", req.GetTool(), "warning", resp.GetWarning(),
				"decision_id", resp.GetDecisionId())
		}
		return resp, nil
	case pb.Decision_DECISION_REQUIRE_APPROVAL:
		return p.awaitApproval(ctx, req, resp, c, progress)
	}
	return resp, policyRefusal(resp)
}

func (p *Proxy) authorize(ctx context.Context, req *pb.AuthorizeRequest) (*pb.AuthorizeResponse, error) {
	ctx, cancel := p.pdpCtx(ctx)
	defer cancel()
	resp, err := p.pdp.Authorize(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("authorize %s: %w", req.GetTool(), err)
	}
	return resp, nil
}

// awaitApproval waits for the approval a REQUIRE_APPROVAL answer created,
// up to the configured timeout, then retries Authorize with it.
func (p *Proxy) awaitApproval(ctx context.Context, req *pb.AuthorizeRequest, first *pb.AuthorizeResponse, c *toolCall, progress func(context.Context, string)) (*pb.AuthorizeResponse, *refusal) {
	id := first.GetApprovalId()
	if id == "" {
		ref := policyRefusal(first)
		ref.reason, ref.text = ReasonApprovalMissing, ReasonApprovalMissing+": approval required ("+ref.text+") but the PDP created no approval"
		return first, ref
	}
	p.log.InfoContext(ctx, "mcp tool call waiting for approval", "tool", c.tool, "approval_id", id,
		"reasons", reasonsText(first.GetReasons()))
	a, timedOut, err := p.waitApproval(ctx, id, c.tool, progress)
	if err != nil {
		return first, pdpRefusal(err)
	}
	if ref := approvalRefusal(a, timedOut, id, p.cfg.ApprovalTimeout); ref != nil {
		ref.decisionID = first.GetDecisionId()
		return first, ref
	}
	retry := proto.CloneOf(req)
	retry.ApprovalId = id
	resp, err := p.authorize(ctx, retry)
	if err != nil {
		return first, pdpRefusal(err)
	}
	if resp.GetDecision() != pb.Decision_DECISION_ALLOW {
		return resp, policyRefusal(resp)
	}
	return resp, nil
}

// waitApproval polls WaitApproval until the approval is decided or the
// configured timeout passes.
func (p *Proxy) waitApproval(ctx context.Context, id, tool string, progress func(context.Context, string)) (*pb.Approval, bool, error) {
	deadline := time.Now().Add(p.cfg.ApprovalTimeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil, true, nil
		}
		progress(ctx, fmt.Sprintf("waiting for a human to approve %s (approval %s)", tool, id))
		wait := min(left, approvalPoll)
		wctx, cancel := context.WithTimeout(ctx, wait+p.cfg.PDPTimeout)
		resp, err := p.pdp.WaitApproval(wctx, &pb.WaitApprovalRequest{ApprovalId: id, Timeout: durationpb.New(wait)})
		cancel()
		if err != nil {
			return nil, false, fmt.Errorf("wait for approval %s: %w", id, err)
		}
		if a := resp.GetApproval(); a.GetStatus() != pb.ApprovalStatus_APPROVAL_STATUS_PENDING {
			return a, false, nil
		}
	}
}

// approvalRefusal says why a decided approval does not let the call run,
// or nil when it was approved.
func approvalRefusal(a *pb.Approval, timedOut bool, id string, timeout time.Duration) *refusal {
	if timedOut {
		return &refusal{reason: ReasonApprovalTimeout, decision: pb.Decision_DECISION_REQUIRE_APPROVAL,
			text: fmt.Sprintf("%s: no human decided approval %s within %s", ReasonApprovalTimeout, id, timeout)}
	}
	switch a.GetStatus() {
	case pb.ApprovalStatus_APPROVAL_STATUS_APPROVED:
		return nil
	case pb.ApprovalStatus_APPROVAL_STATUS_REJECTED:
		text := fmt.Sprintf("%s: %s rejected the call", ReasonApprovalRejected, orUnknown(a.GetApprover()))
		if a.GetNote() != "" {
			text += ": " + a.GetNote()
		}
		return &refusal{reason: ReasonApprovalRejected, text: text, decision: pb.Decision_DECISION_DENY}
	case pb.ApprovalStatus_APPROVAL_STATUS_EXPIRED:
		return &refusal{reason: ReasonApprovalExpired, decision: pb.Decision_DECISION_DENY,
			text: fmt.Sprintf("%s: approval %s expired before anyone decided", ReasonApprovalExpired, id)}
	}
	return &refusal{reason: ReasonApprovalExpired, decision: pb.Decision_DECISION_DENY,
		text: fmt.Sprintf("%s: approval %s is %s", ReasonApprovalExpired, id, a.GetStatus())}
}

// policyRefusal is the refusal of a DENY (or unusable) answer.
func policyRefusal(resp *pb.AuthorizeResponse) *refusal {
	reason := "deny"
	if rs := denyReasons(resp.GetReasons()); len(rs) > 0 {
		reason = rs[0].GetRuleId()
	}
	return &refusal{reason: reason, text: reasonsText(resp.GetReasons()),
		decisionID: resp.GetDecisionId(), decision: resp.GetDecision()}
}

// pdpRefusal fails closed on an error talking to the PDP.
func pdpRefusal(err error) *refusal {
	reason := ReasonPDPUnavailable
	switch status.Code(errors.Unwrap(err)) {
	case codes.InvalidArgument, codes.FailedPrecondition, codes.PermissionDenied,
		codes.Unauthenticated, codes.NotFound, codes.Unimplemented, codes.OutOfRange:
		reason = ReasonPDPError
	}
	return &refusal{reason: reason, text: reason + ": " + err.Error(), decision: pb.Decision_DECISION_DENY}
}

// denyReasons are the reasons with effect DENY, or all when none is.
func denyReasons(rs []*pb.Reason) []*pb.Reason {
	var out []*pb.Reason
	for _, r := range rs {
		if r.GetEffect() == pb.Effect_EFFECT_DENY {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return rs
	}
	return out
}

// reasonsText renders the deciding reasons as "rule: message; ...".
func reasonsText(rs []*pb.Reason) string {
	var parts []string
	for _, r := range denyReasons(rs) {
		s := r.GetRuleId()
		if r.GetMessage() != "" {
			s += ": " + r.GetMessage()
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "no reason given"
	}
	return strings.Join(parts, "; ")
}

func decisionName(d pb.Decision) string {
	return strings.TrimPrefix(d.String(), "DECISION_")
}

func orUnknown(s string) string {
	if s == "" {
		return "an approver"
	}
	return s
}

// progressTo adapts a progress sender to the client's token: no token (or
// no sender) means no notifications.
func progressTo(send progressFunc, token any) func(context.Context, string) {
	n := 0
	return func(ctx context.Context, msg string) {
		if send == nil || token == nil {
			return
		}
		n++
		send(ctx, progressNotification(token, float64(n), msg))
	}
}

const outcomeFailed = pb.OutcomeStatus_OUTCOME_STATUS_FAILED

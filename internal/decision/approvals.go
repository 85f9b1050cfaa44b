package decision

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
	"github.com/agentpdp/agentpdp/internal/approval"
	"github.com/agentpdp/agentpdp/internal/audit"
	"github.com/agentpdp/agentpdp/internal/eval"
	"github.com/agentpdp/agentpdp/internal/ratelimit"
)

// checkSuspended denies the call outright when the kill switch covers it.
func (d *Decider) checkSuspended(st *state) bool {
	if d.cfg.Suspensions == nil {
		return false
	}
	agent, principal := st.req.GetAgent().GetId(), st.req.GetPrincipal().GetId()
	s := d.cfg.Suspensions.Check(agent, principal, st.now)
	if s == nil {
		return false
	}
	st.suspended = true
	st.effect = eval.Deny
	who := "agent " + agent
	if s.PrincipalId != "" {
		who += " for principal " + s.PrincipalId
	}
	st.reasons = []eval.Reason{{RuleID: ReasonSuspended, Effect: eval.Deny,
		Message: fmt.Sprintf("%s is suspended by %s: %s", who, s.By, s.Reason)}}
	return true
}

func (d *Decider) digest(req *pb.AuthorizeRequest) string {
	return approval.Digest(req.GetAgent().GetId(), req.GetPrincipal().GetId(), req.GetTool(), req.GetArgs())
}

// checkApproval turns REQUIRE_APPROVAL into ALLOW when the retry presents
// an approval that is granted, unexpired, unused and for this very call.
// It only checks; useApproval spends it once limits have passed.
func (d *Decider) checkApproval(ctx context.Context, st *state) {
	id := st.req.GetApprovalId()
	if st.effect != eval.RequireApproval || id == "" || d.cfg.Approvals == nil {
		return
	}
	a, err := d.cfg.Approvals.Use(ctx, id, d.digest(st.req), st.now, true)
	if err != nil {
		st.effect = eval.Deny
		st.reasons = append(st.reasons, eval.Reason{Policy: st.result.Policy.Name, RuleID: ReasonApprovalInvalid,
			Effect: eval.Deny, Message: fmt.Sprintf("approval %s: %v", id, err)})
		return
	}
	st.approval = a
	st.effect = eval.Allow
	st.reasons = append(st.reasons, eval.Reason{Policy: st.result.Policy.Name, RuleID: ReasonApproved,
		Effect: eval.Allow, Message: fmt.Sprintf("approved by %s: %s", a.Approver, a.Note)})
	st.resp.ApprovalId = id
}

// useApproval spends the checked approval, unless the call ended denied
// (a rate limit) or is a dry run. Losing a race to spend it is a DENY.
func (d *Decider) useApproval(ctx context.Context, st *state) {
	if st.approval == nil || st.effect != eval.Allow || st.req.GetDryRun() {
		return
	}
	if _, err := d.cfg.Approvals.Use(ctx, st.approval.Id, st.approval.Digest, st.now, false); err != nil {
		st.effect = eval.Deny
		st.reasons = append(st.reasons, eval.Reason{Policy: st.result.Policy.Name, RuleID: ReasonApprovalInvalid,
			Effect: eval.Deny, Message: fmt.Sprintf("approval %s: %v", st.approval.Id, err)})
		d.finish(st)
	}
}

// requestApproval creates the pending approval a REQUIRE_APPROVAL answer
// points to. Dry runs approve nothing, and in OBSERVE and WARN modes the
// caller goes ahead anyway, so nothing would wait for it.
func (d *Decider) requestApproval(ctx context.Context, st *state) {
	resp, p := st.resp, st.result.Policy
	if d.cfg.Approvals == nil || resp.Decision != pb.Decision_DECISION_REQUIRE_APPROVAL || st.req.GetDryRun() {
		return
	}
	audited := d.auditArgs(st.req.GetArgs(), p.Redact)
	args, _ := structpb.NewStruct(audited.Map())
	a := &pb.Approval{
		Id: newID(), Status: pb.ApprovalStatus_APPROVAL_STATUS_PENDING,
		AgentId: st.req.GetAgent().GetId(), PrincipalId: st.req.GetPrincipal().GetId(), Tool: st.req.GetTool(),
		Args: args, Digest: d.digest(st.req), Policy: p.Name, Reasons: resp.Reasons,
		DecisionId: resp.DecisionId, CreatedAt: timestamppb.New(st.now),
		ExpiresAt: timestamppb.New(st.now.Add(p.ApprovalTTL)),
	}
	if err := d.cfg.Approvals.Create(ctx, a); err != nil {
		d.log.ErrorContext(ctx, "approval store unavailable; denying", "err", err)
		st.effect = eval.Deny
		st.reasons = append(st.reasons, eval.Reason{Policy: p.Name, RuleID: ReasonApprovalInvalid, Effect: eval.Deny,
			Message: fmt.Sprintf("the approval could not be created: %v", err)})
		d.finish(st)
		return
	}
	resp.ApprovalId, resp.ApprovalExpiresAt = a.Id, a.ExpiresAt
}

// countDenial implements suspend_after: every enforced DENY is charged to
// a sliding window (the rate limiter's, so replicas count together), and
// the one that fills it suspends the agent.
func (d *Decider) countDenial(ctx context.Context, st *state) {
	p := st.result.Policy
	if p == nil || p.SuspendAfter == nil || d.cfg.Suspensions == nil || st.suspended ||
		st.req.GetDryRun() || st.resp.Decision != pb.Decision_DECISION_DENY {
		return
	}
	sa := p.SuspendAfter
	agent, principal := st.req.GetAgent().GetId(), ""
	if sa.PerPrincipal {
		principal = st.req.GetPrincipal().GetId()
	}
	res, err := d.cfg.Limiter.Charge(ctx, []ratelimit.Request{{Policy: "suspend_after:" + p.Name, ID: "denials",
		Key: agent + "\x00" + principal, Limit: sa.Denials, Window: sa.Window.Duration, Cost: 1}}, true)
	if err != nil {
		d.log.WarnContext(ctx, "denial counting failed", "policy", p.Name, "err", err)
		return
	}
	if res[0].Allowed && res[0].Remaining > 0 {
		return
	}
	s := &pb.Suspension{AgentId: agent, PrincipalId: principal, By: "policy:" + p.Name,
		Reason:    fmt.Sprintf("%d denials within %s", sa.Denials, sa.Window.Duration),
		CreatedAt: timestamppb.New(st.now)}
	if sa.For.Duration > 0 {
		s.ExpiresAt = timestamppb.New(st.now.Add(sa.For.Duration))
	}
	if err := d.cfg.Suspensions.Suspend(ctx, s); err != nil {
		d.log.ErrorContext(ctx, "auto-suspension failed", "agent", agent, "err", err)
		return
	}
	d.log.WarnContext(ctx, "agent suspended by policy", "agent", agent, "principal", principal,
		"policy", p.Name, "reason", s.Reason)
	d.auditSuspension(ctx, "suspended", s)
}

// auditSuspension appends a suspension record; the decision path does not
// wait on its outcome beyond logging.
func (d *Decider) auditSuspension(ctx context.Context, event string, s *pb.Suspension) {
	if d.cfg.Audit == nil {
		return
	}
	rec := SuspensionRecord(event, s, d.cfg.Now())
	if err := d.cfg.Audit.Append(ctx, rec); err != nil {
		d.log.ErrorContext(ctx, "audit of suspension failed", "err", err)
	}
}

// SuspensionRecord is the audit record of a suspend or resume.
func SuspensionRecord(event string, s *pb.Suspension, now time.Time) *audit.Record {
	r := &audit.Record{Type: audit.TypeSuspension, Time: now.UTC(), Agent: &audit.Agent{ID: s.AgentId},
		Suspension: &audit.Suspension{Event: event, AgentID: s.AgentId, PrincipalID: s.PrincipalId,
			Reason: s.Reason, By: s.By}}
	if s.ExpiresAt != nil {
		r.Suspension.ExpiresAt = s.ExpiresAt.AsTime()
	}
	return r
}

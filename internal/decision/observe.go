package decision

import (
	"context"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
	"github.com/agentpdp/agentpdp/internal/eval"
)

// observe puts the decision on its span and in the metrics.
func (d *Decider) observe(ctx context.Context, span trace.Span, set *eval.Set, st *state, start time.Time) {
	resp := st.resp
	decision := shortDecision(resp.Decision)
	policyDecision := shortDecision(resp.PolicyDecision)
	mode := shortMode(resp.Mode)
	rules := st.ruleIDs[:0]
	for _, r := range resp.Reasons {
		rules = append(rules, r.RuleId)
		if isFailure(r) {
			span.SetStatus(codes.Error, r.Message)
		}
		if r.RuleId == ReasonRateLimited {
			for _, l := range resp.RateLimits {
				if l.Exceeded {
					d.cfg.Metrics.RateLimited(ctx, l.Policy, l.Id)
				}
			}
		}
	}
	if span.IsRecording() {
		// One SetAttributes call with a slice held in the decision's state:
		// the span then grows its own attribute list once, and the list
		// passed costs no allocation of its own.
		attrs := append(st.spanAttrs[:0],
			attribute.String("agentpdp.agent.id", st.req.GetAgent().GetId()),
			attribute.String("agentpdp.tool", st.req.GetTool()),
			attribute.String("agentpdp.decision", decision),
			attribute.String("agentpdp.policy_decision", policyDecision),
			attribute.String("agentpdp.mode", mode),
			attribute.StringSlice("agentpdp.rules", rules),
			attribute.String("agentpdp.policy", resp.Policy),
			attribute.String("agentpdp.policy_version", resp.PolicyVersion),
			attribute.String("agentpdp.decision_id", resp.DecisionId))
		if rem, ok := minRemaining(resp.RateLimits); ok {
			attrs = append(attrs, attribute.Int64("agentpdp.ratelimit.remaining", rem))
		}
		if resp.Content != nil {
			attrs = append(attrs, attribute.Float64("agentpdp.injection_score", resp.Content.InjectionScore))
		}
		span.SetAttributes(attrs...)
	}
	if d.cfg.Metrics != nil {
		tool := "other"
		if p := st.result.Policy; p != nil {
			tool = p.ToolLabel(st.req.GetTool())
		}
		d.cfg.Metrics.Decided(ctx, decision, policyDecision, mode, set.AgentLabel(st.req.GetAgent().GetId()),
			tool, time.Since(start).Seconds())
	}
}

// isFailure marks reasons that are the PDP failing, not a policy deciding.
func isFailure(r *pb.Reason) bool {
	switch r.RuleId {
	case ReasonRateLimitUnavailable, ReasonAuditUnavailable, ReasonInternal:
		return true
	}
	return strings.HasPrefix(r.Message, eval.ReasonError)
}

func minRemaining(ls []*pb.RateLimitState) (int64, bool) {
	if len(ls) == 0 {
		return 0, false
	}
	m := ls[0].Remaining
	for _, l := range ls[1:] {
		m = min(m, l.Remaining)
	}
	return m, true
}

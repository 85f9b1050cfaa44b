package decision

import (
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
	"github.com/agentpdp/agentpdp/internal/audit"
)

// recordParts holds a decision record and what it usually points to, so
// that they take one allocation instead of one each: a record is built for
// every decision. Slices longer than the arrays grow on their own.
type recordParts struct {
	rec       audit.Record
	agent     audit.Agent
	principal audit.Principal
	args      audit.ProtoArgs
	reasons   [2]audit.Reason
	limits    [2]audit.RateLimit
}

// record builds the audit record of a finished decision: args redacted as
// the policy says, PII masked.
func (d *Decider) record(st *state, latency time.Duration) *audit.Record {
	req, resp := st.req, st.resp
	var redact [][]string
	if p := st.result.Policy; p != nil {
		redact = p.Redact
	}
	parts := &recordParts{agent: audit.Agent{ID: req.GetAgent().GetId(), Framework: req.GetAgent().GetFramework(),
		SessionID: req.GetAgent().GetSessionId(), Attrs: d.mapOf(req.GetAgent().GetAttributes())},
		args: d.auditArgs(req.GetArgs(), redact)}
	r := &parts.rec
	*r = audit.Record{
		Type: audit.TypeDecision, Time: st.now.UTC(), DecisionID: resp.DecisionId,
		Agent:          &parts.agent,
		Tool:           req.GetTool(),
		ArgsFrom:       &parts.args,
		Decision:       shortDecision(resp.Decision),
		PolicyDecision: shortDecision(resp.PolicyDecision),
		Mode:           shortMode(resp.Mode),
		DryRun:         resp.DryRun,
		Warning:        resp.Warning,
		Policy:         resp.Policy,
		PolicyVersion:  resp.PolicyVersion,
		ApprovalID:     resp.ApprovalId,
		LatencyNS:      latency.Nanoseconds(),
		TraceID:        resp.TraceId,
	}
	if p := req.GetPrincipal(); p != nil {
		parts.principal = audit.Principal{ID: p.GetId(), Roles: p.GetRoles(), Attrs: d.mapOf(p.GetAttributes())}
		r.Principal = &parts.principal
	}
	if res := req.GetResource(); res != nil {
		r.Resource = &audit.Resource{Kind: res.GetKind(), ID: res.GetId(), Attrs: d.mapOf(res.GetAttributes())}
	}
	for i, in := range req.GetInputs() {
		text := in.GetText()
		if f := resp.GetContent().GetInputs(); i < len(f) {
			text = d.cfg.Content.MaskFound(text, f[i].GetScan().GetPii())
		}
		r.Inputs = append(r.Inputs, audit.Input{Source: in.GetSource(), Text: text})
	}
	r.Reasons = parts.reasons[:0]
	for _, rs := range st.reasons {
		r.Reasons = append(r.Reasons, audit.Reason{Policy: rs.Policy, RuleID: rs.RuleID,
			Effect: rs.Effect.String(), Message: rs.Message, Tags: rs.Tags})
	}
	r.RateLimits = parts.limits[:0]
	for _, l := range resp.RateLimits {
		r.RateLimits = append(r.RateLimits, audit.RateLimit{ID: l.Id, Limit: l.Limit, Remaining: l.Remaining,
			Reset: l.ResetAt.AsTime(), Exceeded: l.Exceeded, Cost: l.Cost})
	}
	if c := resp.Content; c != nil {
		r.Content = &audit.Content{InjectionScore: c.InjectionScore, Signals: c.Signals, PIIKinds: c.PiiKinds}
	}
	return r
}

// shortDecision and shortMode name enums as the audit trail, span and
// metrics do; by table, since the generated String() goes through the
// descriptor on every call.
func shortDecision(d pb.Decision) string { return shortName(d, decisionNames[:], "DECISION_") }
func shortMode(m pb.Mode) string         { return shortName(m, modeNames[:], "MODE_") }

func shortName[E interface {
	~int32
	String() string
}](v E, names []string, prefix string) string {
	if v >= 0 && int(v) < len(names) {
		return names[v]
	}
	return strings.TrimPrefix(v.String(), prefix)
}

var decisionNames = [...]string{
	pb.Decision_DECISION_UNSPECIFIED:      "UNSPECIFIED",
	pb.Decision_DECISION_ALLOW:            "ALLOW",
	pb.Decision_DECISION_DENY:             "DENY",
	pb.Decision_DECISION_REQUIRE_APPROVAL: "REQUIRE_APPROVAL",
}

var modeNames = [...]string{
	pb.Mode_MODE_UNSPECIFIED: "UNSPECIFIED",
	pb.Mode_MODE_OBSERVE:     "OBSERVE",
	pb.Mode_MODE_WARN:        "WARN",
	pb.Mode_MODE_ENFORCE:     "ENFORCE",
}

// auditArgs are args as the trail keeps them: PII masked, then the value
// at each path (field names, as eval.Policy.Redact holds them) replaced by
// a SHA-256 digest, so equal values still correlate. The digest is of the
// masked value: one of a raw card or SSN could be reversed by trying every
// number.
func (d *Decider) auditArgs(args *structpb.Struct, redact [][]string) audit.ProtoArgs {
	p := audit.ProtoArgs{Struct: args, Redact: redact}
	if d.cfg.Content != nil {
		p.Mask = d.cfg.Content
	}
	return p
}

// mapOf converts a Struct for the audit record, PII masked.
func (d *Decider) mapOf(s *structpb.Struct) map[string]any {
	p := d.auditArgs(s, nil)
	return p.Map()
}

package decision

import (
	"sort"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
	"github.com/agentpdp/agentpdp/internal/eval"
	"github.com/agentpdp/agentpdp/internal/ratelimit"
)

func decisionPB(e eval.Effect) pb.Decision {
	switch e {
	case eval.Allow:
		return pb.Decision_DECISION_ALLOW
	case eval.RequireApproval:
		return pb.Decision_DECISION_REQUIRE_APPROVAL
	}
	return pb.Decision_DECISION_DENY
}

func effectPB(e eval.Effect) pb.Effect {
	switch e {
	case eval.Allow:
		return pb.Effect_EFFECT_ALLOW
	case eval.RequireApproval:
		return pb.Effect_EFFECT_REQUIRE_APPROVAL
	}
	return pb.Effect_EFFECT_DENY
}

func modePB(m eval.Mode) pb.Mode {
	switch m {
	case eval.Observe:
		return pb.Mode_MODE_OBSERVE
	case eval.Warn:
		return pb.Mode_MODE_WARN
	}
	return pb.Mode_MODE_ENFORCE
}

func reasonsPB(rs []eval.Reason) []*pb.Reason {
	out := make([]*pb.Reason, len(rs))
	for i, r := range rs {
		out[i] = &pb.Reason{Policy: r.Policy, RuleId: r.RuleID, Effect: effectPB(r.Effect),
			Message: r.Message, Tags: r.Tags}
	}
	return out
}

// limitsPB reports every limit that applied; results is nil when nothing
// was charged (the rules did not allow, or the limiter failed).
func limitsPB(reqs []ratelimit.Request, results []ratelimit.Result) []*pb.RateLimitState {
	if len(results) == 0 {
		return nil
	}
	out := make([]*pb.RateLimitState, len(results))
	for i, r := range results {
		out[i] = &pb.RateLimitState{
			Policy: reqs[i].Policy, Id: reqs[i].ID, Limit: r.Limit, Remaining: r.Remaining,
			ResetAt: timestamppb.New(r.Reset), Exceeded: !r.Allowed, Cost: r.Charged,
		}
	}
	return out
}

// Scanner scores untrusted inputs; the content package provides it.
type Scanner interface {
	ScanText(text string) *pb.ContentScan
	// Mask replaces the PII in text, for audit records.
	Mask(text string) string
	// MaskFound replaces PII a scan of text already found, so inputs are
	// not scanned a second time for their audit record.
	MaskFound(text string, pii []*pb.PIIMatch) string
}

func (d *Decider) scanInputs(inputs []*pb.Input) *pb.ContentFindings {
	if d.cfg.Content == nil || len(inputs) == 0 {
		return nil
	}
	f := &pb.ContentFindings{}
	signals, kinds := map[string]bool{}, map[string]bool{}
	for i, in := range inputs {
		s := d.cfg.Content.ScanText(in.GetText())
		f.Inputs = append(f.Inputs, &pb.InputFindings{Index: int32(i), Source: in.GetSource(), Scan: s})
		f.InjectionScore = max(f.InjectionScore, s.GetInjectionScore())
		for _, sig := range s.GetSignals() {
			signals[sig] = true
		}
		for _, m := range s.GetPii() {
			kinds[m.GetKind()] = true
		}
	}
	f.Signals, f.PiiKinds = sortedSet(signals), sortedSet(kinds)
	return f
}

func sortedSet(m map[string]bool) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

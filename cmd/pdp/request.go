package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
)

// parseRequest turns a request written as a YAML or JSON mapping (the
// AuthorizeRequest fields, plus "now" to pin the clock) into a proto.
func parseRequest(m map[string]any) (*pb.AuthorizeRequest, time.Time, error) {
	var now time.Time
	if v, ok := m["now"]; ok {
		var err error
		if now, err = parseNow(v); err != nil {
			return nil, now, err
		}
		delete(m, "now")
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, now, fmt.Errorf("request: %w", err)
	}
	req := &pb.AuthorizeRequest{}
	if err := protojson.Unmarshal(b, req); err != nil {
		return nil, now, fmt.Errorf("request: %w", err)
	}
	return req, now, nil
}

func parseNow(v any) (time.Time, error) {
	switch t := v.(type) {
	case time.Time:
		return t, nil
	case string:
		ts, err := time.Parse(time.RFC3339, t)
		if err != nil {
			return ts, fmt.Errorf("now: want an RFC 3339 time like 2026-11-24T10:00:00-05:00: %w", err)
		}
		return ts, nil
	}
	return time.Time{}, fmt.Errorf("now: want an RFC 3339 time, got %v", v)
}

// decisionView is the JSON `pdp eval` prints: enum names without prefixes.
type decisionView struct {
	Decision       string           `json:"decision"`
	PolicyDecision string           `json:"policy_decision"`
	Mode           string           `json:"mode"`
	Policy         string           `json:"policy,omitempty"`
	Reasons        []reasonView     `json:"reasons"`
	PolicyVersion  string           `json:"policy_version"`
	Warning        string           `json:"warning,omitempty"`
	DecisionID     string           `json:"decision_id"`
	ApprovalID     string           `json:"approval_id,omitempty"`
	RateLimits     []map[string]any `json:"rate_limits,omitempty"`
	Content        json.RawMessage  `json:"content,omitempty"`
	EvalTime       string           `json:"eval_time"`
	DryRun         bool             `json:"dry_run,omitempty"`
}

type reasonView struct {
	Policy  string            `json:"policy,omitempty"`
	RuleID  string            `json:"rule_id"`
	Effect  string            `json:"effect"`
	Message string            `json:"message,omitempty"`
	Tags    map[string]string `json:"tags,omitempty"`
}

func viewOf(r *pb.AuthorizeResponse) decisionView {
	v := decisionView{
		Decision:       enumName(r.Decision.String(), "DECISION_"),
		PolicyDecision: enumName(r.PolicyDecision.String(), "DECISION_"),
		Mode:           enumName(r.Mode.String(), "MODE_"),
		Policy:         r.Policy,
		PolicyVersion:  r.PolicyVersion,
		Warning:        r.Warning,
		DecisionID:     r.DecisionId,
		ApprovalID:     r.ApprovalId,
		EvalTime:       r.EvalTime.AsDuration().String(),
		DryRun:         r.DryRun,
		Reasons:        []reasonView{},
	}
	for _, rs := range r.Reasons {
		v.Reasons = append(v.Reasons, reasonView{Policy: rs.Policy, RuleID: rs.RuleId,
			Effect: enumName(rs.Effect.String(), "EFFECT_"), Message: rs.Message, Tags: rs.Tags})
	}
	for _, l := range r.RateLimits {
		v.RateLimits = append(v.RateLimits, map[string]any{"id": l.Id, "limit": l.Limit,
			"remaining": l.Remaining, "reset_at": l.ResetAt.AsTime(), "exceeded": l.Exceeded})
	}
	if r.Content != nil {
		v.Content, _ = protojson.MarshalOptions{UseProtoNames: true}.Marshal(r.Content)
	}
	return v
}

func enumName(s, prefix string) string { return strings.TrimPrefix(s, prefix) }

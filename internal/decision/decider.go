// Package decision makes one decision end to end: it validates the request,
// runs the rules, charges limits, applies approvals, suspensions and the
// policy's mode, and writes the audit record.
package decision

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
	"github.com/agentpdp/agentpdp/internal/approval"
	"github.com/agentpdp/agentpdp/internal/audit"
	"github.com/agentpdp/agentpdp/internal/eval"
	"github.com/agentpdp/agentpdp/internal/ratelimit"
	"github.com/agentpdp/agentpdp/internal/suspension"
	"github.com/agentpdp/agentpdp/internal/telemetry"
)

// Built-in reasons the decision layer adds.
const (
	ReasonRateLimited          = "rate_limited"
	ReasonRateLimitUnavailable = "rate_limit_unavailable"
	ReasonAuditUnavailable     = "audit_unavailable"
	ReasonInternal             = "internal_error"
	ReasonSuspended            = "suspended"
	ReasonApproved             = "approved"
	ReasonApprovalInvalid      = "approval_invalid"
)

// PolicySource hands out the current compiled policy set; reloads swap it.
type PolicySource interface {
	Current() *eval.Set
}

// AuditLog receives one record per decision.
type AuditLog interface {
	Append(ctx context.Context, r *audit.Record) error
}

// Config wires a Decider. Policies and Limiter are required.
type Config struct {
	Policies PolicySource
	Limiter  ratelimit.Limiter
	// LimitFailOpen admits calls when the limiter backend is unreachable.
	LimitFailOpen bool
	Audit         AuditLog         // nil: no audit
	Content       Scanner          // nil: inputs are not scanned
	Approvals     approval.Store   // nil: REQUIRE_APPROVAL creates nothing
	Suspensions   suspension.Store // nil: no kill switch
	Logger        *slog.Logger
	Tracer        trace.Tracer       // nil: no spans
	Metrics       *telemetry.Metrics // nil: no metrics
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Decider is safe for concurrent use.
type Decider struct {
	cfg Config
	log *slog.Logger
}

// New checks cfg and builds a Decider.
func New(cfg Config) (*Decider, error) {
	if cfg.Policies == nil || cfg.Limiter == nil {
		return nil, errors.New("decision: Policies and Limiter are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Tracer == nil {
		cfg.Tracer = noop.NewTracerProvider().Tracer("")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Decider{cfg: cfg, log: log}, nil
}

// Decide answers one Authorize request. The request must have passed
// Validate. It never returns ALLOW on an error: every failure is a DENY
// with the failure as its reason.
func (d *Decider) Decide(ctx context.Context, req *pb.AuthorizeRequest) *pb.AuthorizeResponse {
	start := time.Now()
	ctx, span := d.cfg.Tracer.Start(ctx, "pdp.decide")
	defer span.End()
	set := d.cfg.Policies.Current()
	st := d.newState(span, set, req)
	defer d.observe(ctx, span, set, st, start)

	st.resp.Content = d.scanInputs(req.GetInputs())
	if !d.checkSuspended(st) {
		d.evaluate(ctx, set, st)
	}
	d.finish(st)
	d.requestApproval(ctx, st)
	d.countDenial(ctx, st)
	st.resp.EvalTime = durationpb.New(time.Since(start))
	d.writeAudit(ctx, st, start)
	return st.resp
}

func (d *Decider) newState(span trace.Span, set *eval.Set, req *pb.AuthorizeRequest) *state {
	st := &state{req: req, now: d.cfg.Now(), result: &eval.Result{},
		resp: &pb.AuthorizeResponse{DryRun: req.GetDryRun(), DecisionId: newID(), PolicyVersion: set.Version}}
	if sc := span.SpanContext(); sc.HasTraceID() {
		st.resp.TraceId = sc.TraceID().String()
	}
	return st
}

// evaluate runs the rules, then what can turn their answer: a presented
// approval, then the rate limits.
func (d *Decider) evaluate(ctx context.Context, set *eval.Set, st *state) {
	st.result = set.Evaluate(ctx, st.req, st.now)
	st.effect = st.result.Effect
	st.reasons = st.result.Reasons
	d.checkApproval(ctx, st)
	if st.effect == eval.Allow {
		d.chargeLimits(ctx, st)
	}
	d.useApproval(ctx, st)
}

// writeAudit records the decision; a trail that cannot take it turns the
// answer into a DENY, so no answered call goes unrecorded.
func (d *Decider) writeAudit(ctx context.Context, st *state, start time.Time) {
	if d.cfg.Audit == nil {
		return
	}
	err := d.cfg.Audit.Append(ctx, d.record(st, time.Since(start)))
	if err == nil {
		return
	}
	d.log.ErrorContext(ctx, "audit append failed; denying", "decision_id", st.resp.DecisionId, "err", err)
	st.effect = eval.Deny
	st.reasons = append(st.reasons, eval.Reason{RuleID: ReasonAuditUnavailable, Effect: eval.Deny,
		Message: fmt.Sprintf("the audit trail could not record this decision: %v", err)})
	d.finish(st)
}

// state is one decision in progress.
type state struct {
	suspended bool
	// approval is the approval this retry presents, once checked.
	approval *pb.Approval
	req      *pb.AuthorizeRequest
	now      time.Time
	result   *eval.Result
	effect   eval.Effect
	reasons  []eval.Reason
	limits   []ratelimit.Result
	resp     *pb.AuthorizeResponse

	spanAttrs [11]attribute.KeyValue // scratch for observe
	ruleIDs   [4]string
}

func (d *Decider) chargeLimits(ctx context.Context, st *state) {
	reqs := st.result.Limits
	if len(reqs) == 0 {
		return
	}
	results, err := d.cfg.Limiter.Charge(ctx, reqs, !st.req.GetDryRun())
	if err != nil {
		d.log.WarnContext(ctx, "rate limiter unavailable", "fail_open", d.cfg.LimitFailOpen, "err", err)
		if d.cfg.LimitFailOpen {
			return
		}
		st.effect = eval.Deny
		st.reasons = append(st.reasons, eval.Reason{Policy: st.result.Policy.Name,
			RuleID: ReasonRateLimitUnavailable, Effect: eval.Deny,
			Message: fmt.Sprintf("rate limits could not be checked: %v", err)})
		return
	}
	st.limits = results
	for i, r := range results {
		if !r.Allowed {
			st.effect = eval.Deny
			st.reasons = append(st.reasons, eval.Reason{Policy: reqs[i].Policy, RuleID: ReasonRateLimited,
				Effect: eval.Deny, Message: fmt.Sprintf("rate limit %s: %d per %s exceeded; resets at %s",
					reqs[i].ID, r.Limit, reqs[i].Window, r.Reset.UTC().Format(time.RFC3339))})
		}
	}
}

// finish applies the policy's mode and fills the response.
func (d *Decider) finish(st *state) {
	resp := st.resp
	resp.PolicyDecision = decisionPB(st.effect)
	resp.Mode = pb.Mode_MODE_ENFORCE
	if p := st.result.Policy; p != nil {
		resp.Policy = p.Name
		// The kill switch is not a policy: no mode softens it.
		if !st.suspended {
			resp.Mode = modePB(p.Mode)
		}
	}
	resp.Decision = resp.PolicyDecision
	if resp.Mode != pb.Mode_MODE_ENFORCE && resp.PolicyDecision != pb.Decision_DECISION_ALLOW {
		resp.Decision = pb.Decision_DECISION_ALLOW
		if resp.Mode == pb.Mode_MODE_WARN {
			resp.Warning = fmt.Sprintf("policy %s would %s this call (mode warn)", resp.Policy, st.effect)
		}
	}
	resp.Reasons = reasonsPB(st.reasons)
	resp.RateLimits = limitsPB(st.result.Limits, st.limits)
}

func newID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

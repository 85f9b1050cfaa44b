package telemetry

import (
	"context"
	"fmt"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
)

// Metrics are the PDP's own instruments. Labels are bounded: agents and
// tools are labelled only as policies name them (see decision.labels), never
// principals or arguments.
type Metrics struct {
	decisions   metric.Int64Counter
	latency     metric.Float64Histogram
	rateLimited metric.Int64Counter
	reloads     metric.Int64Counter
	sets        setCache[labelKey, decisionAttrs]
	limited     setCache[limitKey, metric.MeasurementOption]
	rec         *recorder
}

// setCache holds attribute sets by their label values: building and
// sorting one per measurement was a third of what metrics cost. Label
// values are bounded (policy ids, enums, method names), so the cache is too.
type setCache[K comparable, V any] struct{ m sync.Map }

func (c *setCache[K, V]) get(k K, build func() V) V {
	if v, ok := c.m.Load(k); ok {
		return v.(V)
	}
	v, _ := c.m.LoadOrStore(k, build())
	return v.(V)
}

type limitKey struct{ policy, limit string }

type labelKey struct{ decision, policyDecision, mode, agent, tool string }

type decisionAttrs struct {
	all, decision metric.MeasurementOption
}

// Gauges are read at scrape time.
type Gauges struct {
	PolicyVersion    func() string
	AuditQueueDepth  func() int64
	AuditDropped     func() int64 // records refused or dropped, all sinks
	LimiterErrors    func() int64 // backend (Redis) errors
	ApprovalsPending func(ctx context.Context) int64
	Suspensions      func(ctx context.Context) int64
}

// NewMetrics creates the instruments on mp and registers the gauges. With
// a no-op provider (metrics off) it returns nil, whose methods do nothing,
// so decisions skip the label lookup too.
func NewMetrics(mp metric.MeterProvider, g Gauges) (*Metrics, error) {
	if _, off := mp.(metricnoop.MeterProvider); off {
		return nil, nil
	}
	m := mp.Meter("github.com/agentpdp/agentpdp")
	out := &Metrics{}
	var err error
	if out.decisions, err = m.Int64Counter("agentpdp.decisions",
		metric.WithDescription("Decisions by decision, policy decision, mode, agent and tool.")); err != nil {
		return nil, err
	}
	if out.latency, err = m.Float64Histogram("agentpdp.decision.duration", metric.WithUnit("s"),
		metric.WithDescription("Time to decide one call, in the PDP."),
		metric.WithExplicitBucketBoundaries(.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .05)); err != nil {
		return nil, err
	}
	if out.rateLimited, err = m.Int64Counter("agentpdp.ratelimit.rejections",
		metric.WithDescription("Calls refused by a rate limit.")); err != nil {
		return nil, err
	}
	if out.reloads, err = m.Int64Counter("agentpdp.policy.reloads",
		metric.WithDescription("Policy reloads by result (ok, error).")); err != nil {
		return nil, err
	}
	if err := registerGauges(m, g); err != nil {
		return nil, fmt.Errorf("gauges: %w", err)
	}
	out.rec = newRecorder()
	return out, nil
}

// Decided counts one decision.
func (m *Metrics) Decided(ctx context.Context, decision, policyDecision, mode, agent, tool string, seconds float64) {
	if m == nil {
		return
	}
	attrs := m.sets.get(labelKey{decision, policyDecision, mode, agent, tool}, func() decisionAttrs {
		return decisionAttrs{
			all: metric.WithAttributeSet(attribute.NewSet(attribute.String("decision", decision),
				attribute.String("policy_decision", policyDecision), attribute.String("mode", mode),
				attribute.String("agent", agent), attribute.String("tool", tool))),
			decision: metric.WithAttributeSet(attribute.NewSet(attribute.String("decision", decision))),
		}
	})
	m.rec.add(measurement{ctx: ctx, seconds: seconds, hist: m.latency, histAttrs: attrs.decision,
		count: m.decisions, cntAttrs: attrs.all})
}

// Flush returns once every decision counted so far is in the instruments
// (they get there within a few milliseconds anyway).
func (m *Metrics) Flush() {
	if m != nil {
		m.rec.flush()
	}
}

// Close records what is still queued; call it before the meter provider
// shuts down.
func (m *Metrics) Close(context.Context) error {
	if m != nil {
		m.rec.close()
	}
	return nil
}

// RateLimited counts a refusal by one limit.
func (m *Metrics) RateLimited(ctx context.Context, policy, limit string) {
	if m == nil {
		return
	}
	attrs := m.limited.get(limitKey{policy, limit}, func() metric.MeasurementOption {
		return metric.WithAttributeSet(attribute.NewSet(attribute.String("policy", policy), attribute.String("limit", limit)))
	})
	m.rateLimited.Add(ctx, 1, attrs)
}

// Reloaded counts a policy reload.
func (m *Metrics) Reloaded(ok bool) {
	if m == nil {
		return
	}
	result := "ok"
	if !ok {
		result = "error"
	}
	m.reloads.Add(context.Background(), 1, metric.WithAttributes(attribute.String("result", result)))
}

func registerGauges(m metric.Meter, g Gauges) error {
	version, err := m.Int64ObservableGauge("agentpdp.policy.info",
		metric.WithDescription("1, labelled with the loaded policy set's version."))
	if err != nil {
		return err
	}
	depth, err := m.Int64ObservableGauge("agentpdp.audit.queue.depth",
		metric.WithDescription("Audit records accepted but not yet written."))
	if err != nil {
		return err
	}
	dropped, err := m.Int64ObservableCounter("agentpdp.audit.dropped",
		metric.WithDescription("Audit records refused (queue full) or dropped by a slow extra sink."))
	if err != nil {
		return err
	}
	redisErrs, err := m.Int64ObservableCounter("agentpdp.ratelimit.backend.errors",
		metric.WithDescription("Rate-limit backend (Redis) errors and timeouts."))
	if err != nil {
		return err
	}
	pending, err := m.Int64ObservableGauge("agentpdp.approvals.pending", metric.WithDescription("Approvals waiting for a human."))
	if err != nil {
		return err
	}
	suspended, err := m.Int64ObservableGauge("agentpdp.suspensions", metric.WithDescription("Active suspensions."))
	if err != nil {
		return err
	}
	_, err = m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		observe := func(inst metric.Int64Observable, f func() int64) {
			if f != nil {
				o.ObserveInt64(inst, f())
			}
		}
		if g.PolicyVersion != nil {
			o.ObserveInt64(version, 1, metric.WithAttributes(attribute.String("version", g.PolicyVersion())))
		}
		observe(depth, g.AuditQueueDepth)
		observe(dropped, g.AuditDropped)
		observe(redisErrs, g.LimiterErrors)
		if g.ApprovalsPending != nil {
			o.ObserveInt64(pending, g.ApprovalsPending(ctx))
		}
		if g.Suspensions != nil {
			o.ObserveInt64(suspended, g.Suspensions(ctx))
		}
		return nil
	}, version, depth, dropped, redisErrs, pending, suspended)
	return err
}

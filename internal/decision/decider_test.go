package decision

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
	"github.com/agentpdp/agentpdp/internal/audit"
	"github.com/agentpdp/agentpdp/internal/content"
	"github.com/agentpdp/agentpdp/internal/eval"
	"github.com/agentpdp/agentpdp/internal/ratelimit"
)

type fixed struct{ set *eval.Set }

func (f fixed) Current() *eval.Set { return f.set }

// memAudit keeps records in memory; it can be told to fail.
type memAudit struct {
	mu   sync.Mutex
	recs []*audit.Record
	err  error
}

func (m *memAudit) Append(_ context.Context, r *audit.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	m.recs = append(m.recs, r)
	return nil
}

// brokenLimiter fails like an unreachable Redis.
type brokenLimiter struct{}

func (brokenLimiter) Charge(context.Context, []ratelimit.Request, bool) ([]ratelimit.Result, error) {
	return nil, errors.Join(ratelimit.ErrUnavailable, errors.New("dial tcp: connection refused"))
}
func (brokenLimiter) Close() error { return nil }

const policyFmt = `apiVersion: agentpdp/v1
kind: AgentPolicy
name: p
agents: [a]
mode: %s
rules:
  - {id: ok, tools: [send], effect: allow}
  - {id: approve, tools: [send], effect: require_approval, when: has(args.attach)}
  - {id: no, tools: [send], effect: deny, when: has(args.bad)}
rate_limits:
  - {id: two, tools: [send], limit: 2, window: 1h, key: principal.id}
audit:
  redact: [args.body, args.nested.secret]
`

var now = time.Date(2026, 11, 24, 15, 0, 0, 0, time.UTC)

func newDecider(t *testing.T, mode string, lim ratelimit.Limiter, log AuditLog) *Decider {
	t.Helper()
	c, err := eval.NewCompiler(eval.Options{})
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Replace(policyFmt, "%s", mode, 1)
	set, err := c.LoadFS(fstest.MapFS{"p.yaml": {Data: []byte(body)}}, "")
	if err != nil {
		t.Fatal(err)
	}
	if lim == nil {
		lim = ratelimit.NewMemory(ratelimit.MemoryOptions{Clock: func() time.Time { return now }, SweepInterval: -1})
	}
	d, err := New(Config{Policies: fixed{set}, Limiter: lim, Audit: log, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func req(t *testing.T, js string) *pb.AuthorizeRequest {
	t.Helper()
	r := &pb.AuthorizeRequest{}
	if err := protojson.Unmarshal([]byte(js), r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestModes(t *testing.T) {
	const (
		allow   = pb.Decision_DECISION_ALLOW
		deny    = pb.Decision_DECISION_DENY
		approve = pb.Decision_DECISION_REQUIRE_APPROVAL
	)
	cases := []struct {
		mode        string
		args        string
		decision    pb.Decision
		policy      pb.Decision
		wantWarning bool
		wantPBMode  pb.Mode
	}{
		{"enforce", `{}`, allow, allow, false, pb.Mode_MODE_ENFORCE},
		{"enforce", `{"bad":1}`, deny, deny, false, pb.Mode_MODE_ENFORCE},
		{"enforce", `{"attach":1}`, approve, approve, false, pb.Mode_MODE_ENFORCE},
		{"warn", `{"bad":1}`, allow, deny, true, pb.Mode_MODE_WARN},
		{"warn", `{"attach":1}`, allow, approve, true, pb.Mode_MODE_WARN},
		{"warn", `{}`, allow, allow, false, pb.Mode_MODE_WARN},
		{"observe", `{"bad":1}`, allow, deny, false, pb.Mode_MODE_OBSERVE},
		{"observe", `{"attach":1}`, allow, approve, false, pb.Mode_MODE_OBSERVE},
	}
	for _, tc := range cases {
		t.Run(tc.mode+" "+tc.args, func(t *testing.T) {
			log := &memAudit{}
			d := newDecider(t, tc.mode, nil, log)
			resp := d.Decide(context.Background(), req(t, `{"agent":{"id":"a"},"principal":{"id":"u"},"tool":"send","args":`+tc.args+`}`))
			if resp.Decision != tc.decision || resp.PolicyDecision != tc.policy || resp.Mode != tc.wantPBMode {
				t.Fatalf("got %s/%s/%s, want %s/%s/%s", resp.Decision, resp.PolicyDecision, resp.Mode, tc.decision, tc.policy, tc.wantPBMode)
			}
			if (resp.Warning != "") != tc.wantWarning {
				t.Fatalf("warning %q, want present=%v", resp.Warning, tc.wantWarning)
			}
			if len(log.recs) != 1 || log.recs[0].Warning != resp.Warning || log.recs[0].Mode != strings.ToUpper(tc.mode) {
				t.Fatalf("audit records %+v", log.recs)
			}
		})
	}
}

func TestUnknownAgentDeniedInEveryMode(t *testing.T) {
	d := newDecider(t, "observe", nil, nil)
	resp := d.Decide(context.Background(), req(t, `{"agent":{"id":"stranger"},"tool":"send"}`))
	if resp.Decision != pb.Decision_DECISION_DENY || resp.Reasons[0].RuleId != eval.ReasonUnknownAgent {
		t.Fatalf("got %s %v", resp.Decision, resp.Reasons)
	}
}

func TestRateLimitChargedOnlyWhenAllowed(t *testing.T) {
	d := newDecider(t, "enforce", nil, nil)
	send := func(args string, dry bool) *pb.AuthorizeResponse {
		r := req(t, `{"agent":{"id":"a"},"principal":{"id":"u"},"tool":"send","args":`+args+`}`)
		r.DryRun = dry
		return d.Decide(context.Background(), r)
	}
	for i := 0; i < 3; i++ {
		if resp := send(`{"bad":1}`, false); resp.Decision != pb.Decision_DECISION_DENY || resp.RateLimits != nil {
			t.Fatalf("denied call: %v", resp)
		}
		if resp := send(`{"attach":1}`, false); resp.Decision != pb.Decision_DECISION_REQUIRE_APPROVAL {
			t.Fatalf("approval call: %v", resp)
		}
		if resp := send(`{}`, true); resp.Decision != pb.Decision_DECISION_ALLOW || !resp.DryRun {
			t.Fatalf("dry run: %v", resp)
		}
	}
	for i, want := range []int64{1, 0} {
		resp := send(`{}`, false)
		if resp.Decision != pb.Decision_DECISION_ALLOW || resp.RateLimits[0].Remaining != want {
			t.Fatalf("call %d: %s %v", i, resp.Decision, resp.RateLimits)
		}
	}
	resp := send(`{}`, false)
	if resp.Decision != pb.Decision_DECISION_DENY || !hasReason(resp, ReasonRateLimited) || !resp.RateLimits[0].Exceeded {
		t.Fatalf("third call: %s %v", resp.Decision, resp.Reasons)
	}
}

func TestLimiterDownFailsClosed(t *testing.T) {
	d := newDecider(t, "enforce", brokenLimiter{}, nil)
	resp := d.Decide(context.Background(), req(t, `{"agent":{"id":"a"},"principal":{"id":"u"},"tool":"send"}`))
	if resp.Decision != pb.Decision_DECISION_DENY || !hasReason(resp, ReasonRateLimitUnavailable) {
		t.Fatalf("got %s %v", resp.Decision, resp.Reasons)
	}
	d.cfg.LimitFailOpen = true
	resp = d.Decide(context.Background(), req(t, `{"agent":{"id":"a"},"principal":{"id":"u"},"tool":"send"}`))
	if resp.Decision != pb.Decision_DECISION_ALLOW {
		t.Fatalf("fail open: got %s %v", resp.Decision, resp.Reasons)
	}
}

func TestAuditFailureDenies(t *testing.T) {
	d := newDecider(t, "enforce", nil, &memAudit{err: errors.New("queue full")})
	resp := d.Decide(context.Background(), req(t, `{"agent":{"id":"a"},"principal":{"id":"u"},"tool":"send"}`))
	if resp.Decision != pb.Decision_DECISION_DENY || !hasReason(resp, ReasonAuditUnavailable) {
		t.Fatalf("got %s %v", resp.Decision, resp.Reasons)
	}
}

func TestAuditRecordRedacts(t *testing.T) {
	log := &memAudit{}
	d := newDecider(t, "enforce", nil, log)
	r := req(t, `{"agent":{"id":"a","framework":"langchain"},"principal":{"id":"u"},"tool":"send",
		"args":{"to":"x@y.com","body":"secret text","nested":{"secret":"s","keep":"k"}}}`)
	resp := d.Decide(context.Background(), r)
	rec := log.recs[0]
	if rec.DecisionID != resp.DecisionId || rec.PolicyVersion != resp.PolicyVersion || rec.Decision != "ALLOW" {
		t.Fatalf("record %+v", rec)
	}
	args := rec.ArgsMap()
	body, _ := args["body"].(string)
	nested := args["nested"].(map[string]any)
	if !strings.HasPrefix(body, "sha256:") || !strings.HasPrefix(nested["secret"].(string), "sha256:") || nested["keep"] != "k" {
		t.Fatalf("args not redacted: %+v", args)
	}
	if r.Args.Fields["body"].GetStringValue() != "secret text" {
		t.Fatal("redaction changed the request")
	}
}

func TestDecisionIDsAreUUIDv7(t *testing.T) {
	d := newDecider(t, "enforce", nil, nil)
	a := d.Decide(context.Background(), req(t, `{"agent":{"id":"a"},"tool":"send"}`)).DecisionId
	b := d.Decide(context.Background(), req(t, `{"agent":{"id":"a"},"tool":"send"}`)).DecisionId
	if a == b || len(a) != 36 || a[14] != '7' {
		t.Fatalf("ids %s %s", a, b)
	}
}

func hasReason(resp *pb.AuthorizeResponse, id string) bool {
	for _, r := range resp.Reasons {
		if r.RuleId == id {
			return true
		}
	}
	return false
}

// realScanner puts the content package's detectors behind Scanner, as
// pdp serve does.
type realScanner struct{ d *content.Detector }

func (s realScanner) ScanText(text string) *pb.ContentScan { return &pb.ContentScan{} }
func (s realScanner) Mask(text string) string              { return content.Mask(text, s.d.PII(text)) }
func (s realScanner) MaskFound(text string, _ []*pb.PIIMatch) string {
	return s.Mask(text)
}

// TestAuditArgsMaskedThenRedacted pins the audit record's args to what
// Struct.AsMap gives with every string PII-masked, then the policy's
// redacted paths replaced by the digest of the masked value.
func TestAuditArgsMaskedThenRedacted(t *testing.T) {
	det, err := content.New()
	if err != nil {
		t.Fatal(err)
	}
	log := &memAudit{}
	d := newDecider(t, "enforce", nil, log)
	d.cfg.Content = realScanner{det}
	r := req(t, `{"agent":{"id":"a","attributes":{"owner":"ops@corp.example"}},"principal":{"id":"u"},"tool":"send",
		"args":{"to":["alice@customer.com","bob"],"body":"card 4111 1111 1111 1111","n":3,"ok":true,"none":null,
		"empty":{},"list":[],"nested":{"secret":"mail carol@corp.example","keep":{"deep":["x@y.com",1.5]}}}}`)
	d.Decide(context.Background(), r)
	want := maskStrings(r.Args.AsMap(), realScanner{det}.Mask).(map[string]any)
	want["body"] = audit.Digest(want["body"])
	nested := want["nested"].(map[string]any)
	nested["secret"] = audit.Digest(nested["secret"])
	rec := log.recs[0]
	args := rec.ArgsMap()
	if !reflect.DeepEqual(args, want) {
		t.Fatalf("args\n got %#v\nwant %#v", args, want)
	}
	if got := rec.Agent.Attrs["owner"]; got != "[EMAIL]" {
		t.Fatalf("agent attribute not masked: %v", got)
	}
	if strings.Contains(fmt.Sprint(args), "alice@") || strings.Contains(fmt.Sprint(args), "x@y.com") {
		t.Fatalf("an address survived: %v", args)
	}
}

func maskStrings(v any, mask func(string) string) any {
	switch t := v.(type) {
	case string:
		return mask(t)
	case map[string]any:
		for k, e := range t {
			t[k] = maskStrings(e, mask)
		}
	case []any:
		for i, e := range t {
			t[i] = maskStrings(e, mask)
		}
	}
	return v
}

package mcpproxy

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
)

// FinishCall handles the server's response to a forwarded tools/call: it
// scans the result's text, applies the result action, remembers what the
// client gets for later calls' inputs, and reports the outcome to the PDP.
func (p *Proxy) FinishCall(ctx context.Context, c *toolCall, resp *jsonrpc.Response) *jsonrpc.Response {
	if resp.Error != nil {
		p.reportOutcome(ctx, c, pb.OutcomeStatus_OUTCOME_STATUS_FAILED,
			fmt.Sprintf("tools/call %s: protocol error: %v", c.tool, resp.Error), nil)
		return resp
	}
	res, err := parseResult(resp.Result)
	if err != nil {
		p.log.WarnContext(ctx, "mcp tool result is not an object", "tool", c.tool, "err", err)
		return p.withhold(ctx, c, resp.ID, ReasonScanUnavailable, "the result is not a JSON object", nil)
	}
	texts := res.texts()
	if len(texts) == 0 {
		p.deliver(ctx, c, res, findings{}, "nothing to scan")
		return resp
	}
	scans, err := p.scan(ctx, refValues(texts))
	if err != nil {
		return p.scanFailed(ctx, c, resp, res, err)
	}
	return p.applyAction(ctx, c, resp, res, texts, scans)
}

// applyAction rewrites a scanned result per the configured action.
func (p *Proxy) applyAction(ctx context.Context, c *toolCall, resp *jsonrpc.Response, res *toolResult, texts []textRef, scans []*pb.ContentScan) *jsonrpc.Response {
	id := resp.ID
	f := summarize(scans)
	if f.flagged {
		p.log.WarnContext(ctx, "mcp tool result looks like a prompt injection", "tool", c.tool,
			"session", c.sess.ID, "score", f.score, "signals", f.signals, "action", p.cfg.ResultAction)
	}
	note := f.meta(p.cfg.ResultAction)
	switch p.cfg.ResultAction {
	case ActionBlock:
		if f.flagged {
			return p.withhold(ctx, c, id, ReasonInjection, fmt.Sprintf(
				"the result looks like a prompt injection (score %.2f; signals: %s)", f.score, strings.Join(f.signals, ", ")), note)
		}
	case ActionRedact:
		f.redacted = redactAll(texts, scans)
		note = f.meta(p.cfg.ResultAction)
	}
	if !f.flagged && len(f.piiKinds) == 0 && !f.truncated && f.redacted == 0 {
		p.deliver(ctx, c, res, f, string(p.cfg.ResultAction))
		return resp // nothing to say: the result passes exactly as it came
	}
	res.setMeta(metaKeyScan, note)
	raw, err := res.encode()
	if err != nil {
		return p.withhold(ctx, c, id, ReasonScanUnavailable, "the rewritten result could not be encoded: "+err.Error(), nil)
	}
	p.deliver(ctx, c, res, f, string(p.cfg.ResultAction))
	return resultResponse(id, raw)
}

// scanFailed fails open only for the flag action: flagging is advice,
// while redact and block promise the client never sees what was not
// checked.
func (p *Proxy) scanFailed(ctx context.Context, c *toolCall, resp *jsonrpc.Response, res *toolResult, err error) *jsonrpc.Response {
	p.log.WarnContext(ctx, "mcp tool result scan failed", "tool", c.tool, "action", p.cfg.ResultAction, "err", err)
	if p.cfg.ResultAction != ActionFlag {
		return p.withhold(ctx, c, resp.ID, ReasonScanUnavailable, "the result could not be scanned: "+err.Error(), nil)
	}
	res.setMeta(metaKeyScan, map[string]any{"action": string(ActionFlag), "error": err.Error()})
	raw, encErr := res.encode()
	if encErr != nil {
		raw = resp.Result
	}
	p.deliver(ctx, c, res, findings{}, "scan failed: "+err.Error())
	return resultResponse(resp.ID, raw)
}

// withhold replaces the tool's result with an isError result: the tool
// ran, but the client does not get what it returned.
func (p *Proxy) withhold(ctx context.Context, c *toolCall, id jsonrpc.ID, reason, why string, note map[string]any) *jsonrpc.Response {
	if note == nil {
		note = map[string]any{}
	}
	note["blocked"], note["reason"] = true, reason
	text := fmt.Sprintf("Blocked by agentpdp: %s: %s ran, but %s", reason, c.tool, why)
	p.reportOutcome(ctx, c, pb.OutcomeStatus_OUTCOME_STATUS_SUCCEEDED,
		fmt.Sprintf("tools/call %s: result withheld from the client: %s: %s", c.tool, reason, why), note)
	return resultResponse(id, toolError(text, map[string]any{metaKeyScan: note}))
}

// deliver records a result the client gets: its text joins the session's
// history and the outcome is reported.
func (p *Proxy) deliver(ctx context.Context, c *toolCall, res *toolResult, f findings, action string) {
	c.sess.remember(p.source(c.name), res.historyText())
	st := pb.OutcomeStatus_OUTCOME_STATUS_SUCCEEDED
	if res.isError() {
		st = pb.OutcomeStatus_OUTCOME_STATUS_FAILED
	}
	summary := fmt.Sprintf("tools/call %s: isError=%t; injection score %.2f; pii %v; result action %s",
		c.tool, res.isError(), f.score, f.piiKinds, action)
	p.reportOutcome(ctx, c, st, summary, f.meta(p.cfg.ResultAction))
}

// findings sums up the scans of one result.
type findings struct {
	score     float64
	flagged   bool
	truncated bool
	signals   []string
	piiKinds  []string
	redacted  int
}

func summarize(scans []*pb.ContentScan) findings {
	var f findings
	for _, s := range scans {
		f.score = max(f.score, s.GetInjectionScore())
		f.flagged = f.flagged || s.GetFlagged()
		f.truncated = f.truncated || s.GetTruncated()
		f.signals = appendNew(f.signals, s.GetSignals()...)
		for _, m := range s.GetPii() {
			f.piiKinds = appendNew(f.piiKinds, m.GetKind())
		}
	}
	return f
}

// meta is the _meta note the client sees, and the outcome's details.
func (f findings) meta(action ResultAction) map[string]any {
	m := map[string]any{
		"action": string(action), "injection_score": f.score, "flagged": f.flagged,
		"signals": orEmpty(f.signals), "pii_kinds": orEmpty(f.piiKinds), "truncated": f.truncated,
	}
	if f.redacted > 0 {
		m["redacted"] = f.redacted
	}
	return m
}

func appendNew(dst []string, vs ...string) []string {
	for _, v := range vs {
		if !slices.Contains(dst, v) {
			dst = append(dst, v)
		}
	}
	return dst
}

func orEmpty(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// reportOutcome appends what the tool did to the audit trail, off the
// response path; Close waits for the reports still in flight.
func (p *Proxy) reportOutcome(ctx context.Context, c *toolCall, st pb.OutcomeStatus, summary string, details map[string]any) {
	if c.decisionID == "" {
		return
	}
	req := &pb.ReportOutcomeRequest{DecisionId: c.decisionID, Status: st, AgentId: p.cfg.AgentID,
		Summary: truncateUTF8(summary, 4096), Details: toStruct(details)}
	ctx = context.WithoutCancel(ctx)
	p.bg.Add(1)
	go func() {
		defer p.bg.Done()
		rctx, cancel := p.pdpCtx(ctx)
		defer cancel()
		if _, err := p.pdp.ReportOutcome(rctx, req); err != nil {
			p.log.WarnContext(rctx, "report outcome failed", "decision_id", c.decisionID, "err", err)
		}
	}()
}

// toolResult is a tools/call result decoded for rewriting; fields the
// proxy does not know are kept.
type toolResult struct {
	m map[string]any
}

func parseResult(raw json.RawMessage) (*toolResult, error) {
	var m map[string]any
	if err := decodeJSON(raw, &m); err != nil {
		return nil, fmt.Errorf("decode tool result: %w", err)
	}
	if m == nil {
		return nil, fmt.Errorf("decode tool result: null")
	}
	return &toolResult{m: m}, nil
}

func (r *toolResult) isError() bool {
	b, _ := r.m["isError"].(bool)
	return b
}

func (r *toolResult) setMeta(key string, v any) {
	meta, _ := r.m["_meta"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		r.m["_meta"] = meta
	}
	meta[key] = v
}

func (r *toolResult) encode() (json.RawMessage, error) { return encodeJSON(r.m) }

// texts are the result's scannable strings: text content, the text of
// embedded resources, and every string in structuredContent.
func (r *toolResult) texts() []textRef {
	refs := r.contentTexts()
	if sc, ok := r.m["structuredContent"]; ok {
		refs = collectStrings(sc, refs)
	}
	return refs
}

func (r *toolResult) contentTexts() []textRef {
	var refs []textRef
	items, _ := r.m["content"].([]any)
	for _, it := range items {
		item, _ := it.(map[string]any)
		switch item["type"] {
		case "text":
			if _, ok := item["text"].(string); ok {
				refs = append(refs, textRef{m: item, k: "text"})
			}
		case "resource":
			res, _ := item["resource"].(map[string]any)
			if _, ok := res["text"].(string); ok {
				refs = append(refs, textRef{m: res, k: "text"})
			}
		}
	}
	return refs
}

// historyText is what a later call's inputs carry of this result: its
// text content, or its structured content's strings when it has none.
func (r *toolResult) historyText() string {
	refs := r.contentTexts()
	if len(refs) == 0 {
		refs = r.texts()
	}
	return strings.Join(refValues(refs), "\n")
}

// collectStrings appends a ref for every string leaf under v.
func collectStrings(v any, refs []textRef) []textRef {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if _, ok := e.(string); ok {
				refs = append(refs, textRef{m: x, k: k})
			} else {
				refs = collectStrings(e, refs)
			}
		}
	case []any:
		for i, e := range x {
			if _, ok := e.(string); ok {
				refs = append(refs, textRef{s: x, i: i})
			} else {
				refs = collectStrings(e, refs)
			}
		}
	}
	return refs
}

// textRef points at one string inside a decoded result: m[k] or s[i].
type textRef struct {
	m map[string]any
	k string
	s []any
	i int
}

func (t textRef) get() string {
	var v any
	if t.m != nil {
		v = t.m[t.k]
	} else {
		v = t.s[t.i]
	}
	s, _ := v.(string)
	return s
}

func (t textRef) set(s string) {
	if t.m != nil {
		t.m[t.k] = s
		return
	}
	t.s[t.i] = s
}

func refValues(refs []textRef) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.get()
	}
	return out
}

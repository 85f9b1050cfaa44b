package audit

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/agentpdp/agentpdp/internal/swar"
)

// The canonical body of a record is, byte for byte, what Go's encoding/json
// (v1) produces for Record with SetEscapeHTML(false): struct field order,
// omitempty/omitzero as tagged, map keys sorted, RFC 3339 times, ES6-style
// floats. This file produces it without reflection (encoding/json costs
// several µs per record, which the single writer pays for every decision);
// canonical_test.go pins the equality against encoding/json, including
// for any field added to Record later.

// jsonBuf appends JSON. first tracks whether the current object still
// lacks a member (so the next key needs no comma).
type jsonBuf struct {
	b     []byte
	first bool
	err   error
	// typeEnd is the offset just after the record's type member, where
	// the writer splices in chain_id and seq.
	typeEnd int
	// fallback encodes values of unexpected types through encoding/json.
	fallback *json.Encoder
	fbuf     bytes.Buffer
}

func (w *jsonBuf) open() { w.b = append(w.b, '{'); w.first = true }

func (w *jsonBuf) close() { w.b = append(w.b, '}'); w.first = false }

// key writes a member name; names here are fixed ASCII, never escaped.
func (w *jsonBuf) key(k string) {
	if !w.first {
		w.b = append(w.b, ',')
	}
	w.first = false
	w.b = append(w.b, '"')
	w.b = append(w.b, k...)
	w.b = append(w.b, '"', ':')
}

func (w *jsonBuf) str(k, v string, omitEmpty bool) {
	if omitEmpty && v == "" {
		return
	}
	w.key(k)
	w.b = appendJSONString(w.b, v)
}

func (w *jsonBuf) int(k string, v int64, omitEmpty bool) {
	if omitEmpty && v == 0 {
		return
	}
	w.key(k)
	w.b = strconv.AppendInt(w.b, v, 10)
}

func (w *jsonBuf) bool(k string, v bool) { // always omitempty in Record
	if v {
		w.key(k)
		w.b = append(w.b, "true"...)
	}
}

func (w *jsonBuf) time(k string, t time.Time) {
	w.key(k)
	w.appendTime(t)
}

func (w *jsonBuf) strings(k string, v []string) { // always omitempty in Record
	if len(v) == 0 {
		return
	}
	w.key(k)
	w.b = append(w.b, '[')
	for i, s := range v {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.b = appendJSONString(w.b, s)
	}
	w.b = append(w.b, ']')
}

func (w *jsonBuf) anyMap(k string, m map[string]any) { // always omitempty in Record
	if len(m) == 0 {
		return
	}
	w.key(k)
	w.appendMap(m)
}

// appendTime is time.Time.MarshalJSON without its allocation.
func (w *jsonBuf) appendTime(t time.Time) {
	n0 := len(w.b) + 1
	w.b = append(w.b, '"')
	w.b = t.AppendFormat(w.b, time.RFC3339Nano)
	b := w.b
	switch {
	case b[n0+4] != '-':
		w.fail(timeRangeError("json: Time.MarshalJSON: year outside of range [0,9999]"))
	case b[len(b)-1] != 'Z':
		c := b[len(b)-len("Z07:00")]
		if ('0' <= c && c <= '9') || 10*(b[len(b)-5]-'0')+(b[len(b)-4]-'0') >= 24 {
			w.fail(timeRangeError("json: Time.MarshalJSON: timezone hour outside of range [0,23]"))
		}
	}
	w.b = append(w.b, '"')
}

// timeRangeError is encoding/json's refusal of a time RFC 3339 cannot
// write; sanitizeRecord clamps such times.
type timeRangeError string

func (e timeRangeError) Error() string { return string(e) }

func (w *jsonBuf) fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

// appendMap writes a map[string]any with sorted keys, as encoding/json does.
func (w *jsonBuf) appendMap(m map[string]any) {
	if m == nil {
		w.b = append(w.b, "null"...)
		return
	}
	appendObject(w, m, func(_ string, v any) { w.appendAny(v) })
}

// appendObject writes m as a JSON object with sorted keys, as encoding/json
// does, each value by value.
func appendObject[V any](w *jsonBuf, m map[string]V, value func(k string, v V)) {
	var small [16]string // most maps are small: sort their keys without allocating
	keys := small[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	w.b = append(w.b, '{')
	for i, k := range keys {
		w.comma(i)
		w.b = appendJSONString(w.b, k)
		w.b = append(w.b, ':')
		value(k, m[k])
	}
	w.b = append(w.b, '}')
}

// appendAny covers what protobuf Struct values become (nil, bool, float64,
// string, []any, map[string]any) plus plain ints; anything else goes
// through encoding/json itself.
func (w *jsonBuf) appendAny(v any) {
	switch x := v.(type) {
	case nil:
		w.b = append(w.b, "null"...)
	case string:
		w.b = appendJSONString(w.b, x)
	case bool:
		w.b = strconv.AppendBool(w.b, x)
	case float64:
		w.appendFloat(x, 64)
	case float32:
		w.appendFloat(float64(x), 32)
	case int:
		w.b = strconv.AppendInt(w.b, int64(x), 10)
	case int64:
		w.b = strconv.AppendInt(w.b, x, 10)
	case map[string]any:
		w.appendMap(x)
	case []any:
		if x == nil {
			w.b = append(w.b, "null"...)
			return
		}
		w.b = append(w.b, '[')
		for i, e := range x {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.appendAny(e)
		}
		w.b = append(w.b, ']')
	default:
		w.appendFallback(v)
	}
}

func (w *jsonBuf) appendFallback(v any) {
	if w.fallback == nil {
		w.fallback = json.NewEncoder(&w.fbuf)
		w.fallback.SetEscapeHTML(false)
	}
	w.fbuf.Reset()
	if err := w.fallback.Encode(v); err != nil {
		w.fail(err)
		return
	}
	w.b = append(w.b, bytes.TrimSuffix(w.fbuf.Bytes(), []byte{'\n'})...)
}

// appendFloat is encoding/json's floatEncoder: ES6 number formatting.
func (w *jsonBuf) appendFloat(f float64, bits int) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		w.fail(&json.UnsupportedValueError{Value: reflect.ValueOf(f), Str: strconv.FormatFloat(f, 'g', -1, bits)})
		w.b = append(w.b, "null"...)
		return
	}
	abs := math.Abs(f)
	fmt := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			fmt = 'e'
		}
	}
	w.b = strconv.AppendFloat(w.b, f, fmt, -1, bits)
	if fmt == 'e' { // e-09 -> e-9
		n := len(w.b)
		if n >= 4 && w.b[n-4] == 'e' && w.b[n-3] == '-' && w.b[n-2] == '0' {
			w.b[n-2] = w.b[n-1]
			w.b = w.b[:n-1]
		}
	}
}

const hexDigits = "0123456789abcdef"

// appendJSONString is encoding/json's appendString with escapeHTML off.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; ; {
		i = skipPlain(s, i)
		if i == len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			dst = appendEscaped(dst, c)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			start = i + size
		} else if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			start = i + size
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendEscaped appends the escape of an ASCII byte that JSON strings
// cannot hold as it is.
func appendEscaped(dst []byte, c byte) []byte {
	switch c {
	case '\\', '"':
		return append(dst, '\\', c)
	case '\b':
		return append(dst, '\\', 'b')
	case '\f':
		return append(dst, '\\', 'f')
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	return append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
}

// skipPlain returns the index of the first byte from i that JSON does not
// keep as it is (anything but printable ASCII other than '"' and '\\'), or
// len(s). Most of a record is such text; it tests eight bytes at a time.
func skipPlain(s string, i int) int {
	for ; i+8 <= len(s); i += 8 {
		b := s[i : i+8]
		x := uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
			uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
		if swar.InRange(x, 0x20, 0x7f)&^swar.Equal(x, '"')&^swar.Equal(x, '\\') != swar.High {
			break
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' {
			break
		}
	}
	return i
}

// appendRecordJSON appends the canonical body of r. Keep it in Record's
// field order; canonical_test.go fails if a field is missed.
func (w *jsonBuf) appendRecord(r *Record) {
	w.open()
	w.str("type", r.Type, false)
	w.typeEnd = len(w.b)
	w.str("chain_id", r.ChainID, true)
	if r.Seq != 0 {
		w.key("seq")
		w.b = strconv.AppendUint(w.b, r.Seq, 10)
	}
	w.time("time", r.Time)
	w.str("decision_id", r.DecisionID, true)
	w.appendRequest(r)
	w.appendVerdict(r)
	w.appendEvents(r)
	w.str("prev_hash", r.PrevHash, true)
	w.str("hash", r.Hash, true)
	w.close()
}

// appendRequest: agent .. inputs.
func (w *jsonBuf) appendRequest(r *Record) {
	if a := r.Agent; a != nil {
		w.key("agent")
		w.open()
		w.str("id", a.ID, false)
		w.str("framework", a.Framework, true)
		w.str("session_id", a.SessionID, true)
		w.anyMap("attributes", a.Attrs)
		w.close()
	}
	if p := r.Principal; p != nil {
		w.key("principal")
		w.open()
		w.str("id", p.ID, true)
		w.strings("roles", p.Roles)
		w.anyMap("attributes", p.Attrs)
		w.close()
	}
	w.str("tool", r.Tool, true)
	if r.Args == nil && r.ArgsFrom != nil {
		w.protoArgs("args", r.ArgsFrom)
	} else {
		w.anyMap("args", r.Args)
	}
	if res := r.Resource; res != nil {
		w.key("resource")
		w.open()
		w.str("kind", res.Kind, true)
		w.str("id", res.ID, true)
		w.anyMap("attributes", res.Attrs)
		w.close()
	}
	if len(r.Inputs) > 0 {
		w.key("inputs")
		w.b = append(w.b, '[')
		for i, in := range r.Inputs {
			w.comma(i)
			w.open()
			w.str("source", in.Source, true)
			w.str("text", in.Text, true)
			w.close()
		}
		w.b = append(w.b, ']')
	}
}

func (w *jsonBuf) comma(i int) {
	if i > 0 {
		w.b = append(w.b, ',')
	}
}

// appendVerdict: decision .. trace_id.
func (w *jsonBuf) appendVerdict(r *Record) {
	w.str("decision", r.Decision, true)
	w.str("policy_decision", r.PolicyDecision, true)
	w.str("mode", r.Mode, true)
	w.bool("dry_run", r.DryRun)
	w.str("warning", r.Warning, true)
	w.str("policy", r.Policy, true)
	w.str("policy_version", r.PolicyVersion, true)
	if len(r.Reasons) > 0 {
		w.key("reasons")
		w.b = append(w.b, '[')
		for i, rs := range r.Reasons {
			w.comma(i)
			w.appendReason(&rs)
		}
		w.b = append(w.b, ']')
	}
	if len(r.RateLimits) > 0 {
		w.key("rate_limits")
		w.b = append(w.b, '[')
		for i, rl := range r.RateLimits {
			w.comma(i)
			w.open()
			w.str("id", rl.ID, false)
			w.int("limit", rl.Limit, false)
			w.int("remaining", rl.Remaining, false)
			w.time("reset", rl.Reset)
			w.bool("exceeded", rl.Exceeded)
			w.int("cost", rl.Cost, true)
			w.close()
		}
		w.b = append(w.b, ']')
	}
	if c := r.Content; c != nil {
		w.key("content")
		w.open()
		w.key("injection_score")
		w.appendFloat(c.InjectionScore, 64)
		w.strings("signals", c.Signals)
		w.strings("pii_kinds", c.PIIKinds)
		w.close()
	}
	w.str("approval_id", r.ApprovalID, true)
	w.int("latency_ns", r.LatencyNS, true)
	w.str("trace_id", r.TraceID, true)
}

func (w *jsonBuf) appendReason(rs *Reason) {
	w.open()
	w.str("policy", rs.Policy, true)
	w.str("rule_id", rs.RuleID, false)
	w.str("effect", rs.Effect, false)
	w.str("message", rs.Message, true)
	if len(rs.Tags) > 0 {
		w.key("tags")
		appendObject(w, rs.Tags, func(_, v string) { w.b = appendJSONString(w.b, v) })
	}
	w.close()
}

// appendEvents: outcome, approval, suspension.
func (w *jsonBuf) appendEvents(r *Record) {
	if o := r.Outcome; o != nil {
		w.key("outcome")
		w.open()
		w.str("status", o.Status, false)
		w.str("summary", o.Summary, true)
		w.anyMap("details", o.Details)
		w.close()
	}
	if a := r.Approval; a != nil {
		w.key("approval")
		w.open()
		w.str("id", a.ID, false)
		w.str("event", a.Event, false)
		w.str("status", a.Status, false)
		w.str("approver", a.Approver, true)
		w.str("note", a.Note, true)
		w.str("digest", a.Digest, true)
		w.close()
	}
	if s := r.Suspension; s != nil {
		w.key("suspension")
		w.open()
		w.str("event", s.Event, false)
		w.str("agent_id", s.AgentID, false)
		w.str("principal_id", s.PrincipalID, true)
		w.str("reason", s.Reason, true)
		w.str("by", s.By, true)
		if !s.ExpiresAt.IsZero() {
			w.time("expires_at", s.ExpiresAt)
		}
		w.close()
	}
}

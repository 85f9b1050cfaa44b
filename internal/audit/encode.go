package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
)

// The hash is spliced in as the last member of the JSON object, so a
// verifier can cut it off by length without parsing or re-encoding JSON:
// line = body[:len(body)-1] + `,"hash":"` + hex(sha256(body)) + `"}`.
const (
	hashPrefix = `,"hash":"`
	hashSuffix = `"}`
	hashHexLen = 2 * sha256.Size
	// hashTailLen is the length of `,"hash":"<64 hex>"}` at the end of a line.
	hashTailLen = len(hashPrefix) + hashHexLen + len(hashSuffix)
)

// encoder turns records into canonical JSON. Encoders are pooled: the
// writer uses one per record in async mode, durable callers of Append one
// each, in parallel.
type encoder struct {
	w jsonBuf
}

// newEncoder sizes the buffer for a typical record, so pooled encoders
// (emptied by every GC) do not regrow it step by step.
func newEncoder() *encoder { return &encoder{w: jsonBuf{b: make([]byte, 0, 2048)}} }

// body returns the canonical JSON of r (see canonical.go), which must have
// Hash empty. The slice is valid until the next call.
func (e *encoder) body(r *Record) ([]byte, error) {
	e.w.b, e.w.err, e.w.first = e.w.b[:0], nil, false
	e.w.appendRecord(r)
	if e.w.err != nil {
		return nil, e.w.err
	}
	return e.w.b, nil
}

// prepare encodes r without its chain fields (ChainID, Seq, PrevHash and
// Hash must be zero). A record that cannot be encoded as it is (NaN or ±Inf
// numbers arrive through protobuf Struct; a policy's absurd window puts a
// rate limit's reset past year 9999) is sanitised rather than refused, so a
// caller cannot keep a decision out of the trail, or make it fail, by
// sending unencodable arguments. It returns the record as encoded.
func (e *encoder) prepare(r *Record) (*Record, error) {
	_, err := e.body(r)
	if err == nil {
		return r, nil
	}
	var unsupported *json.UnsupportedValueError
	var unsupportedType *json.UnsupportedTypeError
	var badTime timeRangeError
	if !errors.As(err, &unsupported) && !errors.As(err, &unsupportedType) && !errors.As(err, &badTime) {
		return r, fmt.Errorf("encode record: %w", err)
	}
	r = sanitizeRecord(r)
	if _, err := e.body(r); err != nil {
		return r, fmt.Errorf("encode sanitised record: %w", err)
	}
	return r, nil
}

// appendChained appends the canonical body of the prepared record with its
// chain fields. They are the only members that depend on the chain, and
// their places are fixed: chain_id and seq right after type (always
// present, always first), prev_hash last.
func (e *encoder) appendChained(dst []byte, chain string, seq uint64, prevHash string) []byte {
	pre, te := e.w.b, e.w.typeEnd
	dst = append(dst, pre[:te]...)
	dst = append(dst, `,"chain_id":`...)
	dst = appendJSONString(dst, chain)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, pre[te:len(pre)-1]...)
	if prevHash != "" {
		dst = append(dst, `,"prev_hash":`...)
		dst = appendJSONString(dst, prevHash)
	}
	return append(dst, '}')
}

// appendLine appends the hashed line for body (with a trailing newline) to
// dst and returns it with the hex hash.
func appendLine(dst, body []byte) ([]byte, string) {
	sum := sha256.Sum256(body)
	var hx [hashHexLen]byte
	hex.Encode(hx[:], sum[:])
	dst = append(dst, body[:len(body)-1]...)
	dst = append(dst, hashPrefix...)
	dst = append(dst, hx[:]...)
	dst = append(dst, hashSuffix...)
	dst = append(dst, '\n')
	return dst, string(hx[:])
}

// splitLine checks the fixed-length hash tail of a line (without newline)
// and returns the body that was hashed and the stored hash.
func splitLine(line []byte) (body []byte, hash string, ok bool) {
	n := len(line)
	if n < hashTailLen+2 || !bytes.HasSuffix(line, []byte(hashSuffix)) ||
		!bytes.Equal(line[n-hashTailLen:n-hashTailLen+len(hashPrefix)], []byte(hashPrefix)) {
		return nil, "", false
	}
	hx := line[n-len(hashSuffix)-hashHexLen : n-len(hashSuffix)]
	for _, c := range hx {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return nil, "", false
		}
	}
	body = make([]byte, 0, n-hashTailLen+1)
	body = append(body, line[:n-hashTailLen]...)
	body = append(body, '}')
	return body, string(hx), true
}

// hashHex is the hex SHA-256 of b.
func hashHex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// sanitizeRecord returns a shallow copy of r whose free-form values are
// JSON-encodable: non-finite floats become strings, unknown types their
// fmt form, times outside years 0–9999 the nearest time inside, in UTC.
// Only used when plain encoding failed.
func sanitizeRecord(r *Record) *Record {
	c := *r
	c.Time = sanitizeTime(r.Time)
	if len(r.RateLimits) > 0 {
		c.RateLimits = slices.Clone(r.RateLimits)
		for i := range c.RateLimits {
			c.RateLimits[i].Reset = sanitizeTime(c.RateLimits[i].Reset)
		}
	}
	if r.Suspension != nil {
		su := *r.Suspension
		su.ExpiresAt = sanitizeTime(su.ExpiresAt)
		c.Suspension = &su
	}
	c.Args, c.ArgsFrom = sanitizeMap(r.ArgsMap()), nil
	if r.Agent != nil {
		a := *r.Agent
		a.Attrs = sanitizeMap(a.Attrs)
		c.Agent = &a
	}
	if r.Principal != nil {
		p := *r.Principal
		p.Attrs = sanitizeMap(p.Attrs)
		c.Principal = &p
	}
	if r.Resource != nil {
		res := *r.Resource
		res.Attrs = sanitizeMap(res.Attrs)
		c.Resource = &res
	}
	if r.Outcome != nil {
		o := *r.Outcome
		o.Details = sanitizeMap(o.Details)
		c.Outcome = &o
	}
	if r.Content != nil {
		ct := *r.Content
		if math.IsNaN(ct.InjectionScore) || math.IsInf(ct.InjectionScore, 0) {
			ct.InjectionScore = 0
		}
		c.Content = &ct
	}
	return &c
}

var (
	minTime = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
)

// sanitizeTime keeps t when RFC 3339 can write it, and otherwise moves it
// to UTC (zones of ±24 h or more cannot be written) clamped to years 0–9999.
func sanitizeTime(t time.Time) time.Time {
	_, off := t.Zone()
	if y := t.Year(); y >= 0 && y <= 9999 && off > -24*3600 && off < 24*3600 {
		return t
	}
	switch t = t.UTC(); {
	case t.Before(minTime):
		return minTime
	case t.After(maxTime):
		return maxTime
	}
	return t
}

func sanitizeMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = sanitizeValue(v)
	}
	return out
}

func sanitizeValue(v any) any {
	switch x := v.(type) {
	case nil, bool, string, int, int32, int64, uint, uint32, uint64:
		return x
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Sprint(x)
		}
		return x
	case float32:
		return sanitizeValue(float64(x))
	case map[string]any:
		return sanitizeMap(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = sanitizeValue(e)
		}
		return out
	}
	if _, err := json.Marshal(v); err != nil {
		return fmt.Sprintf("%v", v)
	}
	return v
}

package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// oracle is the documented definition of the canonical body.
func oracle(t testing.TB, r *Record) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})
}

func sameAsEncodingJSON(t testing.TB, r *Record) {
	t.Helper()
	want := oracle(t, r)
	got, err := newEncoder().body(r)
	if err != nil {
		t.Fatalf("canonical encoder: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("canonical encoder differs from encoding/json\n got: %s\nwant: %s", got, want)
	}
}

// fill sets every field reachable from v to a non-zero value, so a field
// added to Record but not to canonical.go shows up as a difference.
func fill(v reflect.Value, path string) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("v:" + path)
	case reflect.Int, reflect.Int64:
		v.SetInt(int64(len(path)))
	case reflect.Uint64:
		v.SetUint(uint64(len(path)))
	case reflect.Float64:
		v.SetFloat(float64(len(path)) / 8)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 11, 24, 10, 0, len(path)%60, 123456000, time.UTC)))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).Tag.Get("json") == "-" {
				continue // not encoded
			}
			fill(v.Field(i), path+"."+v.Type().Field(i).Name)
		}
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), path)
		v.Set(p)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for _, k := range []string{"zeta", "alpha", "Mid"} {
			e := reflect.New(v.Type().Elem()).Elem()
			fill(e, path+"."+k)
			m.SetMapIndex(reflect.ValueOf(k), e)
		}
		v.Set(m)
	case reflect.Interface:
		v.Set(reflect.ValueOf(map[string]any{"n": 1.5, "s": "v:" + path, "l": []any{true, nil, "x"}}))
	default:
		panic("fill: unhandled kind " + v.Kind().String() + " at " + path)
	}
}

func TestCanonicalEncoderMatchesEncodingJSON(t *testing.T) {
	full := &Record{}
	fill(reflect.ValueOf(full).Elem(), "r")
	tricky := "quote\" back\\ nl\n cr\r tab\t bs\b ff\f nul\x00 esc\x1b del\x7f <html>&amp; é 漢字 🙂 \u2028\u2029 bad\xff\xfe end"
	loc := time.FixedZone("x", -5*3600-30*60)
	tests := []struct {
		name string
		r    *Record
	}{
		{"zero record", &Record{}},
		{"every field set", full},
		{"decision", decisionRecord(7, "email-agent", "ALLOW")},
		{"tricky strings everywhere", &Record{
			Type: tricky, DecisionID: tricky, Tool: tricky,
			Agent:   &Agent{ID: tricky, Attrs: map[string]any{tricky: tricky}},
			Reasons: []Reason{{RuleID: tricky, Effect: "deny", Tags: map[string]string{tricky: tricky, "a": "b"}}},
			Inputs:  []Input{{Source: "email", Text: tricky}},
		}},
		{"numbers", &Record{Type: TypeDecision, Args: map[string]any{
			"zero": 0.0, "negzero": math.Copysign(0, -1), "small": 1e-7, "tiny": 5e-324, "big": 1e21, "justunder": 999999999999999999999.0,
			"frac": 123.456, "neg": -0.000001, "int": 42, "int64": int64(-9), "f32": float32(0.1), "f32e": float32(1e-7),
			"maxint": float64(1 << 53),
		}, Content: &Content{InjectionScore: 0.8500000001}, LatencyNS: -1}},
		{"nested and empty values", &Record{Type: TypeDecision, Args: map[string]any{
			"nil": nil, "emptymap": map[string]any{}, "nilmap": map[string]any(nil), "emptylist": []any{},
			"nillist": []any(nil), "deep": map[string]any{"b": []any{map[string]any{"z": 1.0, "a": "x"}}},
		}}},
		{"fallback types", &Record{Type: TypeDecision, Args: map[string]any{
			"strings": []string{"a", "<b>"}, "struct": struct{ A int }{1}, "uint": uint(3), "bytes": []byte("hi"),
			"json": json.RawMessage(`{"k":1}`), "ptr": (*int)(nil),
		}}},
		{"empty but non-nil slices and maps are omitted", &Record{
			Type: TypeDecision, Args: map[string]any{}, Inputs: []Input{}, Reasons: []Reason{},
			Principal: &Principal{Roles: []string{}, Attrs: map[string]any{}}, Content: &Content{Signals: []string{}},
		}},
		{"times", &Record{
			Type: TypeSuspension, Time: time.Date(2026, 3, 1, 2, 3, 4, 5, loc),
			RateLimits: []RateLimit{{ID: "r", Reset: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)}},
			Suspension: &Suspension{Event: "suspended", AgentID: "a", ExpiresAt: time.Date(2026, 1, 1, 0, 0, 0, 100, time.UTC)},
		}},
		{"zero expiry omitted", &Record{Type: TypeSuspension, Suspension: &Suspension{Event: "resumed", AgentID: "a"}}},
		{"outcome and approval", &Record{
			Type: TypeOutcome, Outcome: &Outcome{Status: "ok", Details: map[string]any{"messages": 1.0}},
			Approval: &Approval{ID: "ap-1", Event: "granted", Status: "approved", Approver: "ops@x"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { sameAsEncodingJSON(t, tc.r) })
	}
}

// TestJSONStringEveryOffset puts each byte class that needs care at every
// offset of the eight-byte blocks the fast path tests at once.
func TestJSONStringEveryOffset(t *testing.T) {
	for _, special := range []string{`"`, `\\`, "\n", "\x00", "\x1f", "\x7f", "é", "\u2028", "\xff", "<&>", "~"} {
		for pre := 0; pre < 17; pre++ {
			s := strings.Repeat("a", pre) + special + strings.Repeat("z", 9)
			var want bytes.Buffer
			enc := json.NewEncoder(&want)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(s); err != nil {
				t.Fatal(err)
			}
			if got := appendJSONString(nil, s); !bytes.Equal(got, bytes.TrimSuffix(want.Bytes(), []byte("\n"))) {
				t.Errorf("%q: got %s, want %s", s, got, want.Bytes())
			}
		}
	}
}

func TestCanonicalEncoderRejectsWhatEncodingJSONRejects(t *testing.T) {
	tests := []struct {
		name string
		r    *Record
	}{
		{"NaN arg", &Record{Args: map[string]any{"x": math.NaN()}}},
		{"Inf score", &Record{Content: &Content{InjectionScore: math.Inf(-1)}}},
		{"year 10000", &Record{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"channel arg", &Record{Args: map[string]any{"c": make(chan int)}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, want := json.Marshal(tc.r)
			_, got := newEncoder().body(tc.r)
			if (want == nil) != (got == nil) {
				t.Errorf("encoding/json err = %v, canonical err = %v", want, got)
			}
		})
	}
}

func FuzzCanonicalEncoder(f *testing.F) {
	f.Add("email-agent", "gmail.send", 0.5, int64(1), "<a>&\"\\\n")
	f.Add("\xff\u2028", "", math.SmallestNonzeroFloat64, int64(-1), "\x00")
	f.Add("", "x", 1e21, int64(1<<62), "🙂")
	f.Fuzz(func(t *testing.T, agent, tool string, num float64, n int64, text string) {
		if math.IsNaN(num) || math.IsInf(num, 0) {
			return
		}
		r := &Record{
			Type: TypeDecision, Time: time.Unix(0, n).UTC(), Agent: &Agent{ID: agent},
			Tool: tool, Args: map[string]any{text: num, agent: []any{text, n}, "k": map[string]any{tool: text}},
			Inputs: []Input{{Source: tool, Text: text}}, Content: &Content{InjectionScore: num},
			Reasons:   []Reason{{RuleID: text, Effect: "deny", Tags: map[string]string{text: agent}}},
			LatencyNS: n,
		}
		if _, err := json.Marshal(r); err != nil {
			return // out-of-range time etc.: covered by the rejection test
		}
		sameAsEncodingJSON(t, r)
		chainedSameAsEncodingJSON(t, r, "replica-1", uint64(n)&(1<<53-1)+1, text) // chain ids are never empty
	})
}

// chainedSameAsEncodingJSON checks the writer's splice of chain fields into
// a prepared body against encoding/json of the whole chained record.
func chainedSameAsEncodingJSON(t testing.TB, r *Record, chain string, seq uint64, prev string) {
	t.Helper()
	e := newEncoder()
	if _, err := e.prepare(r); err != nil {
		t.Fatal(err)
	}
	got := e.appendChained(nil, chain, seq, prev)
	c := *r
	c.ChainID, c.Seq, c.PrevHash = chain, seq, prev
	if want := oracle(t, &c); !bytes.Equal(got, want) {
		t.Fatalf("chained body differs from encoding/json\n got: %s\nwant: %s", got, want)
	}
}

func TestChainedBodyMatchesEncodingJSON(t *testing.T) {
	tests := []struct {
		name, chain string
		seq         uint64
		prev        string
	}{
		{"first record", "host-1", 1, ""},
		{"linked record", "pod-a.b_c", 1 << 40, hashHex([]byte("prev"))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range []*Record{{}, decisionRecord(3, "a", "DENY"), {Type: TypeOutcome, Outcome: &Outcome{Status: "ok"}}} {
				chainedSameAsEncodingJSON(t, r, tc.chain, tc.seq, tc.prev)
			}
		})
	}
}

package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"testing"
)

// TestDigestMatchesMarshal pins Digest to its documented definition: the
// SHA-256 of encoding/json.Marshal's bytes.
func TestDigestMatchesMarshal(t *testing.T) {
	for _, v := range []any{
		nil, "", "Thanks", "<b>&amp;</b>", "line\u2028sep", "bad \xff utf8", "quote\"back\\slash\n",
		true, 0.0, 1e21, 1e-7, -3.25, math.NaN(), 42, int64(-7),
		[]any{"a", 1.5, nil, map[string]any{"z": 1.0, "a": "<x>"}},
		map[string]any{"to": []any{"alice@customer.com"}, "b": map[string]any{}, "é": "ü"},
	} {
		b, _ := json.Marshal(v)
		sum := sha256.Sum256(b)
		want := "sha256:" + hex.EncodeToString(sum[:])
		if got := Digest(v); got != want {
			t.Errorf("Digest(%#v) = %s, want %s (of %s)", v, got, want, b)
		}
	}
}

package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// Digest is what a redacted value becomes in the trail: "sha256:" and the
// lowercase hex SHA-256 of the value's JSON exactly as encoding/json.Marshal
// writes it (sorted keys, HTML characters escaped), so equal values
// correlate across records, versions and verifiers in other languages.
// The canonical encoder produces those bytes without reflection; only a
// value holding <, > or & (escaped by Marshal, not by the trail) or one it
// cannot encode takes encoding/json itself.
func Digest(v any) string {
	var b []byte
	if s, ok := v.(string); ok { // the usual redacted value; no heap buffer
		var buf [256]byte
		b = appendJSONString(buf[:0], s)
	} else {
		w := jsonBuf{}
		w.appendAny(v)
		if b = w.b; w.err != nil {
			b = nil
		}
	}
	if b == nil || bytes.ContainsAny(b, "<>&") {
		b, _ = json.Marshal(v)
	}
	sum := sha256.Sum256(b)
	out := make([]byte, 0, len("sha256:")+2*len(sum))
	out = append(out, "sha256:"...)
	return string(hex.AppendEncode(out, sum[:]))
}

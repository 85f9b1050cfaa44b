package inject

import (
	"encoding/base64"
	"encoding/hex"
	"unicode/utf8"
)

// Encoded-run limits: runs shorter than minEncodedRun cannot hold an
// instruction worth decoding; at most maxDecodedTotal bytes are decoded per
// scan so the work stays linear and bounded.
const (
	minEncodedRun   = 24
	maxEncodedRun   = 1 << 16
	maxDecodedTotal = 1 << 16
)

var b64Class [256]uint8 // 1 = standard alphabet, 2 = URL-safe extra, 3 = padding

func init() {
	for c := 'A'; c <= 'Z'; c++ {
		b64Class[c] = 1
	}
	for c := 'a'; c <= 'z'; c++ {
		b64Class[c] = 1
	}
	for c := '0'; c <= '9'; c++ {
		b64Class[c] = 1
	}
	b64Class['+'], b64Class['/'] = 1, 1
	b64Class['-'], b64Class['_'] = 2, 2
	b64Class['='] = 3
}

// DecodeCandidates finds runs of base64 (standard or URL-safe) or hex in
// raw that decode to readable text and calls fn with each decoded text. buf
// is scratch space, returned grown for reuse.
func DecodeCandidates(raw string, buf []byte, fn func(decoded []byte)) []byte {
	total := 0
	for i := 0; i < len(raw) && total < maxDecodedTotal; {
		st, en, ok := nextRun(raw, i)
		if !ok {
			break
		}
		i = en
		if en-st < minEncodedRun {
			continue
		}
		dec, ok := decodeRun(raw[st:en], &buf)
		if !ok || !readable(dec) {
			continue
		}
		total += len(dec)
		fn(dec)
	}
	return buf
}

// nextRun returns the next run [st, en) of base64-alphabet bytes (at most
// maxEncodedRun, leading padding skipped) that starts at or after i and
// could be minEncodedRun long; ok is false when none is left.
func nextRun(raw string, i int) (st, en int, ok bool) {
	// a run of minEncodedRun bytes starting in [i, i+minEncodedRun)
	// covers i+minEncodedRun-1: while that byte is not base64, skip past it
	p := i + minEncodedRun - 1
	for p < len(raw) && b64Class[raw[p]] == 0 {
		i = p + 1
		p = i + minEncodedRun - 1
	}
	if p >= len(raw) {
		return 0, 0, false
	}
	for p > i && b64Class[raw[p-1]] != 0 {
		p--
	}
	st = p
	for st < len(raw) && b64Class[raw[st]] == 3 {
		st++
	}
	if st >= len(raw) {
		return 0, 0, false
	}
	en = st + 1
	for en < len(raw) && b64Class[raw[en]] != 0 && en-st < maxEncodedRun {
		en++
	}
	return st, en, true
}

// decodeRun decodes run as hex (all hex digits, some decimal, even length)
// or base64 (both letter cases; one-case words and identifiers are not
// base64 text) into *buf.
func decodeRun(run string, buf *[]byte) ([]byte, bool) {
	allHex, upper, lower, digit := true, false, false, false
	for k := 0; k < len(run); k++ {
		c := run[k]
		switch {
		case c >= 'A' && c <= 'Z':
			upper = true
			allHex = allHex && c <= 'F'
		case c >= 'a' && c <= 'z':
			lower = true
			allHex = allHex && c <= 'f'
		case c >= '0' && c <= '9':
			digit = true
		default:
			allHex = false
		}
	}
	switch {
	case allHex && digit && len(run)%2 == 0:
		*buf = grow(*buf, len(run)/2)
		n, err := hex.Decode(*buf, []byte(run))
		return (*buf)[:n], err == nil
	case upper && lower:
		dec, err := decodeB64(run, buf)
		return dec, err == nil
	}
	return nil, false
}

func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

func decodeB64(run string, buf *[]byte) ([]byte, error) {
	// trim padding, decode raw (unpadded) with the matching alphabet
	for len(run) > 0 && run[len(run)-1] == '=' {
		run = run[:len(run)-1]
	}
	enc := base64.RawStdEncoding
	for k := 0; k < len(run); k++ {
		if run[k] == '-' || run[k] == '_' {
			enc = base64.RawURLEncoding
			break
		}
	}
	if len(run)%4 == 1 {
		run = run[:len(run)-1]
	}
	b := grow(*buf, enc.DecodedLen(len(run)))
	*buf = b
	n, err := enc.Decode(b, []byte(run))
	return b[:n], err
}

// readable reports whether b looks like natural-language text: valid
// UTF-8, almost no control bytes, mostly letters, and several words.
func readable(b []byte) bool {
	if len(b) < 12 || !utf8.Valid(b) {
		return false
	}
	letters, spaces, bad := 0, 0, 0
	for _, c := range b {
		switch {
		case c == ' ':
			spaces++
		case c == '\n' || c == '\t' || c == '\r':
		case c < 0x20 || c == 0x7f:
			bad++
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= 0x80:
			letters++
		}
	}
	return bad == 0 && spaces >= 2 && letters*2 >= len(b)
}

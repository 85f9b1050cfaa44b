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
		// a run of minEncodedRun bytes starting in [i, i+minEncodedRun)
		// covers i+minEncodedRun-1: when that byte is not base64, skip
		if p := i + minEncodedRun - 1; p >= len(raw) {
			break
		} else if b64Class[raw[p]] == 0 {
			i = p + 1
			continue
		} else {
			for p > i && b64Class[raw[p-1]] != 0 {
				p--
			}
			i = p
		}
		for i < len(raw) && b64Class[raw[i]] == 3 {
			i++
		}
		if i >= len(raw) {
			break
		}
		j := i + 1
		for j < len(raw) && b64Class[raw[j]] != 0 && j-i < maxEncodedRun {
			j++
		}
		if j-i < minEncodedRun {
			i = j
			continue
		}
		allHex, upper, lower, digit := true, false, false, false
		for k := i; k < j; k++ {
			c := raw[k]
			switch {
			case c >= 'A' && c <= 'Z':
				upper = true
				if c > 'F' {
					allHex = false
				}
			case c >= 'a' && c <= 'z':
				lower = true
				if c > 'f' {
					allHex = false
				}
			case c >= '0' && c <= '9':
				digit = true
			default:
				allHex = false
			}
		}
		run := raw[i:j]
		i = j
		if len(run) < minEncodedRun {
			continue
		}
		var dec []byte
		var err error
		switch {
		case allHex && digit && len(run)%2 == 0:
			buf = grow(buf, len(run)/2)
			var n int
			n, err = hex.Decode(buf, []byte(run))
			dec = buf[:n]
		case upper && lower:
			dec, err = decodeB64(run, &buf)
		default:
			continue // one-case words and identifiers are not base64 text
		}
		if err != nil || !readable(dec) {
			continue
		}
		total += len(dec)
		fn(dec)
	}
	return buf
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

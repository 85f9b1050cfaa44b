package content

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/agentpdp/agentpdp/internal/swar"
)

// PII kinds reported in PIIMatch.Kind.
const (
	KindEmail       = "email"
	KindPhone       = "phone"
	KindCreditCard  = "credit_card"
	KindIBAN        = "iban"
	KindUSSSN       = "us_ssn"
	KindIP          = "ip"
	KindAPIKey      = "api_key"
	KindAWSKey      = "aws_key"
	KindGitHubToken = "github_token"
	KindGitLabToken = "gitlab_token"
	KindSlackToken  = "slack_token"
	KindJWT         = "jwt"
	KindPrivateKey  = "private_key"
)

// kindPriority decides which match survives when two overlap: specific
// secrets first, then checksummed numbers, then the rest.
var kindPriority = map[string]int{
	KindPrivateKey:  13,
	KindAWSKey:      12,
	KindGitHubToken: 12,
	KindGitLabToken: 12,
	KindSlackToken:  12,
	KindJWT:         11,
	KindIBAN:        10,
	KindCreditCard:  9,
	KindUSSSN:       8,
	KindEmail:       7,
	KindIP:          6,
	KindPhone:       5,
	KindAPIKey:      4,
}

var scratchPool = sync.Pool{New: func() any { return new([64]PIIMatch) }}

// detectPII appends the PII found in s to dst, sorted by start, without
// overlaps. Every scanner is a single forward pass with bounded look-around,
// so the whole is linear in len(s).
func detectPII(s string, dst []PIIMatch) []PIIMatch {
	// The scanners collect into a pooled buffer (while it lasts), so that
	// only the result is allocated. Not one on the stack: that frame made
	// the handler goroutines grpc-go starts under load outgrow their first
	// stack here, and copying a stack cost more than the scan.
	buf := scratchPool.Get().(*[64]PIIMatch)
	defer scratchPool.Put(buf)
	ms := scanPrivateKeys(s, buf[:0])
	ms = scanWordRuns(s, ms)
	ms = scanEmails(s, ms)
	ms = scanNumbers(s, ms)
	ms = scanIPv6(s, ms)
	return append(dst, resolveOverlaps(ms, 0)...)
}

// Byte classes, looked up in byteClass.
const (
	clDigit uint16 = 1 << iota
	clUpper
	clLower
	clUnder    // '_'
	clKey      // may appear in a generic key: word bytes and - + / = .
	clHex      // 0-9 a-f A-F
	clSecret   // first byte of a prefixed secret: A g x e
	clNumStart // digit, '+', '('
	clLocal    // may appear in an e-mail local part: letters, digits and . _ % + -
)

var byteClass = func() (t [256]uint16) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		var k uint16
		switch {
		case b >= '0' && b <= '9':
			k = clDigit | clKey | clHex | clNumStart
		case b >= 'A' && b <= 'Z':
			k = clUpper | clKey
			if b <= 'F' {
				k |= clHex
			}
		case b >= 'a' && b <= 'z':
			k = clLower | clKey
			if b <= 'f' {
				k |= clHex
			}
		case b == '_':
			k = clUnder | clKey
		case b == '-' || b == '/' || b == '=' || b == '.':
			k = clKey
		case b == '+':
			k = clKey | clNumStart
		case b == '(':
			k = clNumStart
		}
		if b == 'A' || b == 'g' || b == 'x' || b == 'e' {
			k |= clSecret
		}
		if k&(clDigit|clUpper|clLower) != 0 || strings.IndexByte("._%+-", b) >= 0 {
			k |= clLocal
		}
		t[c] = k
	}
	return t
}()

func isDigit(c byte) bool { return byteClass[c]&clDigit != 0 }
func isUpper(c byte) bool { return byteClass[c]&clUpper != 0 }
func isLower(c byte) bool { return byteClass[c]&clLower != 0 }
func isAlnum(c byte) bool { return byteClass[c]&(clDigit|clUpper|clLower) != 0 }
func isWord(c byte) bool  { return byteClass[c]&(clDigit|clUpper|clLower|clUnder) != 0 }
func isHex(c byte) bool   { return byteClass[c]&clHex != 0 }

// ---- private keys ----------------------------------------------------------

func scanPrivateKeys(s string, dst []PIIMatch) []PIIMatch {
	const begin = "-----BEGIN "
	for off := 0; off < len(s); {
		i := strings.Index(s[off:], begin)
		if i < 0 {
			break
		}
		i += off
		off = i + len(begin)
		// the label runs to the next "-----" on the same line
		lab := s[off:min(len(s), off+64)]
		e := strings.Index(lab, "-----")
		if e < 0 || strings.IndexByte(lab[:e], '\n') >= 0 || !strings.HasSuffix(lab[:e], "PRIVATE KEY") {
			continue
		}
		label := lab[:e]
		bodyStart := off + e + 5
		end := len(s)
		endMarker := "-----END " + label + "-----"
		if j := strings.Index(s[bodyStart:], endMarker); j >= 0 {
			end = bodyStart + j + len(endMarker)
		} else {
			// no END line: the key runs while the text looks like base64
			end = bodyStart
			for end < len(s) && (b64Byte(s[end]) || s[end] == '\n' || s[end] == '\r' || s[end] == ' ' || s[end] == ':' || s[end] == '-' || s[end] == ',') {
				end++
			}
		}
		dst = append(dst, PIIMatch{Kind: KindPrivateKey, Start: i, End: end})
		off = end
	}
	return dst
}

func b64Byte(c byte) bool { return isAlnum(c) || c == '+' || c == '/' || c == '=' }

// ---- prefixed tokens: AWS, GitHub, GitLab, Slack, JWT ----------------------

var awsPrefixes = []string{"AKIA", "ASIA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "ABIA", "ACCA"}

// prefixedSecretAt matches a prefixed token (AWS, GitHub, GitLab, Slack,
// JWT) starting at i, which must not follow a word byte or '-'.
func prefixedSecretAt(s string, i int) (string, int, bool) {
	if i+4 > len(s) || (i > 0 && (isWord(s[i-1]) || s[i-1] == '-')) {
		return "", 0, false
	}
	switch s[i] {
	case 'A':
		if end, ok := matchAWS(s, i); ok {
			return KindAWSKey, end, true
		}
	case 'g':
		if end, ok := matchGitHub(s, i); ok {
			return KindGitHubToken, end, true
		}
		if end, ok := matchRun(s, i, "glpat-", 20, tokenByteDash); ok {
			return KindGitLabToken, end, true
		}
	case 'x':
		if len(s) >= i+5 && s[i+1] == 'o' && s[i+2] == 'x' && strings.IndexByte("baprs", s[i+3]) >= 0 && s[i+4] == '-' {
			if end, ok := matchRun(s, i, s[i:i+5], 10, tokenByteDash); ok {
				return KindSlackToken, end, true
			}
		}
	case 'e':
		if end, ok := matchJWT(s, i); ok {
			return KindJWT, end, true
		}
	}
	return "", 0, false
}

// scanWordRuns makes one pass over the runs of key bytes (letters, digits
// and _ - + / = .): prefixed secrets and IBANs are tried where a word
// starts inside a run, generic high-entropy keys on the run as a whole.
func scanWordRuns(s string, dst []PIIMatch) []PIIMatch {
	const word = clDigit | clUpper | clLower | clUnder
	for i := 0; i < len(s); {
		if byteClass[s[i]]&clKey == 0 {
			i++
			continue
		}
		start, found, prevWord := i, false, false
		p := i
		for p < len(s) {
			c := byteClass[s[p]]
			if c&clKey == 0 {
				break
			}
			if !prevWord && c&(clSecret|clUpper) != 0 {
				// a word starts here: try the prefixed secrets and IBAN
				if kind, end, ok := prefixedSecretAt(s, p); ok {
					dst = append(dst, PIIMatch{Kind: kind, Start: p, End: end})
					found, p, prevWord = true, end, true
					continue
				}
				if end, ok := ibanAt(s, p); ok {
					dst = append(dst, PIIMatch{Kind: KindIBAN, Start: p, End: end})
					found, p, prevWord = true, end, true
					continue
				}
			}
			prevWord = c&word != 0
			p++
		}
		if !found && p-start >= minKeyLen {
			dst = genericKeyRun(s, start, p, dst)
		}
		i = max(p, i+1)
	}
	return dst
}

func tokenByte(c byte) bool     { return isWord(c) }
func tokenByteDash(c byte) bool { return isWord(c) || c == '-' }

// matchRun matches prefix followed by at least minLen bytes accepted by ok,
// ending at a boundary.
func matchRun(s string, i int, prefix string, minLen int, ok func(byte) bool) (int, bool) {
	if !strings.HasPrefix(s[i:], prefix) {
		return 0, false
	}
	j := i + len(prefix)
	for j < len(s) && ok(s[j]) && j-i < 512 {
		j++
	}
	if j-i-len(prefix) < minLen || (j < len(s) && ok(s[j])) {
		return 0, false
	}
	return j, true
}

func matchAWS(s string, i int) (int, bool) {
	if len(s) < i+20 {
		return 0, false
	}
	p := s[i : i+4]
	found := false
	for _, a := range awsPrefixes {
		if p == a {
			found = true
			break
		}
	}
	if !found {
		return 0, false
	}
	for k := i + 4; k < i+20; k++ {
		c := s[k]
		if !(isUpper(c) || c >= '2' && c <= '7') {
			return 0, false
		}
	}
	if len(s) > i+20 && isWord(s[i+20]) {
		return 0, false
	}
	return i + 20, true
}

func matchGitHub(s string, i int) (int, bool) {
	if strings.HasPrefix(s[i:], "github_pat_") {
		return matchRun(s, i, "github_pat_", 50, tokenByte)
	}
	if len(s) < i+4 || s[i+1] != 'h' || s[i+3] != '_' || strings.IndexByte("pousr", s[i+2]) < 0 {
		return 0, false
	}
	j := i + 4
	for j < len(s) && isAlnum(s[j]) && j-i < 300 {
		j++
	}
	if j-i-4 < 30 || (j < len(s) && isWord(s[j])) {
		return 0, false
	}
	return j, true
}

func b64URLByte(c byte) bool { return isAlnum(c) || c == '-' || c == '_' }

// matchJWT matches three base64url parts separated by dots whose first part
// decodes to a JSON object with an "alg" member.
func matchJWT(s string, i int) (int, bool) {
	if !strings.HasPrefix(s[i:], "eyJ") {
		return 0, false
	}
	var parts [3]int // end of each part
	j := i
	for p := 0; p < 3; p++ {
		st := j
		for j < len(s) && b64URLByte(s[j]) && j-i < 8192 {
			j++
		}
		minLen := 10
		if p == 2 {
			minLen = 0 // unsigned tokens have an empty signature
		}
		if j-st < minLen {
			return 0, false
		}
		parts[p] = j
		if p < 2 {
			if j >= len(s) || s[j] != '.' {
				return 0, false
			}
			j++
		}
	}
	if j < len(s) && (b64URLByte(s[j]) || s[j] == '.') {
		return 0, false
	}
	hdr, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s[i:parts[0]], "="))
	if err != nil || !json.Valid(hdr) {
		return 0, false
	}
	var h map[string]any
	if json.Unmarshal(hdr, &h) != nil {
		return 0, false
	}
	if _, ok := h["alg"]; !ok {
		return 0, false
	}
	return parts[2], true
}

// ---- e-mail ----------------------------------------------------------------

func emailLocal(c byte) bool { return byteClass[c]&clLocal != 0 }

func scanEmails(s string, dst []PIIMatch) []PIIMatch {
	lastEnd := 0
	for off := 0; off < len(s); {
		at := strings.IndexByte(s[off:], '@')
		if at < 0 {
			break
		}
		at += off
		off = at + 1
		st := at
		for st > lastEnd && at-st < 64 && emailLocal(s[st-1]) {
			st--
		}
		for st < at && (s[st] == '.' || s[st] == '-') {
			st++
		}
		if st == at || s[at-1] == '.' {
			continue
		}
		// domain labels
		j := at + 1
		dots, labelLen, lastDot := 0, 0, -1
		for j < len(s) && j-at <= 255 {
			c := s[j]
			if isAlnum(c) || c == '-' {
				labelLen++
			} else if c == '.' && labelLen > 0 && j+1 < len(s) && isAlnum(s[j+1]) {
				dots++
				lastDot = j
				labelLen = 0
			} else {
				break
			}
			if labelLen > 63 {
				break
			}
			j++
		}
		if dots == 0 || labelLen == 0 {
			continue
		}
		tld := s[lastDot+1 : j]
		if len(tld) < 2 || !allLetters(tld) || s[j-1] == '-' {
			continue
		}
		dst = append(dst, PIIMatch{Kind: KindEmail, Start: st, End: j})
		lastEnd = j
		off = j
	}
	return dst
}

func allLetters(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isUpper(s[i]) && !isLower(s[i]) {
			return false
		}
	}
	return true
}

// ---- numbers: IPv4, SSN, payment cards, phones -----------------------------

// numCand is a run of digit groups separated by single separators.
type numCand struct {
	start, end int
	plus       bool     // starts with '+'
	paren      bool     // has a parenthesised group
	groups     [12]int  // start offset of each digit group
	glen       [12]int  // length of each digit group
	seps       [12]byte // separator after each group (0 for the last)
	n          int      // number of groups
	digits     int
}

func scanNumbers(s string, dst []PIIMatch) []PIIMatch {
	for i := 0; i < len(s); {
		if i = nextNumStart(s, i); i == len(s) {
			break
		}
		if i > 0 {
			p := s[i-1]
			if isWord(p) || p == '.' || p == '-' || p == '/' || p == '+' || p == '@' || p == ':' || p == '#' || p == '$' {
				// inside a longer token: skip the rest of it
				for i < len(s) && (isWord(s[i]) || s[i] == '.' || s[i] == '-') {
					i++
				}
				if i < len(s) && !isWord(s[i]) {
					i++
				}
				continue
			}
		}
		var nc numCand
		end, ok := readNumber(s, i, &nc)
		if !ok {
			i = max(end, i+1)
			continue
		}
		dst = classifyNumber(s, &nc, dst)
		i = end
	}
	return dst
}

// nextNumStart returns the index of the first byte at or after i that may
// start a number (a digit, '+' or '('), or len(s); eight bytes at a time,
// as most text has none.
func nextNumStart(s string, i int) int {
	for ; i+8 <= len(s); i += 8 {
		x := swar.Load(s, i)
		if m := swar.InRange(x, '0', '9') | swar.Equal(x, '+') | swar.Equal(x, '('); m != 0 {
			return i + swar.First(m)
		}
	}
	for i < len(s) && byteClass[s[i]]&clNumStart == 0 {
		i++
	}
	return i
}

// readNumber reads a number candidate at i. It returns where scanning
// should continue and whether a candidate with at least one group was read.
func readNumber(s string, i int, nc *numCand) (int, bool) {
	j := i
	nc.start = i
	if s[j] == '+' {
		nc.plus = true
		j++
		if j >= len(s) || !isDigit(s[j]) {
			return j, false
		}
	}
	for j < len(s) {
		open := false
		if s[j] == '(' {
			if nc.paren || j+1 >= len(s) || !isDigit(s[j+1]) {
				break
			}
			open = true
			nc.paren = true
			j++
		}
		if j >= len(s) || !isDigit(s[j]) {
			break
		}
		st := j
		for j < len(s) && isDigit(s[j]) && j-st < 40 {
			j++
		}
		if nc.n == len(nc.groups) {
			return j, false
		}
		nc.groups[nc.n], nc.glen[nc.n] = st, j-st
		nc.digits += j - st
		nc.n++
		if open {
			if j >= len(s) || s[j] != ')' {
				return j, false
			}
			j++
			nc.seps[nc.n-1] = ')'
			if j < len(s) && s[j] == ' ' && j+1 < len(s) && isDigit(s[j+1]) {
				j++
			}
			continue
		}
		if j+1 < len(s) && (s[j] == ' ' || s[j] == '-' || s[j] == '.' || s[j] == '/') && (isDigit(s[j+1]) || s[j+1] == '(') {
			nc.seps[nc.n-1] = s[j]
			j++
			continue
		}
		break
	}
	nc.end = j
	if nc.n == 0 {
		return j, false
	}
	if j < len(s) && (isWord(s[j]) || s[j] == '@') {
		// glued to letters: an identifier, not a number
		for j < len(s) && (isWord(s[j]) || s[j] == '.' || s[j] == '-') {
			j++
		}
		return j, false
	}
	if j+1 < len(s) && s[j] == '.' && isDigit(s[j+1]) {
		return j + 1, false
	}
	return j, true
}

func classifyNumber(s string, nc *numCand, dst []PIIMatch) []PIIMatch {
	if nc.digits < 8 && nc.n < 4 {
		// Most numbers in text ("330", "12.5", "2023"): too short for a
		// phone (8 digits and more), an SSN (9), a card (13), and too few
		// groups for an IPv4 address (4).
		return dst
	}
	// try the whole run, then shorter runs of whole groups
	for lo := 0; lo < nc.n; lo++ {
		for hi := nc.n; hi > lo; hi-- {
			if kind, ok := classifyGroups(s, nc, lo, hi); ok {
				st := nc.groups[lo]
				if lo == 0 {
					st = nc.start
				} else if s[st-1] == '(' {
					st--
				}
				en := nc.groups[hi-1] + nc.glen[hi-1]
				if en < len(s) && s[en] == ')' {
					en++
				}
				dst = append(dst, PIIMatch{Kind: kind, Start: st, End: en})
				if hi < nc.n {
					// the rest of the run may hold another number
					rest := *nc
					rest = shiftGroups(rest, hi)
					return classifyNumber(s, &rest, dst)
				}
				return dst
			}
			if nc.n > 6 && hi-lo < nc.n-2 {
				break // long runs: only trim a little
			}
		}
	}
	return dst
}

func shiftGroups(nc numCand, from int) numCand {
	var out numCand
	out.start = nc.groups[from]
	out.end = nc.end
	for k := from; k < nc.n; k++ {
		out.groups[out.n], out.glen[out.n], out.seps[out.n] = nc.groups[k], nc.glen[k], nc.seps[k]
		out.digits += nc.glen[k]
		out.n++
	}
	return out
}

// groupShape is the outline of groups [lo, hi) of a number candidate.
type groupShape struct {
	lo, hi, n, digits int
	sep               byte // the first separator between groups; 0 for one group
	sameSep           bool // every separator is sep
	plus, paren       bool // a leading '+'; a parenthesised group
	first             byte // the first digit
}

func shapeOf(s string, nc *numCand, lo, hi int) groupShape {
	g := groupShape{lo: lo, hi: hi, n: hi - lo, sameSep: true, plus: nc.plus && lo == 0, first: s[nc.groups[lo]]}
	for k := lo; k < hi; k++ {
		g.digits += nc.glen[k]
		if nc.seps[k] == ')' {
			g.paren = true
		}
		if k == hi-1 {
			continue
		}
		if g.sep == 0 {
			g.sep = nc.seps[k]
		} else if nc.seps[k] != g.sep {
			g.sameSep = false
		}
	}
	return g
}

// classifyGroups decides what groups [lo, hi) of nc are, if anything.
func classifyGroups(s string, nc *numCand, lo, hi int) (string, bool) {
	g := shapeOf(s, nc, lo, hi)
	if g.sep == '.' && !g.plus && !g.paren {
		if g.n == 4 && g.sameSep {
			return ipv4Groups(s, nc, g)
		}
		if g.n <= 3 {
			return "", false // decimals, versions, dates
		}
	}
	switch {
	case ssnGroups(s, nc, g):
		return KindUSSSN, true
	case cardGroups(s, nc, g):
		return KindCreditCard, true
	case phoneGroups(s, nc, g):
		return KindPhone, true
	}
	return "", false
}

func ipv4Groups(s string, nc *numCand, g groupShape) (string, bool) {
	st, en := nc.groups[g.lo], nc.groups[g.hi-1]+nc.glen[g.hi-1]
	if a, err := netip.ParseAddr(s[st:en]); err == nil && a.Is4() {
		return KindIP, true
	}
	return "", false
}

// ssnGroups: 3-2-4 with dashes or spaces, or a bare 9 digits right after
// an SSN label, in the valid ranges.
func ssnGroups(s string, nc *numCand, g groupShape) bool {
	if g.plus {
		return false
	}
	lo := g.lo
	if g.n == 3 && g.sameSep && (g.sep == '-' || g.sep == ' ') && nc.glen[lo] == 3 && nc.glen[lo+1] == 2 && nc.glen[lo+2] == 4 {
		return validSSN(s[nc.groups[lo]:nc.groups[lo]+3], s[nc.groups[lo+1]:nc.groups[lo+1]+2], s[nc.groups[lo+2]:nc.groups[lo+2]+4])
	}
	if g.n == 1 && g.digits == 9 && ssnLabelBefore(s, nc.groups[lo]) {
		d := s[nc.groups[lo] : nc.groups[lo]+9]
		return validSSN(d[:3], d[3:5], d[5:])
	}
	return false
}

// cardGroups: 13-19 digits starting 2-6, ungrouped or in groups of 3-6
// with one kind of separator, Luhn-valid and not one repeated digit.
func cardGroups(s string, nc *numCand, g groupShape) bool {
	if g.digits < 13 || g.digits > 19 || g.plus || g.paren || !g.sameSep || g.first < '2' || g.first > '6' {
		return false
	}
	if g.sep != 0 && g.sep != ' ' && g.sep != '-' {
		return false
	}
	for k := g.lo; k < g.hi && g.n > 1; k++ {
		if nc.glen[k] < 3 || nc.glen[k] > 6 {
			return false
		}
	}
	return luhn(s, nc, g.lo, g.hi) && !allSame(s, nc, g.lo, g.hi)
}

// phoneGroups: E.164 after a '+', NANP, or a national format with a trunk
// prefix 0 (00 for international).
func phoneGroups(s string, nc *numCand, g groupShape) bool {
	if g.plus {
		return g.digits >= 8 && g.digits <= 15 && g.first != '0'
	}
	if g.n < 2 || (g.sep == '.' && !g.sameSep) {
		return false
	}
	lo, hi := g.lo, g.hi
	d := groupsDigits(s, nc, lo, hi)
	if len(d) == 11 && d[0] == '1' {
		d = d[1:]
	}
	if len(d) == 10 && d[0] >= '2' && d[3] >= '2' && (g.n == 3 || g.n == 4 || g.paren) && nc.glen[hi-1] == 4 {
		return true // NANP: [1] NXX NXX XXXX
	}
	ssnShape := g.n == 3 && nc.glen[lo] == 3 && nc.glen[lo+1] == 2 && nc.glen[lo+2] == 4
	second := s[nc.groups[lo]+1]
	if nc.glen[lo] == 1 {
		second = s[nc.groups[lo+1]]
	}
	trunkOK := second != '0' || (g.digits >= 11 && len(d) > 2 && d[2] != '0') // 0X... national, 00CC... international
	if g.first != '0' || !trunkOK || ssnShape || g.digits < 9 || g.digits > 15 || !(g.sameSep || g.paren) || g.sep == '/' {
		return false
	}
	for k := lo; k < hi; k++ {
		if nc.glen[k] < 2 {
			return false
		}
	}
	return true
}

func groupsDigits(s string, nc *numCand, lo, hi int) []byte {
	var b [40]byte
	n := 0
	for k := lo; k < hi; k++ {
		for j := 0; j < nc.glen[k] && n < len(b); j++ {
			b[n] = s[nc.groups[k]+j]
			n++
		}
	}
	return b[:n]
}

func luhn(s string, nc *numCand, lo, hi int) bool {
	sum := 0
	double := false
	for k := hi - 1; k >= lo; k-- {
		for j := nc.glen[k] - 1; j >= 0; j-- {
			d := int(s[nc.groups[k]+j] - '0')
			if double {
				d *= 2
				if d > 9 {
					d -= 9
				}
			}
			sum += d
			double = !double
		}
	}
	return sum%10 == 0
}

func allSame(s string, nc *numCand, lo, hi int) bool {
	c := s[nc.groups[lo]]
	for k := lo; k < hi; k++ {
		for j := 0; j < nc.glen[k]; j++ {
			if s[nc.groups[k]+j] != c {
				return false
			}
		}
	}
	return true
}

// validSSN applies the Social Security Administration's rules: area not
// 000, 666 or 900-999; group not 00; serial not 0000.
func validSSN(area, group, serial string) bool {
	if area == "000" || area == "666" || area[0] == '9' {
		return false
	}
	return group != "00" && serial != "0000"
}

func ssnLabelBefore(s string, i int) bool {
	w := s[max(0, i-32):i]
	return containsFold(w, "ssn") || containsFold(w, "social security")
}

// containsFold reports whether s contains the lower-case ASCII word sub,
// ignoring ASCII case.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		ok := true
		for j := 0; j < len(sub); j++ {
			c := s[i+j]
			if isUpper(c) {
				c += 'a' - 'A'
			}
			if c != sub[j] {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// ---- IBAN ------------------------------------------------------------------

// ibanLength is the IBAN length of each country in the SWIFT IBAN registry.
var ibanLength = map[string]int{
	"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
	"BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
	"EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
	"GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
	"JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25,
	"MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18,
	"NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33,
	"SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
	"TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}

// ibanAt matches an IBAN starting at i: country code, check digits, then
// exactly the country's length of letters and digits, optionally grouped
// by four with single spaces, passing the mod-97 check.
func ibanAt(s string, i int) (int, bool) {
	if i+15 > len(s) || !isUpper(s[i]) || !isUpper(s[i+1]) || !isDigit(s[i+2]) || !isDigit(s[i+3]) {
		return 0, false
	}
	if i > 0 && isWord(s[i-1]) {
		return 0, false
	}
	want, ok := ibanLength[s[i:i+2]]
	if !ok {
		return 0, false
	}
	var buf [34]byte
	n, j := 0, i
	for j < len(s) && n < want {
		c := s[j]
		switch {
		case isUpper(c) || isDigit(c):
			buf[n] = c
		case isLower(c):
			buf[n] = c - ('a' - 'A')
		case c == ' ' && j+1 < len(s) && isAlnum(s[j+1]) && n%4 == 0:
			j++
			continue
		default:
			return 0, false
		}
		n++
		j++
	}
	if n != want || (j < len(s) && isWord(s[j])) || !ibanChecksum(buf[:n]) {
		return 0, false
	}
	return j, true
}

// ibanChecksum is the ISO 7064 mod-97-10 check: move the first four
// characters to the end, letters to 10..35, and the number mod 97 is 1.
func ibanChecksum(b []byte) bool {
	rem := 0
	add := func(c byte) {
		if isDigit(c) {
			rem = (rem*10 + int(c-'0')) % 97
		} else {
			rem = (rem*100 + int(c-'A') + 10) % 97
		}
	}
	for _, c := range b[4:] {
		add(c)
	}
	for _, c := range b[:4] {
		add(c)
	}
	return rem == 1
}

// ---- IPv6 ------------------------------------------------------------------

func scanIPv6(s string, dst []PIIMatch) []PIIMatch {
	lo := 0 // bytes before lo belong to an earlier candidate
	for off := 0; off < len(s); {
		k := strings.IndexByte(s[off:], ':')
		if k < 0 {
			break
		}
		k += off
		// expand around the colon over hex digits, colons and dots
		st := k
		for st > lo && k-st < 45 && (isHex(s[st-1]) || s[st-1] == ':' || s[st-1] == '.') {
			st--
		}
		en := k
		for en < len(s) && en-st < 45 && (isHex(s[en]) || s[en] == ':' || s[en] == '.') {
			en++
		}
		off = en + 1
		lo = en
		for st < en && s[st] == '.' {
			st++
		}
		for en > st && s[en-1] == '.' {
			en--
		}
		if (st > 0 && (isWord(s[st-1]) || s[st-1] == ':')) || (en < len(s) && (isWord(s[en]) || s[en] == ':')) {
			continue
		}
		cand := s[st:en]
		if strings.Count(cand, ":") < 2 || hexGroups(cand) < 2 {
			continue
		}
		if a, err := netip.ParseAddr(cand); err == nil && a.Is6() {
			dst = append(dst, PIIMatch{Kind: KindIP, Start: st, End: en})
		}
	}
	return dst
}

// hexGroups counts the colon-separated groups holding a digit or, when
// there are four or more groups, any hex group.
func hexGroups(c string) int {
	groups, withDigit := 0, 0
	for _, g := range strings.Split(c, ":") {
		if g == "" {
			continue
		}
		groups++
		if strings.IndexAny(g, "0123456789") >= 0 {
			withDigit++
		}
	}
	if groups >= 4 {
		return groups
	}
	return withDigit
}

// ---- generic high-entropy keys ---------------------------------------------

// keyWords are the words after which a high-entropy token is taken for a
// credential.
var keyWords = []string{"api_key", "apikey", "api-key", "api key", "secret", "token", "access_key",
	"access key", "password", "passwd", "pwd", "auth", "bearer", "credential", "private_key", "client_secret"}

const (
	minKeyLen     = 20
	minKeyEntropy = 3.5 // bits per character
	keyLookBack   = 48
)

func keyByte(c byte) bool { return byteClass[c]&clKey != 0 }

// genericKeyRun reports the run s[st:en] as an api_key when it is long,
// mixes character classes, has high entropy and follows (or contains) a
// key-like word.
func genericKeyRun(s string, st, en int, dst []PIIMatch) []PIIMatch {
	for en > st && (s[en-1] == '.' || s[en-1] == '-') {
		en--
	}
	if en-st < minKeyLen || en-st > 512 {
		return dst
	}
	tok := s[st:en]
	if !mixedClasses(tok) || entropy(tok) < minKeyEntropy {
		return dst
	}
	if keyWordBefore(s, st) || keyWordInside(tok) {
		// "api_key=VALUE": report the value only
		if eq := strings.IndexByte(tok, '='); eq > 0 && eq < len(tok)-minKeyLen/2 && keyWordInside(tok) {
			st += eq + 1
		}
		dst = append(dst, PIIMatch{Kind: KindAPIKey, Start: st, End: en})
	}
	return dst
}

func keyWordBefore(s string, i int) bool {
	w := s[max(0, i-keyLookBack):i]
	for _, k := range keyWords {
		if containsFold(w, k) {
			return true
		}
	}
	return false
}

// keyWordInside catches "api_key=...": the word and the value in one token.
func keyWordInside(tok string) bool {
	eq := strings.IndexAny(tok, "=")
	if eq <= 0 {
		return false
	}
	for _, k := range keyWords {
		if containsFold(tok[:eq], k) {
			return true
		}
	}
	return false
}

func mixedClasses(t string) bool {
	var d, l, u bool
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case isDigit(c):
			d = true
		case isLower(c):
			l = true
		case isUpper(c):
			u = true
		}
	}
	n := 0
	for _, b := range []bool{d, l, u} {
		if b {
			n++
		}
	}
	return n >= 2 && d
}

// entropy is the Shannon entropy of t in bits per byte.
func entropy(t string) float64 {
	var counts [256]int
	for i := 0; i < len(t); i++ {
		counts[t[i]]++
	}
	var h float64
	n := float64(len(t))
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}

// ---- overlaps and masking --------------------------------------------------

// resolveOverlaps sorts ms[from:] by start and drops matches that overlap a
// match of higher priority (or an equal-priority longer one).
func resolveOverlaps(ms []PIIMatch, from int) []PIIMatch {
	part := ms[from:]
	if len(part) < 2 {
		return ms
	}
	slices.SortStableFunc(part, func(a, b PIIMatch) int {
		if a.Start != b.Start {
			return cmp.Compare(a.Start, b.Start)
		}
		return cmp.Compare(b.End, a.End)
	})
	out := part[:0]
	for _, m := range part {
		if len(out) > 0 {
			last := &out[len(out)-1]
			if m.Start < last.End {
				if better(m, *last) {
					*last = m
				}
				continue
			}
		}
		out = append(out, m)
	}
	return ms[:from+len(out)]
}

func better(a, b PIIMatch) bool {
	pa, pb := kindPriority[a.Kind], kindPriority[b.Kind]
	if pa != pb {
		return pa > pb
	}
	return a.End-a.Start > b.End-b.Start
}

// maskLabel returns "[KIND]" for a kind.
func maskLabel(kind string) string {
	if l, ok := maskLabels[kind]; ok {
		return l
	}
	return "[" + strings.ToUpper(kind) + "]"
}

// maskLabels holds the labels of the kinds the detector reports, so masking
// does not build one per match.
var maskLabels = func() map[string]string {
	m := map[string]string{}
	for k := range kindPriority { // every kind
		m[k] = "[" + strings.ToUpper(k) + "]"
	}
	return m
}()

package inject

import (
	"encoding/binary"
	"slices"
	"unicode"
	"unicode/utf8"

	"github.com/agentpdp/agentpdp/internal/swar"
)

// Hidden counts the invisible characters Normalize removed. They are kept
// apart from the visible text because their presence is itself a signal.
type Hidden struct {
	ZeroWidth      int // U+200B, U+2060..U+2064, U+FEFF (not leading), U+180E
	ZeroWidthInLat int // zero-width characters (joiners included) between two ASCII letters
	BidiOverride   int // U+202D, U+202E (left-to-right and right-to-left override)
	BidiOther      int // U+200E, U+200F, U+061C, U+202A..U+202C, U+2066..U+2069
	Tags           int // Unicode tag characters U+E0000..U+E007F outside flag emoji
	VarSel         int // longest run of variation selectors
	// TagText holds the ASCII text spelled by tag characters (the
	// "ASCII smuggling" trick), at most maxTagText bytes.
	TagText []byte
}

const maxTagText = 4096

// asciiFold maps each ASCII byte to its normalised form: lower case, with
// control characters turned into spaces.
var asciiFold = buildASCIIFold()

// latinFold maps U+0080..U+024F to a lower-case ASCII string (diacritics
// dropped) or "" when the rune has no ASCII fold.
var latinFold = buildLatinFold()

// confusable maps Cyrillic and Greek letters that look like Latin ones
// (after lower-casing) to that Latin letter. Used only inside words that also
// contain Latin letters, so real Cyrillic and Greek text is left alone.
var confusable = map[rune]byte{
	'а': 'a', 'в': 'b', 'е': 'e', 'к': 'k', 'м': 'm', 'н': 'h', 'о': 'o', 'р': 'p',
	'с': 'c', 'т': 't', 'у': 'y', 'х': 'x', 'і': 'i', 'ј': 'j', 'ѕ': 's', 'ԁ': 'd',
	'һ': 'h', 'ԛ': 'q', 'ԝ': 'w', 'ӏ': 'l', 'ɡ': 'g', 'ɑ': 'a',
	'α': 'a', 'β': 'b', 'ε': 'e', 'η': 'n', 'ι': 'i', 'κ': 'k', 'ν': 'v', 'ο': 'o',
	'ρ': 'p', 'τ': 't', 'υ': 'u', 'χ': 'x', 'ω': 'w', 'ς': 's',
}

func buildASCIIFold() (asciiFold [128]byte) {
	for i := range asciiFold {
		b := byte(i)
		switch {
		case b >= 'A' && b <= 'Z':
			b += 'a' - 'A'
		case b == '\n' || b == '\r' || b == '\v' || b == '\f':
			b = '\n'
		case b < 0x20 || b == 0x7f:
			b = ' '
		}
		asciiFold[i] = b
	}
	return asciiFold
}

func buildLatinFold() (latinFold [0x250 - 0x80]string) {
	pairs := []struct{ from, to string }{
		{"ÀÁÂÃÄÅàáâãäåĀāĂăĄąǍǎǞǟǠǡǺǻȀȁȂȃȦȧ", "a"},
		{"ÆæǢǣǼǽ", "ae"},
		{"ÇçĆćĈĉĊċČč", "c"},
		{"ÐðĎďĐđ", "d"},
		{"ÈÉÊËèéêëĒēĔĕĖėĘęĚěȄȅȆȇȨȩ", "e"},
		{"ĜĝĞğĠġĢģǦǧǴǵ", "g"},
		{"ĤĥĦħȞȟ", "h"},
		{"ÌÍÎÏìíîïĨĩĪīĬĭĮįİıǏǐȈȉȊȋ", "i"},
		{"Ĳĳ", "ij"},
		{"Ĵĵǰ", "j"},
		{"Ķķĸ", "k"},
		{"ĹĺĻļĽľĿŀŁł", "l"},
		{"ÑñŃńŅņŇňŉŊŋǸǹ", "n"},
		{"ÒÓÔÕÖØòóôõöøŌōŎŏŐőǑǒǪǫȌȍȎȏȪȫȬȭȮȯȰȱ", "o"},
		{"Œœ", "oe"},
		{"ŔŕŖŗŘřȐȑȒȓ", "r"},
		{"ŚśŜŝŞşŠšȘș", "s"},
		{"ß", "ss"},
		{"ŢţŤťŦŧȚț", "t"},
		{"Þþ", "th"},
		{"ÙÚÛÜùúûüŨũŪūŬŭŮůŰűŲųǓǔǕǖǗǘǙǚǛǜȔȕȖȗ", "u"},
		{"Ŵŵ", "w"},
		{"ÝýÿŶŷŸȲȳ", "y"},
		{"ŹźŻżŽž", "z"},
		{"ſ", "s"},
		{"ƒ", "f"},
	}
	for _, p := range pairs {
		for _, r := range p.from {
			if r >= 0x80 && r < 0x250 {
				latinFold[r-0x80] = p.to
			}
		}
	}
	return latinFold
}

// IsInvisible reports whether r is stripped by Normalize as an invisible
// format character.
func IsInvisible(r rune) bool {
	switch {
	case r == 0x00AD, r == 0x180E, r == 0x061C, r == 0xFEFF:
		return true
	case r >= 0x200B && r <= 0x200F:
		return true
	case r >= 0x202A && r <= 0x202E:
		return true
	case r >= 0x2060 && r <= 0x2069:
		return true
	case r >= 0xFE00 && r <= 0xFE0F:
		return true
	case r >= 0xE0000 && r <= 0xE007F:
		return true
	case r >= 0xE0100 && r <= 0xE01EF:
		return true
	}
	return false
}

// foldRune returns the compatibility fold of r (full-width forms,
// mathematical alphanumerics, enclosed letters, ligatures) as ASCII, or ""
// when r has none.
func foldRune(r rune) string {
	const lower = "abcdefghijklmnopqrstuvwxyz"
	const digits = "0123456789"
	switch {
	case r >= 0xFF01 && r <= 0xFF5E: // full-width ASCII
		b := asciiFold[r-0xFEE0]
		return asciiStr[b : b+1]
	case r == 0x3000:
		return " "
	case r >= 0x1D400 && r <= 0x1D6A3: // mathematical alphanumeric letters
		i := (r - 0x1D400) % 52
		if i >= 26 {
			i -= 26
		}
		return lower[i : i+1]
	case r >= 0x1D7CE && r <= 0x1D7FF: // mathematical digits
		i := (r - 0x1D7CE) % 10
		return digits[i : i+1]
	case r == 0xFB00:
		return "ff"
	case r == 0xFB01:
		return "fi"
	case r == 0xFB02:
		return "fl"
	case r == 0xFB03:
		return "ffi"
	case r == 0xFB04:
		return "ffl"
	case r == 0x2018 || r == 0x2019 || r == 0x201B || r == 0x2032 || r == 0xFF07:
		return "'"
	case r == 0x201C || r == 0x201D || r == 0x201F || r == 0x2033:
		return "\""
	case r >= 0x2010 && r <= 0x2015:
		return "-"
	case r == 0x2028 || r == 0x2029 || r == 0x0085:
		return "\n"
	}
	if i := enclosedLetter(r); i >= 0 {
		return lower[i : i+1]
	}
	return ""
}

// letterBlocks start the enclosed alphabets that fold to a-z, 26 runes
// each: circled capitals and small letters, parenthesized small letters,
// squared, negative circled and negative squared capitals, regional
// indicators.
var letterBlocks = [...]rune{0x24B6, 0x24D0, 0x249C, 0x1F130, 0x1F150, 0x1F170, 0x1F1E6}

// enclosedLetter is the index in a-z of r's letter, or -1.
func enclosedLetter(r rune) int {
	for _, first := range letterBlocks {
		if r >= first && r < first+26 {
			return int(r - first)
		}
	}
	return -1
}

var asciiStr = func() string {
	b := make([]byte, 128)
	for i := range b {
		b[i] = byte(i)
	}
	return string(b)
}()

// isASCII reports whether s holds only ASCII bytes, eight at a time.
func isASCII(s string) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if binary.LittleEndian.Uint64([]byte(s[i:i+8]))&0x8080808080808080 != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// normalizeASCII is Normalize for pure-ASCII text, where nothing is hidden
// and nothing needs folding but case and white space.
func normalizeASCII(dst []byte, s string) []byte {
	space := byte(0)
	started := len(dst) > 0
	for i := 0; i < len(s); {
		if space == 0 && started {
			if dst, i = copyPlain(dst, s, i); i == len(s) {
				break
			}
		}
		b := asciiFold[s[i]]
		i++
		switch b {
		case ' ', '\t':
			if space == 0 {
				space = ' '
			}
			continue
		case '\n':
			space = '\n'
			continue
		}
		if space != 0 {
			if started {
				dst = append(dst, space)
			}
			space = 0
		}
		started = true
		dst = append(dst, b)
	}
	return dst
}

// copyPlain appends to dst, lower-cased, the bytes of s from i on that
// normalise to themselves but for case, after a written byte and no white
// space: printable bytes, and single spaces between them. It takes them
// eight at a time while dst has room, and returns where it stopped.
func copyPlain(dst []byte, s string, i int) ([]byte, int) {
	for i+8 < len(s) && len(dst)+8 <= cap(dst) {
		x := swar.Load(s, i)
		// Write all eight; the bytes past the plain ones are beyond
		// len(dst).
		binary.LittleEndian.PutUint64(dst[len(dst):len(dst)+8], x|swar.InRange(x, 'A', 'Z')>>2)
		space := swar.Equal(x, ' ')
		other := ^swar.InRange(x, '!', '~') & swar.High &^ space // controls, DEL
		white := (space | other) >> 8                            // white space follows
		if next := s[i+8]; next <= ' ' || next >= 0x7f {
			white |= 0x80 << 56
		}
		if stop := other | space&white; stop != 0 {
			n := swar.First(stop)
			return dst[:len(dst)+n], i + n
		}
		// a constant step, so the next load need not wait for the tests
		dst = dst[:len(dst)+8]
		i += 8
	}
	return dst, i
}

// normalizeTokensASCII is normalizeASCII and Tokenize, for pure-ASCII
// text: the same bytes and the same tokens.
func normalizeTokensASCII(dst []byte, toks []Token, s string) ([]byte, []Token) {
	dst = normalizeASCII(dst, s)
	return dst, tokenizeASCII(toks, dst)
}

// normState is the state of one Normalize call.
type normState struct {
	dst             []byte
	h               *Hidden
	wordStart       int  // index in dst where the current word starts, -1 outside words
	wordLatin       bool // current word has a Latin letter
	wordConf        bool // current word has a confusable letter
	space           byte // pending white space: 0, ' ' or '\n'
	varRun          int
	prevASCIILetter bool
	pendingZW       int
	lastWasFlag     bool
}

func (st *normState) flushWord() {
	if st.wordStart >= 0 && st.wordLatin && st.wordConf {
		st.dst = remapConfusables(st.dst, st.wordStart)
	}
	st.wordStart, st.wordLatin, st.wordConf = -1, false, false
}

func (st *normState) emitSpace() {
	if st.space != 0 {
		if len(st.dst) > 0 {
			st.dst = append(st.dst, st.space)
		}
		st.space = 0
	}
}

// white records white space: a line break wins over a space.
func (st *normState) white(nl bool) {
	st.flushWord()
	if nl {
		st.space = '\n'
	} else if st.space == 0 {
		st.space = ' '
	}
	st.prevASCIILetter = false
}

// Normalize appends the normalised form of s to dst and returns it, adding
// the counts of the invisible characters it removed to h. The normal form
// is: invisible format characters (zero-width, bidi controls, tag
// characters, variation selectors) removed; compatibility forms folded to
// ASCII (full-width, mathematical, enclosed letters, ligatures, smart
// quotes); Latin diacritics dropped; everything lower-cased; Cyrillic and
// Greek look-alikes inside words that also hold Latin letters mapped to
// Latin; runs of white space collapsed to one space, or one newline when the
// run held a line break. Invalid UTF-8 bytes become spaces. The work is
// linear in len(s).
func Normalize(dst []byte, s string, h *Hidden) []byte {
	if isASCII(s) {
		return normalizeASCII(slices.Grow(dst, len(s)+1), s)
	}
	return normalizeGeneral(dst, s, h)
}

// normalizeGeneral is Normalize for any text.
func normalizeGeneral(dst []byte, s string, h *Hidden) []byte {
	st := normState{dst: slices.Grow(dst, len(s)+8), h: h, wordStart: -1}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			// ASCII fast path: runs of letters and digits go straight through
			b := asciiFold[c]
			if isWordByte[b] {
				if st.space != 0 {
					st.emitSpace()
				}
				if st.pendingZW > 0 {
					if b >= 'a' && b <= 'z' && st.prevASCIILetter {
						st.h.ZeroWidthInLat += st.pendingZW
					}
					st.pendingZW = 0
				}
				st.varRun = 0
				st.lastWasFlag = false
				if st.wordStart < 0 {
					st.wordStart = len(st.dst)
				}
				j := i + 1
				for j < len(s) && rawWordByte[s[j]] {
					j++
				}
				base := len(st.dst)
				st.dst = append(st.dst, s[i:j]...)
				letter := false
				for k := base; k < len(st.dst); k++ {
					c := st.dst[k]
					if c >= 'A' && c != '_' {
						letter = true
						st.dst[k] = asciiFold[c]
					}
				}
				last := asciiFold[s[j-1]]
				st.prevASCIILetter = last >= 'a' && last <= 'z'
				st.wordLatin = st.wordLatin || letter // '_' < 'a' <= letters
				i = j
				continue
			}
			i++
			if b == ' ' || b == '\t' || b == '\n' {
				st.white(b == '\n')
				st.pendingZW = 0
				st.varRun = 0
				continue
			}
			st.pendingZW = 0
			st.varRun = 0
			st.lastWasFlag = false
			st.emitSpace()
			st.flushWord()
			st.prevASCIILetter = false
			st.dst = append(st.dst, b)
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		st.rune(r, n, i == n)
	}
	st.flushWord()
	return st.dst
}

// rune handles one non-ASCII rune (or an invalid byte, r == RuneError).
func (st *normState) rune(r rune, n int, first bool) {
	switch {
	case r == utf8.RuneError && n <= 1:
		st.white(false)
	case IsInvisible(r):
		st.invisible(r, first)
	default:
		st.varRun = 0
		st.lastWasFlag = r == 0x1F3F4 // black flag: tag sequences after it are subdivision flags
		if f := foldRune(r); f != "" {
			st.folded(f)
		} else if r < 0x250 && latinFold[r-0x80] != "" {
			st.latin(latinFold[r-0x80])
		} else {
			st.other(r)
		}
	}
}

// invisible counts a format character by kind; none reaches the output.
func (st *normState) invisible(r rune, first bool) {
	h := st.h
	switch {
	case r >= 0xE0000 && r <= 0xE007F:
		if !st.lastWasFlag {
			h.Tags++
			if r >= 0xE0020 && r <= 0xE007E && len(h.TagText) < maxTagText {
				h.TagText = append(h.TagText, asciiFold[r-0xE0000])
			}
		}
	case (r >= 0xFE00 && r <= 0xFE0F) || (r >= 0xE0100 && r <= 0xE01EF):
		st.varRun++
		if st.varRun > h.VarSel {
			h.VarSel = st.varRun
		}
	case r == 0x202D || r == 0x202E:
		h.BidiOverride++
	case r == 0x200E || r == 0x200F || r == 0x061C || (r >= 0x202A && r <= 0x202C) || (r >= 0x2066 && r <= 0x2069):
		h.BidiOther++
	case r == 0x00AD:
		// soft hyphen: a legitimate hyphenation hint, removed silently
	case r == 0x200C || r == 0x200D:
		// joiners are part of emoji, Indic and Persian text; they
		// count only inside Latin words
		st.pendingZW++
	case r == 0xFEFF && first:
		// byte order mark at the start
	default:
		h.ZeroWidth++
		st.pendingZW++
	}
}

// folded writes a compatibility form's ASCII folding (full-width, math
// alphanumerics, ligatures, smart quotes ...).
func (st *normState) folded(f string) {
	if f == " " || f == "\n" {
		st.white(f == "\n")
		return
	}
	st.emitSpace()
	for j := 0; j < len(f); j++ {
		b := f[j]
		isLetter := b >= 'a' && b <= 'z'
		if isLetter || (b >= '0' && b <= '9') {
			if st.wordStart < 0 {
				st.wordStart = len(st.dst)
			}
			st.wordLatin = st.wordLatin || isLetter
		} else {
			st.flushWord()
		}
		st.dst = append(st.dst, b)
		st.prevASCIILetter = isLetter
	}
	st.pendingZW = 0
}

// latin writes a Latin letter with its diacritics dropped; zero-width
// characters just before it, after a Latin letter, were hidden in a word.
func (st *normState) latin(f string) {
	st.emitSpace()
	if st.wordStart < 0 {
		st.wordStart = len(st.dst)
	}
	st.wordLatin = true
	st.dst = append(st.dst, f...)
	if st.prevASCIILetter && st.pendingZW > 0 {
		st.h.ZeroWidthInLat += st.pendingZW
	}
	st.prevASCIILetter = true
	st.pendingZW = 0
}

// other writes any other rune lower-cased: a space or control ends the
// word, a letter of a script that does not separate words ends it too,
// and a Cyrillic or Greek look-alike marks the word for mapping.
func (st *normState) other(r rune) {
	if unicode.IsSpace(r) {
		st.white(false)
		st.pendingZW = 0
		return
	}
	if unicode.IsControl(r) {
		st.white(false)
		return
	}
	st.emitSpace()
	st.prevASCIILetter = false
	st.pendingZW = 0
	lr := unicode.ToLower(r)
	switch {
	case !(unicode.IsLetter(lr) || unicode.IsDigit(lr) || unicode.Is(unicode.Mn, lr)), isWordBreakingScript(lr):
		st.flushWord()
	default:
		if st.wordStart < 0 {
			st.wordStart = len(st.dst)
		}
		if _, ok := confusable[lr]; ok {
			st.wordConf = true
		}
	}
	st.dst = utf8.AppendRune(st.dst, lr)
}

// rawWordByte marks the ASCII bytes of s that Normalize keeps in words:
// letters of both cases, digits and '_'.
var rawWordByte = func() (t [256]bool) {
	for c := 0; c < 128; c++ {
		t[c] = isWordByte[asciiFold[c]]
	}
	return t
}()

// isWordByte marks the normalised ASCII bytes that belong to words.
var isWordByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	t['_'] = true
	return t
}()

// remapConfusables rewrites dst[start:] in place, replacing confusable
// Cyrillic/Greek letters by their Latin look-alike. The result is never
// longer than the input.
func remapConfusables(dst []byte, start int) []byte {
	w := start
	for r := start; r < len(dst); {
		c := dst[r]
		if c < utf8.RuneSelf {
			dst[w] = c
			w++
			r++
			continue
		}
		ru, n := utf8.DecodeRune(dst[r:])
		if l, ok := confusable[ru]; ok {
			dst[w] = l
			w++
		} else {
			copy(dst[w:], dst[r:r+n])
			w += n
		}
		r += n
	}
	return dst[:w]
}

// isWordBreakingScript reports whether r belongs to a script written without
// spaces, whose characters are tokenised one by one (Han, kana, Hangul
// syllables are kept whole words since Korean uses spaces).
func isWordBreakingScript(r rune) bool {
	return unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hiragana, r) ||
		unicode.Is(unicode.Katakana, r) || unicode.Is(unicode.Thai, r)
}

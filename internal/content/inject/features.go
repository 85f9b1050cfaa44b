package inject

import (
	"encoding/binary"
	"unicode"
	"unicode/utf8"

	"github.com/agentpdp/agentpdp/internal/swar"
)

// Token is one word of the normalised text: a run of ASCII letters, digits
// and '_', or of other letters; each Han, kana or Thai character is a token
// of its own. Start and End are byte offsets into the normalised text.
type Token struct {
	Start, End int32
	Hash       uint64
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
	mix64     = 0x9E3779B97F4A7C15
)

// HashString is the token hash used by Tokenize.
func HashString(s string) uint64 {
	return hashMore(fnvOffset, []byte(s))
}

// hashMore extends the token hash h with the bytes of b, eight at a time.
func hashMore(h uint64, b []byte) uint64 {
	for len(b) >= 8 {
		h = hashChunk(h, binary.LittleEndian.Uint64(b))
		b = b[8:]
	}
	if len(b) > 0 {
		var w uint64
		for k := 0; k < len(b); k++ {
			w |= uint64(b[k]) << (8 * k)
		}
		h = hashTail(h, w, len(b))
	}
	return h
}

// hashChunk mixes eight bytes of a token, a little-endian word, into h.
func hashChunk(h, w uint64) uint64 {
	h = (h ^ w) * fnvPrime
	return h ^ h>>29
}

// hashTail mixes the last n (1 to 7) bytes of a token, the low bytes of w
// (the others zero), into h.
func hashTail(h, w uint64, n int) uint64 {
	h = (h ^ w ^ uint64(n)<<59) * fnvPrime
	return h ^ h>>29
}

// Tokenize appends the tokens of the normalised text norm to dst.
func Tokenize(dst []Token, norm []byte) []Token {
	start := -1
	for i := 0; i < len(norm); {
		c := norm[i]
		if c < utf8.RuneSelf {
			if isWordByte[c] {
				if start < 0 {
					start = i
				}
				i++
				for i < len(norm) && isWordByte[norm[i]] {
					i++
				}
				continue
			}
			if start >= 0 {
				dst = append(dst, token(norm, start, i))
				start = -1
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(norm[i:])
		if r == utf8.RuneError || !(unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Mc, r)) {
			if start >= 0 {
				dst = append(dst, token(norm, start, i))
				start = -1
			}
			i += n
			continue
		}
		if isWordBreakingScript(r) {
			if start >= 0 {
				dst = append(dst, token(norm, start, i))
				start = -1
			}
			dst = append(dst, token(norm, i, i+n))
			i += n
			continue
		}
		if start < 0 {
			start = i
		}
		i += n
	}
	if start >= 0 {
		dst = append(dst, token(norm, start, len(norm)))
	}
	return dst
}

// tokenizeASCII is Tokenize for normalised pure-ASCII text, whose tokens
// are the runs of word bytes. It finds where they start and end eight
// bytes at a time, with a constant step so that each load need not wait
// for the last one's tests.
func tokenizeASCII(dst []Token, norm []byte) []Token {
	start := -1        // start of the open token
	carry := uint64(0) // swar.Word's bit for the byte before the eight, moved to byte 0
	for i := 0; i < len(norm); i += 8 {
		w := swar.Word(load8(norm, i)) // zero-padded: the end is no word
		edges := w ^ (w<<8 | carry)    // where word bytes start or stop
		for edges != 0 {
			k := i + swar.First(edges)
			edges &= edges - 1
			if start < 0 {
				start = k
			} else {
				// token's hash, inline: a call per token would cost a
				// quarter more
				var h uint64
				if n := k - start; n < 8 && start+8 <= len(norm) {
					h = hashTail(fnvOffset, swar.Load(norm, start)&charMask[n], n)
				} else {
					h = hashMore(fnvOffset, norm[start:k])
				}
				dst = append(dst, Token{Start: int32(start), End: int32(k), Hash: h})
				start = -1
			}
		}
		carry = w >> 56
	}
	if start >= 0 {
		dst = append(dst, token(norm, start, len(norm)))
	}
	return dst
}

func token(norm []byte, start, end int) Token {
	if n := end - start; n < 8 && start+8 <= len(norm) {
		// short token with a full word to load: one multiply (same value
		// as hashMore)
		w := binary.LittleEndian.Uint64(norm[start:]) & charMask[n]
		return Token{Start: int32(start), End: int32(end), Hash: hashTail(fnvOffset, w, n)}
	}
	return Token{Start: int32(start), End: int32(end), Hash: hashMore(fnvOffset, norm[start:end])}
}

// Feature families, mixed into the hash so that a word and a character
// n-gram with the same bytes land in different buckets.
const (
	famWord   = 0x1000
	famBigram = 0x2000
	famChar   = 0x3000
)

// FeatureSet says which feature families a model uses.
type FeatureSet struct {
	Words   bool // word unigrams
	Bigrams bool // word bigrams
	CharMin int  // smallest character (byte) n-gram, 0 for none
	CharMax int  // largest character (byte) n-gram
}

// Features calls emit for every hashed feature of the normalised text and
// its tokens: idx is the bucket in [0, 1<<bits), pos the byte offset where
// the feature starts. Every occurrence is emitted (counts, not sets).
func Features(fs FeatureSet, bits uint, norm []byte, toks []Token, emit func(idx uint32, pos int32)) {
	shift := 64 - bits
	if fs.Words {
		for _, t := range toks {
			emit(uint32(((t.Hash^famWord)*mix64)>>shift), t.Start)
		}
	}
	if fs.Bigrams {
		for i := 1; i < len(toks); i++ {
			h := (toks[i-1].Hash*31 + toks[i].Hash) ^ famBigram
			emit(uint32((h*mix64)>>shift), toks[i-1].Start)
		}
	}
	if fs.CharMin > 0 {
		lo, hi := fs.CharMin, fs.CharMax
		n := len(norm)
		for i := 0; i+lo <= n; i++ {
			w := load8(norm, i)
			for k := lo; k <= hi && i+k <= n; k++ {
				emit(charBucket(w, k, shift), int32(i))
			}
		}
	}
}

// load8 returns the 8 bytes of b at i as a little-endian word, zero-padded
// past the end of b.
func load8(b []byte, i int) uint64 {
	if i+8 <= len(b) {
		return binary.LittleEndian.Uint64(b[i:])
	}
	var w uint64
	for k := 0; i+k < len(b); k++ {
		w |= uint64(b[i+k]) << (8 * k)
	}
	return w
}

// charMask[k] keeps the first k bytes of a little-endian word.
var charMask = [9]uint64{0, 0xff, 0xffff, 0xffffff, 0xffffffff, 0xffffffffff, 0xffffffffffff, 0xffffffffffffff, 0xffffffffffffffff}

// charBucket hashes the k-byte n-gram held in the low bytes of w: a
// multiply-shift hash of the masked word, salted with k and the family.
func charBucket(w uint64, k int, shift uint) uint32 {
	h := (w&charMask[k])*mix64 ^ uint64(k)<<56 ^ famChar
	return uint32((h * mix64b) >> shift)
}

const mix64b = 0xC2B2AE3D27D4EB4F

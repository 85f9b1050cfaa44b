package inject

import (
	"encoding/binary"
	"math"
)

// block accumulates the feature weights and counts of one stretch of text.
type block struct {
	sum float64
	n   int
}

// Logit returns the learned logit of the normalised text. The text is cut
// into blocks of m.Block bytes; every window of two consecutive blocks is
// scored and the highest window logit is returned (a text of one or two
// blocks is one window). The model is trained the same way (multiple-
// instance learning: a document is an injection when one of its windows
// is), so an injection inside a long benign document is not drowned by the
// rest of it, and the work is linear in the length. blocks is scratch space.
func (m *Model) Logit(norm []byte, toks []Token, blocks []block) (float64, []block) {
	half := m.Block
	if half <= 0 {
		half = len(norm) + 1
	}
	nb := (len(norm) + half - 1) / half
	if nb == 0 {
		nb = 1
	}
	if cap(blocks) < nb {
		blocks = make([]block, nb)
	}
	blocks = blocks[:nb]
	for i := range blocks {
		blocks[i] = block{}
	}
	if len(m.q) == len(m.Weights) && len(m.q) > 0 {
		sumBlocks[int16, int64](m, m.q, float64(m.qScale), norm, toks, blocks, half)
	} else {
		sumBlocks[float32, float64](m, m.Weights, 1, norm, toks, blocks, half)
	}
	best := math.Inf(-1)
	if len(blocks) == 1 {
		return m.windowLogit(blocks[0].sum, blocks[0].n), blocks
	}
	for i := 0; i+1 < len(blocks); i++ {
		l := m.windowLogit(blocks[i].sum+blocks[i+1].sum, blocks[i].n+blocks[i+1].n)
		if l > best {
			best = l
		}
	}
	return best, blocks
}

// sumBlocks adds each feature's weight (w[idx]*scale) and count to the
// block where the feature starts. A is the accumulator: int64 for the
// quantised weights (exact and without a floating-point dependency chain),
// float64 for float weights.
func sumBlocks[W int16 | float32, A int64 | float64](m *Model, w []W, scale float64, norm []byte, toks []Token, blocks []block, half int) {
	shift := 64 - m.Bits
	if m.FS.Words || m.FS.Bigrams {
		sumTokens[W, A](m.FS.Words, m.FS.Bigrams, w, shift, toks, blocks, half)
	}
	if lo, hi := m.FS.CharMin, m.FS.CharMax; lo > 0 {
		n := len(norm)
		for bi := range blocks {
			start, end := bi*half, (bi+1)*half
			if end > n-lo+1 {
				end = n - lo + 1
			}
			var s0, s1 A
			cnt := 0
			i := start
			if lo == hi && hi <= 8 {
				s0, s1, i = sumGrams[W, A](w, norm, i, end, lo, shift)
			}
			// fast path: a full word can be loaded and every n-gram fits
			for ; i < end && i+8 <= n && i+hi <= n; i++ {
				x := binary.LittleEndian.Uint64(norm[i:])
				for k := lo; k <= hi; k++ {
					s0 += A(w[charBucket(x, k, shift)])
				}
				s0, s1 = s1, s0 // two chains
			}
			cnt += (i - start) * (hi - lo + 1)
			for ; i < end; i++ {
				x := load8(norm, i)
				for k := lo; k <= hi && i+k <= n; k++ {
					s0 += A(w[charBucket(x, k, shift)])
					cnt++
				}
			}
			blocks[bi].sum += float64(s0 + s1)
			blocks[bi].n += cnt
		}
	}
	if scale != 1 {
		for i := range blocks {
			blocks[i].sum *= scale
		}
	}
}

// sumTokens adds the word and bigram features to their blocks. The tokens
// are in text order, so each block's tokens are a run: no division per
// token, and the sums stay in registers.
func sumTokens[W int16 | float32, A int64 | float64](words, bigrams bool, w []W, shift uint, toks []Token, blocks []block, half int) {
	shift &= 63 // a plain shift instruction, without the >= 64 case
	i := 0
	for bi := range blocks {
		limit := (bi + 1) * half
		var sum A
		n := 0
		for ; i < len(toks) && int(toks[i].Start) < limit; i++ {
			h := toks[i].Hash
			var s A
			if words {
				s += A(w[((h^famWord)*mix64)>>shift])
				n++
			}
			if bigrams && i+1 < len(toks) {
				b := (h*31 + toks[i+1].Hash) ^ famBigram
				s += A(w[(b*mix64)>>shift])
				n++
			}
			sum += s
		}
		blocks[bi].sum += float64(sum)
		blocks[bi].n += n
	}
}

// sumGrams is the character n-gram loop of a model with one n-gram size k
// (the shipped model): one hash per byte, with charBucket's constants
// hoisted. It sums the n-grams starting in norm[i:end] that have a full word
// to load and returns the two sums and where it stopped. It is a function of
// its own so that its few variables stay in registers.
func sumGrams[W int16 | float32, A int64 | float64](w []W, norm []byte, i, end, k int, shift uint) (s0, s1 A, stop int) {
	mask, kf := charMask[k], uint64(k)<<56^famChar
	shift &= 63 // a plain shift instruction, without the >= 64 case
	end = min(end, len(norm)-7)
	if i >= end {
		return 0, 0, i
	}
	// Even offsets go to s0, odd ones to s1: two chains, and the same sums
	// as alternating one loop between them.
	b := norm[i : end+7]
	for len(b) >= 9 {
		x0 := binary.LittleEndian.Uint64(b) & mask
		x1 := binary.LittleEndian.Uint64(b[1:]) & mask
		s0 += A(w[uint32(((x0*mix64^kf)*mix64b)>>shift)])
		s1 += A(w[uint32(((x1*mix64^kf)*mix64b)>>shift)])
		b = b[2:]
	}
	if len(b) == 8 {
		x := binary.LittleEndian.Uint64(b) & mask
		s0 += A(w[uint32(((x*mix64^kf)*mix64b)>>shift)])
		s0, s1 = s1, s0
	}
	return s0, s1, end
}

func (m *Model) windowLogit(sum float64, n int) float64 {
	if m.Scale == ScaleSqrt && n > 0 {
		sum /= math.Sqrt(float64(n))
	}
	return float64(m.Bias) + sum
}

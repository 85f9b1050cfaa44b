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
		for i, t := range toks {
			b := &blocks[int(t.Start)/half]
			var s A
			if m.FS.Words {
				s += A(w[((t.Hash^famWord)*mix64)>>shift])
				b.n++
			}
			if m.FS.Bigrams && i+1 < len(toks) {
				h := (t.Hash*31 + toks[i+1].Hash) ^ famBigram
				s += A(w[(h*mix64)>>shift])
				b.n++
			}
			b.sum += float64(s)
		}
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
				// one n-gram size (the shipped model): one hash per byte,
				// constants hoisted out of charBucket
				mask, kf := charMask[lo], uint64(lo)<<56^famChar
				for ; i < end && i+8 <= n; i++ {
					x := binary.LittleEndian.Uint64(norm[i:]) & mask
					s0 += A(w[uint32(((x*mix64^kf)*mix64b)>>shift)])
					s0, s1 = s1, s0
				}
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

func (m *Model) windowLogit(sum float64, n int) float64 {
	if m.Scale == ScaleSqrt && n > 0 {
		sum /= math.Sqrt(float64(n))
	}
	return float64(m.Bias) + sum
}

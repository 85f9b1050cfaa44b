package inject

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
)

// Model is the learned scorer (logistic regression over hashed features of
// the normalised text) and the small logistic layer that combines its logit
// with the rule signals. It is immutable once loaded.
type Model struct {
	Bits    uint       // log2 of the number of hash buckets
	FS      FeatureSet // feature families
	Scale   uint8      // feature scaling: ScaleSqrt or ScaleNone
	Block   int        // normalised bytes per block; a scoring window is two blocks
	Bias    float32
	Weights []float32 // len 1<<Bits

	// Combination: the learned logit is calibrated to a probability
	// p = sigmoid(PlattA*logit + PlattB), and each rule signal s that fired
	// is independent evidence that is right with probability SigProb[s];
	// the score is the probability that at least one is right:
	// 1 - (1-p) * prod(1 - SigProb[s]) (a noisy-OR).
	PlattA  float32
	PlattB  float32
	SigProb [NumSignals]float32
	// Threshold is the threshold chosen on grouped validation; it is
	// informational (the content package pins its own constant).
	Threshold float32

	// q holds the weights as stored (int16, times qScale) when the model
	// was loaded: half the memory of Weights, so the lookups stay in cache.
	q      []int16
	qScale float32
}

// Feature scaling of a window's feature counts.
const (
	ScaleNone uint8 = 0 // raw counts
	ScaleSqrt uint8 = 1 // counts divided by sqrt(number of features)
)

var magic = [8]byte{'A', 'P', 'D', 'P', 'I', 'N', 'J', '1'}

// ErrBadModel is returned for a model file that cannot be read.
var ErrBadModel = errors.New("inject: bad model file")

type header struct {
	Magic      [8]byte
	Bits       uint32
	Words      uint8
	Bigrams    uint8
	CharMin    uint8
	CharMax    uint8
	Scale      uint8
	Quant      uint8 // 16: int16 weights times QuantScale
	_          [2]uint8
	Block      uint32
	Bias       float32
	QuantScale float32
	PlattA     float32
	PlattB     float32
	SigProb    [16]float32
	Threshold  float32
	NumSignals uint32
}

// WriteTo writes m in the binary model format (weights quantised to int16).
func (m *Model) WriteTo(w io.Writer) (int64, error) {
	var maxAbs float32
	for _, v := range m.Weights {
		if a := float32(math.Abs(float64(v))); a > maxAbs {
			maxAbs = a
		}
	}
	qs := maxAbs / 32767
	if qs == 0 {
		qs = 1
	}
	h := header{
		Magic: magic, Bits: uint32(m.Bits), Words: b2u(m.FS.Words), Bigrams: b2u(m.FS.Bigrams),
		CharMin: uint8(m.FS.CharMin), CharMax: uint8(m.FS.CharMax), Scale: m.Scale, Quant: 16,
		Block: uint32(m.Block), Bias: m.Bias, QuantScale: qs, PlattA: m.PlattA,
		PlattB: m.PlattB, Threshold: m.Threshold, NumSignals: NumSignals,
	}
	copy(h.SigProb[:], m.SigProb[:])
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.LittleEndian, &h); err != nil {
		return 0, err
	}
	q := make([]int16, len(m.Weights))
	for i, v := range m.Weights {
		q[i] = int16(math.Round(float64(v / qs)))
	}
	if err := binary.Write(&buf, binary.LittleEndian, q); err != nil {
		return 0, err
	}
	return buf.WriteTo(w)
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// Load parses a model written by WriteTo.
func Load(data []byte) (*Model, error) {
	var h header
	r := bytes.NewReader(data)
	if err := binary.Read(r, binary.LittleEndian, &h); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrBadModel, err)
	}
	if h.Magic != magic {
		return nil, fmt.Errorf("%w: magic %q", ErrBadModel, h.Magic[:])
	}
	if h.Bits < 10 || h.Bits > 24 || h.Quant != 16 || h.NumSignals != NumSignals ||
		h.CharMin > h.CharMax || h.CharMax > 8 {
		return nil, fmt.Errorf("%w: unsupported header %+v", ErrBadModel, h)
	}
	n := 1 << h.Bits
	if r.Len() != 2*n {
		return nil, fmt.Errorf("%w: %d weight bytes, want %d", ErrBadModel, r.Len(), 2*n)
	}
	q := make([]int16, n)
	if err := binary.Read(r, binary.LittleEndian, q); err != nil {
		return nil, fmt.Errorf("%w: weights: %v", ErrBadModel, err)
	}
	m := &Model{
		Bits: uint(h.Bits), FS: FeatureSet{Words: h.Words == 1, Bigrams: h.Bigrams == 1,
			CharMin: int(h.CharMin), CharMax: int(h.CharMax)},
		Scale: h.Scale, Block: int(h.Block), Bias: h.Bias, Weights: make([]float32, n),
		PlattA: h.PlattA, PlattB: h.PlattB, Threshold: h.Threshold,
	}
	copy(m.SigProb[:], h.SigProb[:NumSignals])
	for _, p := range m.SigProb {
		if !(p >= 0 && p < 1) {
			return nil, fmt.Errorf("%w: signal probability %v", ErrBadModel, p)
		}
	}
	for i, v := range q {
		m.Weights[i] = float32(v) * h.QuantScale
	}
	m.q, m.qScale = q, h.QuantScale
	return m, nil
}

// Combine turns the learned logit and the rule signals into the final
// probability-like score (see the Model fields).
func (m *Model) Combine(logit float64, s Signal) float64 {
	return NoisyOr(m.Calibrated(logit), s, &m.SigProb)
}

// Calibrated maps the learned logit to a probability (Platt scaling).
func (m *Model) Calibrated(logit float64) float64 {
	return Sigmoid(float64(m.PlattA)*logit + float64(m.PlattB))
}

// NoisyOr returns 1 - (1-p) * prod over the signals in s of (1 - q[s]).
func NoisyOr(p float64, s Signal, q *[NumSignals]float32) float64 {
	miss := 1 - p
	s &= 1<<NumSignals - 1
	for s != 0 {
		i := bits.TrailingZeros32(uint32(s))
		miss *= 1 - float64(q[i])
		s &^= 1 << i
	}
	return 1 - miss
}

// Sigmoid is the logistic function.
func Sigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	e := math.Exp(z)
	return e / (1 + e)
}

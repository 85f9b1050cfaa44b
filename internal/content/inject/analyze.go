// Package inject is the prompt-injection engine behind package content:
// text normalisation, the rule signals, and the hashed logistic model.
package inject

import (
	"slices"
	"sync"
)

// Scratch holds the buffers one analysis needs; reuse it to avoid
// allocations. A Scratch must not be used by two goroutines at once.
type Scratch struct {
	norm   []byte
	toks   []Token
	cats   []uint32
	blocks []block
	dec    []byte
	hidden Hidden
	sub    *Scratch
}

var scratchPool = sync.Pool{New: func() any { return new(Scratch) }}

// GetScratch takes a Scratch from a shared pool; PutScratch returns it.
func GetScratch() *Scratch { return scratchPool.Get().(*Scratch) }

// PutScratch returns s to the pool, dropping buffers grown very large.
func PutScratch(s *Scratch) {
	if cap(s.norm) > 1<<22 || cap(s.toks) > 1<<18 {
		*s = Scratch{sub: s.sub}
	}
	scratchPool.Put(s)
}

// Result is the outcome of analysing one text.
type Result struct {
	Logit   float64 // learned logit (0 when no model)
	Signals Signal  // rule signals that fired
	HasText bool    // the normalised text is not empty
}

// Analyze runs the rules on text and, when m is not nil, the learned model.
// Only the rules are run when m is nil.
func Analyze(m *Model, text string, sc *Scratch) Result {
	sc.hidden = Hidden{TagText: sc.hidden.TagText[:0]}
	if isASCII(text) {
		sc.norm, sc.toks = normalizeTokensASCII(slices.Grow(sc.norm[:0], len(text)+1), sc.toks[:0], text)
	} else {
		sc.norm = Normalize(sc.norm[:0], text, &sc.hidden)
		sc.toks = Tokenize(sc.toks[:0], sc.norm)
	}
	sig := ruleSignals(sc)
	if adversarialSuffix(text) {
		sig |= SigAdversarialSuffix
	}
	if sc.hidden.Signal() {
		sig |= SigHidden
	}
	if len(sc.hidden.TagText) >= 4 {
		tag := string(sc.hidden.TagText)
		if sub, hit := subScan(m, tag, sc); hit {
			sig |= SigHidden | sub
		}
	}
	// decoded payloads: at most one level deep
	sc.dec = DecodeCandidates(text, sc.dec, func(dec []byte) {
		if sub, hit := subScan(m, string(dec), sc); hit {
			sig |= SigEncoded | sub
		}
	})
	res := Result{Signals: sig, HasText: len(sc.norm) > 0}
	if m != nil {
		res.Logit, sc.blocks = m.Logit(sc.norm, sc.toks, sc.blocks)
	}
	return res
}

// subScan analyses a decoded or hidden payload with the rules and the model;
// hit is true when a rule fired or the model leans towards injection.
func subScan(m *Model, text string, sc *Scratch) (Signal, bool) {
	if sc.sub == nil {
		sc.sub = &Scratch{}
	}
	s := sc.sub
	var h Hidden
	s.norm = Normalize(s.norm[:0], text, &h)
	s.toks = Tokenize(s.toks[:0], s.norm)
	sig := ruleSignals(s)
	if sig != 0 {
		return sig, true
	}
	if m != nil {
		var l float64
		l, s.blocks = m.Logit(s.norm, s.toks, s.blocks)
		return 0, l > 0
	}
	return 0, false
}

// ruleSignals runs the text rules on sc.norm and sc.toks.
func ruleSignals(sc *Scratch) Signal {
	if cap(sc.cats) < len(sc.toks) {
		sc.cats = make([]uint32, len(sc.toks), cap(sc.toks))
	}
	sc.cats = sc.cats[:len(sc.toks)]
	for i, t := range sc.toks {
		sc.cats[i] = keywords.get(t.Hash)
	}
	sig := matchTokens(sc.norm, sc.toks, sc.cats)
	sig |= matchNeedles(sc.norm)
	if sig&SigOverride == 0 && hasNonASCII(sc.norm) && matchCJKOverride(sc.norm) {
		sig |= SigOverride
	}
	if matchExfil(sc.norm, sc.toks, sc.cats) {
		sig |= SigExfil
	}
	if matchEmbeddedRequest(sc.norm, sc.toks, sc.cats) {
		sig |= SigEmbeddedRequest
	}
	if matchMarkdownExfil(sc.norm) {
		sig |= SigMarkdownExfil
	}
	return sig
}

// Norm returns the normalised text of the last analysis (valid until the
// Scratch is reused).
func (s *Scratch) Norm() []byte { return s.norm }

// Tokens returns the tokens of the last analysis.
func (s *Scratch) Tokens() []Token { return s.toks }

// Package content scores untrusted text for prompt injection and finds PII
// and secrets in it, for the injection_score() and pii() policy functions.
package content

import (
	"cmp"
	_ "embed"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/agentpdp/agentpdp/internal/content/inject"
)

// MaxScanBytes bounds the work per text: only the first MaxScanBytes bytes
// of a longer text are scanned, and the result says Truncated.
const MaxScanBytes = 1 << 20

// DefaultThreshold is the injection score at or above which a text is
// flagged. It was chosen on grouped cross-validation of the training data
// (see docs/CONTENT_SECURITY.md), not on the development set.
const DefaultThreshold = 0.871

// Scorer is a learned injection scorer: Score returns a probability-like
// value in [0,1]. The embedded model is one; an ONNX model or a remote
// classifier can be plugged in with NewWithScorer.
type Scorer interface {
	Score(text string) float64
}

// PIIMatch is one PII or secret found in a text: its kind (see the Kind
// constants) and its byte span, End exclusive.
type PIIMatch struct {
	Kind       string
	Start, End int
}

// Scan is the full content finding for one text.
type Scan struct {
	InjectionScore float64  // in [0,1]
	Flagged        bool     // InjectionScore >= DefaultThreshold
	Signals        []string // rule signals that fired, plus "learned_model" when the scorer alone is confident
	PII            []PIIMatch
	Truncated      bool // the text was longer than MaxScanBytes
}

// SignalLearned is reported in Signals when the learned scorer's own
// calibrated probability is at least DefaultThreshold.
const SignalLearned = "learned_model"

// Detector scores injections and finds PII. It is immutable after New and
// safe for concurrent use.
type Detector struct {
	model  *inject.Model // embedded model: combination layer, and the scorer unless custom is set
	custom Scorer        // plugged scorer, or nil
}

//go:embed model.bin
var modelBin []byte

var (
	loadOnce    sync.Once
	loadedModel *inject.Model
	loadErr     error
)

func embeddedModel() (*inject.Model, error) {
	loadOnce.Do(func() {
		loadedModel, loadErr = inject.Load(modelBin)
		if loadErr != nil {
			loadErr = fmt.Errorf("content: load embedded model: %w", loadErr)
		}
	})
	return loadedModel, loadErr
}

// New returns a Detector using the embedded learned model.
func New() (*Detector, error) {
	m, err := embeddedModel()
	if err != nil {
		return nil, err
	}
	return &Detector{model: m}, nil
}

// NewWithScorer returns a Detector whose learned part is s. Its probability
// takes the place of the embedded model's calibrated probability in the
// combination with the rule signals (a noisy-OR), so s should be calibrated
// on data like the embedded model's (balanced classes) for DefaultThreshold
// to keep its meaning. A nil s gives a rules-only detector.
func NewWithScorer(s Scorer) *Detector {
	m, err := embeddedModel()
	if err != nil {
		m = fallbackModel
	}
	if s == nil {
		s = noScorer{}
	}
	return &Detector{model: m, custom: s}
}

// noScorer is the scorer of a rules-only detector: it adds nothing, so
// the score is the rule signals' alone.
type noScorer struct{}

func (noScorer) Score(string) float64 { return 0 }

// fallbackModel is the combination used when the embedded model cannot be
// read: the scorer's probability as is, and each signal's prior.
var fallbackModel = &inject.Model{
	PlattA: 1, PlattB: 0,
	SigProb: [inject.NumSignals]float32{0.9, 0.8, 0.7, 0.6, 0.9, 0.9, 0.9, 0.8, 0.85, 0.8, 0.8, 0.9, 0.9},
}

// truncate returns the head of text that is scanned: at most MaxScanBytes,
// cut back to a rune boundary when the cut falls inside a valid rune.
func truncate(text string) (string, bool) {
	if len(text) <= MaxScanBytes {
		return text, false
	}
	cut := MaxScanBytes
	for k := 0; k < utf8.UTFMax && cut > 0 && !utf8.RuneStart(text[cut]); k++ {
		cut--
	}
	if cut == 0 {
		cut = MaxScanBytes
	}
	return text[:cut], true
}

// Injection returns the injection score of text in [0,1], the names of the
// signals that fired (sorted), and whether only the head of text was scanned.
func (d *Detector) Injection(text string) (score float64, signals []string, truncated bool) {
	text, truncated = truncate(text)
	score, signals = d.injection(text)
	return score, signals, truncated
}

func (d *Detector) injection(text string) (float64, []string) {
	sc := inject.GetScratch()
	defer inject.PutScratch(sc)
	var res inject.Result
	var p float64 // the learned part's calibrated probability
	if d.custom != nil {
		res = inject.Analyze(nil, text, sc)
		p = clamp01(d.custom.Score(text))
	} else {
		res = inject.Analyze(d.model, text, sc)
		p = d.model.Calibrated(res.Logit)
	}
	if !res.HasText && res.Signals == 0 {
		return 0, nil
	}
	score := inject.NoisyOr(p, res.Signals, &d.model.SigProb)
	var names []string
	if res.Signals != 0 || p >= DefaultThreshold {
		names = res.Signals.Names(make([]string, 0, res.Signals.Count()+1))
		if p >= DefaultThreshold {
			names = append(names, SignalLearned)
		}
		sort.Strings(names)
	}
	return score, names
}

func clamp01(p float64) float64 {
	if !(p >= 0) { // NaN too
		return 0
	}
	if p > 1 {
		return 1
	}
	return p
}

// PII returns the PII and secrets found in text, sorted by start and not
// overlapping. Only the first MaxScanBytes bytes are scanned.
func (d *Detector) PII(text string) []PIIMatch {
	text, _ = truncate(text)
	return detectPII(text, nil)
}

// MaskPII is Mask(text, d.PII(text)) allocating only the result, and
// nothing when text holds no PII: the audit trail masks every string of
// every decision's arguments.
func (d *Detector) MaskPII(text string) string {
	scanned, _ := truncate(text)
	var buf [4]PIIMatch
	return Mask(text, detectPII(scanned, buf[:0]))
}

// Scan runs both detectors on text.
func (d *Detector) Scan(text string) Scan {
	text, truncated := truncate(text)
	score, signals := d.injection(text)
	return Scan{
		InjectionScore: score,
		Flagged:        score >= DefaultThreshold,
		Signals:        signals,
		PII:            detectPII(text, nil),
		Truncated:      truncated,
	}
}

// PIIKinds returns the distinct kinds in ms, sorted.
func PIIKinds(ms []PIIMatch) []string {
	if len(ms) == 0 {
		return nil
	}
	kinds := make([]string, 0, len(ms))
	for _, m := range ms {
		kinds = append(kinds, m.Kind)
	}
	sort.Strings(kinds)
	out := kinds[:1]
	for _, k := range kinds[1:] {
		if k != out[len(out)-1] {
			out = append(out, k)
		}
	}
	return out
}

// Mask returns text with each match replaced by "[KIND]" (e.g. "[EMAIL]").
// Matches out of range or overlapping an earlier one are ignored, so any
// slice is safe to pass.
func Mask(text string, ms []PIIMatch) string {
	if len(ms) == 0 {
		return text
	}
	byStart := func(a, b PIIMatch) int { return cmp.Compare(a.Start, b.Start) }
	sorted := ms
	if !slices.IsSortedFunc(ms, byStart) { // what PII returns is sorted: no copy
		sorted = slices.Clone(ms)
		slices.SortStableFunc(sorted, byStart)
	}
	var b strings.Builder
	b.Grow(len(text))
	pos := 0
	for _, m := range sorted {
		if m.Start < pos || m.End > len(text) || m.Start >= m.End {
			continue
		}
		b.WriteString(text[pos:m.Start])
		b.WriteString(maskLabel(m.Kind))
		pos = m.End
	}
	b.WriteString(text[pos:])
	return b.String()
}

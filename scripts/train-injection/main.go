// Command train-injection trains the learned prompt-injection scorer of
// internal/content from a labelled JSONL file, validates it with a split
// grouped by source repository, fits the layer that combines it with the
// rule signals, chooses the default threshold, and writes the model file.
//
//	go run ./scripts/train-injection -data ../shared/data/injection-train.jsonl -out internal/content/model.bin
//
// Training is deterministic: a fixed seed, a single goroutine, and inputs
// processed in file order.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"math/rand"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/agentpdp/agentpdp/internal/content/inject"
)

type record struct {
	Text   string `json:"text"`
	Label  int    `json:"label"`
	Source string `json:"source"`
	Kind   string `json:"kind"`
}

// doc is one training record turned into sparse features.
type doc struct {
	idx    []uint32
	val    []float32
	y      float64
	w      float64 // sample weight
	sig    inject.Signal
	repo   string // owner/repo of the source: the validation group
	path   string // owner/repo:path, for the report
	kind   string
	fold   int
	logit  float64 // out-of-fold learned logit
	score  float64 // out-of-fold combined score
	length int
}

type config struct {
	bits        uint
	fs          inject.FeatureSet
	scale       uint8
	window      int
	epochs      int
	lr          float64
	l2          float64
	groupPow    float64
	folds       int
	seed        int64
	maxFPR      float64
	maxHardFPR  float64
	stackLambda float64
}

func main() {
	var (
		data    = flag.String("data", "", "training JSONL (text, label, source, kind)")
		out     = flag.String("out", "", "model file to write (nothing is written when empty)")
		cfg     config
		scale   string
		verbose bool
	)
	flag.UintVar(&cfg.bits, "bits", 18, "log2 of hash buckets")
	flag.BoolVar(&cfg.fs.Words, "words", true, "word unigram features")
	flag.BoolVar(&cfg.fs.Bigrams, "bigrams", true, "word bigram features")
	flag.IntVar(&cfg.fs.CharMin, "cmin", 3, "smallest character n-gram (0: none)")
	flag.IntVar(&cfg.fs.CharMax, "cmax", 5, "largest character n-gram")
	flag.StringVar(&scale, "scale", "sqrt", "feature scaling: sqrt or none")
	flag.IntVar(&cfg.window, "window", 4096, "scoring window in normalised bytes for long text")
	flag.IntVar(&cfg.epochs, "epochs", 12, "passes over the data")
	flag.Float64Var(&cfg.lr, "lr", 0.2, "AdaGrad learning rate")
	flag.Float64Var(&cfg.l2, "l2", 1e-4, "L2 penalty per update")
	flag.Float64Var(&cfg.groupPow, "group-pow", 0.5, "sample weight = (size of source path group)^-pow, per class")
	flag.IntVar(&cfg.folds, "folds", 5, "grouped cross-validation folds")
	flag.Int64Var(&cfg.seed, "seed", 1, "random seed")
	flag.Float64Var(&cfg.maxFPR, "max-fpr", 0.01, "threshold: highest validated false-positive rate on all benign")
	flag.Float64Var(&cfg.maxHardFPR, "max-hard-fpr", 0.03, "threshold: highest validated false-positive rate on benign-hard")
	flag.Float64Var(&cfg.stackLambda, "stack-lambda", 4, "pull of the signal weights towards their priors")
	flag.BoolVar(&verbose, "v", false, "print per-group validation tables")
	flag.Parse()
	if *data == "" {
		log.Fatal("-data is required")
	}
	switch scale {
	case "sqrt":
		cfg.scale = inject.ScaleSqrt
	case "none":
		cfg.scale = inject.ScaleNone
	default:
		log.Fatalf("-scale %q: want sqrt or none", scale)
	}
	start := time.Now()
	docs, err := load(*data, cfg)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("loaded %d records, %d features per record on average (%s)", len(docs), avgFeatures(docs), time.Since(start).Round(time.Millisecond))
	setWeights(docs, cfg.groupPow)
	assignFolds(docs, cfg.folds)

	// 1. grouped cross-validation of the learned model: out-of-fold logits
	for f := 0; f < cfg.folds; f++ {
		m := train(docs, cfg, func(d *doc) bool { return d.fold != f })
		for i := range docs {
			if docs[i].fold == f {
				docs[i].logit = m.dot(&docs[i])
			}
		}
	}
	log.Printf("grouped cross-validation done (%s)", time.Since(start).Round(time.Millisecond))

	// 2. combination layer, itself validated fold by fold
	for f := 0; f < cfg.folds; f++ {
		st := fitStack(docs, cfg.stackLambda, func(d *doc) bool { return d.fold != f })
		for i := range docs {
			if docs[i].fold == f {
				docs[i].score = st.score(docs[i].logit, docs[i].sig)
			}
		}
	}
	stack := fitStack(docs, cfg.stackLambda, func(*doc) bool { return true })

	// 3. threshold from the validated scores
	thr := chooseThreshold(docs, cfg.maxFPR, cfg.maxHardFPR)
	report(os.Stdout, docs, thr, verbose)

	// 4. final model on all data
	final := train(docs, cfg, func(*doc) bool { return true })
	model := &inject.Model{
		Bits: cfg.bits, FS: cfg.fs, Scale: cfg.scale, Window: cfg.window,
		Bias: float32(final.bias), Weights: final.w,
		LogitWeight: float32(stack.a), StackBias: float32(stack.c), Threshold: float32(thr),
	}
	for i := range model.SigWeights {
		model.SigWeights[i] = float32(stack.b[i])
	}
	fmt.Printf("\ncombination layer: score = sigmoid(%.4f + %.4f*logit + signal weights)\n", stack.c, stack.a)
	for i, n := range inject.SignalNames {
		fmt.Printf("  %-22s %+.4f (prior %+.2f, fired on %d train records)\n", n, stack.b[i], signalPrior[i], countSig(docs, inject.Signal(1)<<i))
	}
	fmt.Printf("chosen threshold: %.4f\n", thr)
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			log.Fatal(err)
		}
		if _, err := model.WriteTo(f); err != nil {
			log.Fatal(err)
		}
		if err := f.Close(); err != nil {
			log.Fatal(err)
		}
		log.Printf("wrote %s", *out)
	}
	log.Printf("done in %s", time.Since(start).Round(time.Millisecond))
}

func load(path string, cfg config) ([]doc, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	scratch := inject.GetScratch()
	counts := map[uint32]float32{}
	var docs []doc
	line := 0
	for sc.Scan() {
		line++
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		res := inject.Analyze(nil, r.Text, scratch)
		clear(counts)
		total := 0
		inject.Features(cfg.fs, cfg.bits, scratch.Norm(), scratch.Tokens(), func(idx uint32, _ int32) {
			counts[idx]++
			total++
		})
		d := doc{y: float64(r.Label), sig: res.Signals, kind: r.Kind, length: len(r.Text)}
		d.path, _, _ = strings.Cut(r.Source, "#")
		d.repo, _, _ = strings.Cut(d.path, ":")
		d.idx = make([]uint32, 0, len(counts))
		for k := range counts {
			d.idx = append(d.idx, k)
		}
		sort.Slice(d.idx, func(a, b int) bool { return d.idx[a] < d.idx[b] })
		d.val = make([]float32, len(d.idx))
		norm := float32(1)
		if cfg.scale == inject.ScaleSqrt && total > 0 {
			norm = float32(1 / math.Sqrt(float64(total)))
		}
		for i, k := range d.idx {
			d.val[i] = counts[k] * norm
		}
		docs = append(docs, d)
	}
	return docs, sc.Err()
}

func avgFeatures(docs []doc) int {
	n := 0
	for i := range docs {
		n += len(docs[i].idx)
	}
	return n / max(1, len(docs))
}

// setWeights gives each record the weight (size of its source-path group)
// ^ -pow, then rescales so each class has total weight equal to half the
// number of records: templated sources with hundreds of near-copies count
// less, and the classes are balanced.
func setWeights(docs []doc, pow float64) {
	size := map[string]int{}
	for i := range docs {
		size[docs[i].path]++
	}
	var tot [2]float64
	for i := range docs {
		docs[i].w = math.Pow(float64(size[docs[i].path]), -pow)
		tot[int(docs[i].y)] += docs[i].w
	}
	for i := range docs {
		docs[i].w *= float64(len(docs)) / 2 / tot[int(docs[i].y)]
	}
}

// assignFolds puts every source repository in one fold, largest first, each
// into the fold with the fewest records so far.
func assignFolds(docs []doc, k int) {
	size := map[string]int{}
	for i := range docs {
		size[docs[i].repo]++
	}
	repos := make([]string, 0, len(size))
	for r := range size {
		repos = append(repos, r)
	}
	sort.Slice(repos, func(a, b int) bool {
		if size[repos[a]] != size[repos[b]] {
			return size[repos[a]] > size[repos[b]]
		}
		return repos[a] < repos[b]
	})
	load := make([]int, k)
	fold := map[string]int{}
	for _, r := range repos {
		best := 0
		for f := 1; f < k; f++ {
			if load[f] < load[best] {
				best = f
			}
		}
		fold[r] = best
		load[best] += size[r]
	}
	for i := range docs {
		docs[i].fold = fold[docs[i].repo]
	}
}

type lr struct {
	w    []float32
	bias float64
}

func (m *lr) dot(d *doc) float64 {
	z := m.bias
	for i, k := range d.idx {
		z += float64(m.w[k]) * float64(d.val[i])
	}
	return z
}

// train fits logistic regression with AdaGrad and an L2 penalty on the
// records selected by use, in an order shuffled by the fixed seed.
func train(docs []doc, cfg config, use func(*doc) bool) *lr {
	n := 1 << cfg.bits
	m := &lr{w: make([]float32, n)}
	g2 := make([]float32, n)
	var bg2 float64
	var order []int
	for i := range docs {
		if use(&docs[i]) {
			order = append(order, i)
		}
	}
	rng := rand.New(rand.NewSource(cfg.seed))
	for ep := 0; ep < cfg.epochs; ep++ {
		rng.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		for _, i := range order {
			d := &docs[i]
			p := inject.Sigmoid(m.dot(d))
			g := (p - d.y) * d.w
			for j, k := range d.idx {
				gi := float32(g)*d.val[j] + float32(cfg.l2)*m.w[k]
				g2[k] += gi * gi
				m.w[k] -= float32(cfg.lr) * gi / float32(math.Sqrt(float64(g2[k])+1e-8))
			}
			bg2 += g * g
			m.bias -= cfg.lr * g / math.Sqrt(bg2+1e-8)
		}
	}
	return m
}

// signalPrior is where each signal weight is pulled when the training data
// says little about it (rare signals keep roughly their prior). Signals that
// are rare in the training data but nearly always malicious get large
// priors.
var signalPrior = [inject.NumSignals]float64{
	2.0, // instruction_override
	1.0, // role_impersonation
	1.0, // exfiltration
	1.0, // tool_call_smuggling
	3.0, // hidden_text
	3.0, // encoded_instructions
	3.0, // markdown_exfiltration
	1.5, // delimiter_injection
	1.5, // jailbreak_persona
	1.0, // prompt_leak
}

type stacker struct {
	a, c float64
	b    [inject.NumSignals]float64
}

func (s *stacker) score(logit float64, sig inject.Signal) float64 {
	z := s.c + s.a*logit
	for i := range s.b {
		if sig&(1<<i) != 0 {
			z += s.b[i]
		}
	}
	return inject.Sigmoid(z)
}

// fitStack fits the combination layer by projected gradient descent on the
// weighted log-loss plus lambda*(b_i - prior_i)^2; signal weights are kept
// non-negative so adding a signal's words can never lower a score.
func fitStack(docs []doc, lambda float64, use func(*doc) bool) *stacker {
	s := &stacker{a: 1}
	s.b = signalPrior
	var wsum float64
	for i := range docs {
		if use(&docs[i]) {
			wsum += docs[i].w
		}
	}
	step := 0.5
	for it := 0; it < 3000; it++ {
		var ga, gc float64
		var gb [inject.NumSignals]float64
		for i := range docs {
			d := &docs[i]
			if !use(d) {
				continue
			}
			g := (s.score(d.logit, d.sig) - d.y) * d.w
			ga += g * d.logit
			gc += g
			for k := range gb {
				if d.sig&(1<<k) != 0 {
					gb[k] += g
				}
			}
		}
		s.a -= step * ga / wsum
		s.c -= step * gc / wsum
		for k := range s.b {
			gk := gb[k]/wsum + 2*lambda*(s.b[k]-signalPrior[k])/wsum
			s.b[k] = math.Max(0, s.b[k]-step*gk)
		}
	}
	return s
}

func countSig(docs []doc, s inject.Signal) int {
	n := 0
	for i := range docs {
		if docs[i].sig&s != 0 {
			n++
		}
	}
	return n
}

// chooseThreshold returns the lowest threshold at which the out-of-fold
// false-positive rate is at most maxFPR on all benign records and at most
// maxHard on benign-hard records.
func chooseThreshold(docs []doc, maxFPR, maxHard float64) float64 {
	var all, hard []float64
	for i := range docs {
		if docs[i].y == 0 {
			all = append(all, docs[i].score)
			if docs[i].kind == "benign-hard" {
				hard = append(hard, docs[i].score)
			}
		}
	}
	t1 := quantileThreshold(all, maxFPR)
	t2 := quantileThreshold(hard, maxHard)
	return math.Max(t1, t2)
}

// quantileThreshold returns the smallest threshold t (score >= t flags)
// such that the fraction of scores >= t is at most rate.
func quantileThreshold(scores []float64, rate float64) float64 {
	s := append([]float64(nil), scores...)
	sort.Sort(sort.Reverse(sort.Float64Slice(s)))
	allowed := int(math.Floor(rate * float64(len(s))))
	if allowed >= len(s) {
		return 0
	}
	// flag at most `allowed` records: threshold just above the next score
	t := math.Nextafter(s[allowed], 2)
	// round up to 3 decimals so the constant is readable
	return math.Ceil(t*1000) / 1000
}

type counts struct{ tp, fp, tn, fn int }

func (c counts) String() string {
	p := float64(c.tp) / math.Max(1, float64(c.tp+c.fp))
	r := float64(c.tp) / math.Max(1, float64(c.tp+c.fn))
	f := float64(c.fp) / math.Max(1, float64(c.fp+c.tn))
	return fmt.Sprintf("n=%5d  precision=%.3f recall=%.3f fpr=%.3f", c.tp+c.fp+c.tn+c.fn, p, r, f)
}

func tally(docs []doc, thr float64, key func(*doc) string) (map[string]*counts, []string) {
	m := map[string]*counts{}
	var keys []string
	for i := range docs {
		d := &docs[i]
		k := key(d)
		c := m[k]
		if c == nil {
			c = &counts{}
			m[k] = c
			keys = append(keys, k)
		}
		flag := d.score >= thr
		switch {
		case d.y == 1 && flag:
			c.tp++
		case d.y == 1:
			c.fn++
		case flag:
			c.fp++
		default:
			c.tn++
		}
	}
	sort.Strings(keys)
	return m, keys
}

func report(w io.Writer, docs []doc, thr float64, verbose bool) {
	fmt.Fprintf(w, "grouped %d-fold validation (folds by source repository), out-of-fold scores\n", maxFold(docs)+1)
	fmt.Fprintf(w, "AUC learned logit only: %.4f   combined: %.4f\n", auc(docs, func(d *doc) float64 { return d.logit }), auc(docs, func(d *doc) float64 { return d.score }))
	for _, rate := range []float64{0.01, 0.02, 0.05} {
		var neg []float64
		for i := range docs {
			if docs[i].y == 0 {
				neg = append(neg, docs[i].score)
			}
		}
		t := quantileThreshold(neg, rate)
		c, _ := tally(docs, t, func(*doc) string { return "all" })
		fmt.Fprintf(w, "  at FPR<=%.2f (t=%.3f): %s\n", rate, t, c["all"])
	}
	fmt.Fprintf(w, "at the chosen threshold %.3f:\n", thr)
	c, _ := tally(docs, thr, func(*doc) string { return "all" })
	fmt.Fprintf(w, "  %-60s %s\n", "all", c["all"])
	ck, keys := tally(docs, thr, func(d *doc) string { return d.kind })
	for _, k := range keys {
		fmt.Fprintf(w, "  kind=%-55s %s\n", k, ck[k])
	}
	cf, keys := tally(docs, thr, func(d *doc) string { return fmt.Sprintf("fold %d", d.fold) })
	for _, k := range keys {
		fmt.Fprintf(w, "  %-60s %s\n", k, cf[k])
	}
	cr, keys := tally(docs, thr, func(d *doc) string { return d.repo })
	for _, k := range keys {
		fmt.Fprintf(w, "  %-60s %s\n", k, cr[k])
	}
	if verbose {
		cp, keys := tally(docs, thr, func(d *doc) string { return d.path })
		for _, k := range keys {
			if x := cp[k]; x.tp+x.fn > 0 || x.fp > 0 {
				fmt.Fprintf(w, "  %-60.60s %s\n", k, x)
			}
		}
	}
}

func maxFold(docs []doc) int {
	m := 0
	for i := range docs {
		m = max(m, docs[i].fold)
	}
	return m
}

// auc is the area under the ROC curve of score, with ties counted half.
func auc(docs []doc, score func(*doc) float64) float64 {
	type p struct {
		s float64
		y float64
	}
	ps := make([]p, len(docs))
	for i := range docs {
		ps[i] = p{score(&docs[i]), docs[i].y}
	}
	sort.Slice(ps, func(a, b int) bool { return ps[a].s < ps[b].s })
	var pos, neg, sum float64
	for i := 0; i < len(ps); {
		j := i
		var np, nn float64
		for j < len(ps) && ps[j].s == ps[i].s {
			if ps[j].y == 1 {
				np++
			} else {
				nn++
			}
			j++
		}
		sum += np * (neg + nn/2)
		pos += np
		neg += nn
		i = j
	}
	return sum / math.Max(1, pos*neg)
}

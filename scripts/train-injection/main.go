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
	"bytes"
	"crypto/sha256"
	"encoding/hex"
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

// sparse holds the feature counts of one block of a record.
type sparse struct {
	idx []uint32
	val []float32
	n   float32 // total count
}

// doc is one training record turned into sparse features, block by block.
type doc struct {
	blocks []sparse
	y      float64
	w      float64 // sample weight
	sig    inject.Signal
	repo   string // owner/repo of the source: the validation group
	path   string // owner/repo:path, for the report
	kind   string
	fold   int
	// carrier is the owner/repo of the benign text an injection was placed
	// in (empty when none); cfold is that repository's fold (-1 if none).
	carrier string
	cfold   int
	logit   float64 // out-of-fold learned logit
	score   float64 // out-of-fold combined score
	length  int
	line    int
}

type config struct {
	bits       uint
	fs         inject.FeatureSet
	scale      uint8
	block      int
	warm       int
	epochs     int
	lr         float64
	l2         float64
	groupPow   float64
	groupBy    string
	hardWeight float64
	folds      int
	seed       int64
	maxFPR     float64
	maxHardFPR float64
	kappa      float64
}

// options are the command's flags beyond the training configuration.
type options struct {
	data, out, dump, dev string
	verbose              bool
}

func parseFlags() (options, config) {
	var (
		o     options
		cfg   config
		scale string
	)
	flag.StringVar(&o.data, "data", "", "training JSONL (text, label, source, kind)")
	flag.StringVar(&o.out, "out", "", "model file to write (nothing is written when empty)")
	flag.StringVar(&o.dump, "dump", "", "write out-of-fold scores, one JSON line per record, to this file")
	flag.UintVar(&cfg.bits, "bits", 16, "log2 of hash buckets")
	flag.BoolVar(&cfg.fs.Words, "words", true, "word unigram features")
	flag.BoolVar(&cfg.fs.Bigrams, "bigrams", true, "word bigram features")
	flag.IntVar(&cfg.fs.CharMin, "cmin", 4, "smallest character n-gram (0: none)")
	flag.IntVar(&cfg.fs.CharMax, "cmax", 4, "largest character n-gram")
	flag.StringVar(&scale, "scale", "sqrt", "feature scaling: sqrt or none")
	flag.IntVar(&cfg.block, "block", 256, "block size in normalised bytes; a scoring window is two blocks (0: whole text)")
	flag.IntVar(&cfg.warm, "warm", 2, "warm-up passes scoring whole records before window (multiple-instance) passes")
	flag.IntVar(&cfg.epochs, "epochs", 10, "passes over the data, warm-up included")
	flag.Float64Var(&cfg.lr, "lr", 0.2, "AdaGrad learning rate")
	flag.Float64Var(&cfg.l2, "l2", 1e-4, "L2 penalty per update")
	flag.Float64Var(&cfg.groupPow, "group-pow", 0.5, "sample weight = (size of the record's weighting group)^-pow, per class")
	flag.StringVar(&cfg.groupBy, "group-by", "repo", "weighting group: path (owner/repo:path) or repo")
	flag.Float64Var(&cfg.hardWeight, "hard-weight", 1, "extra weight of benign-hard records")
	flag.StringVar(&o.dev, "dev", "", "labelled JSONL to report on at the end (never used for any choice)")
	flag.IntVar(&cfg.folds, "folds", 5, "grouped cross-validation folds")
	flag.Int64Var(&cfg.seed, "seed", 1, "random seed")
	flag.Float64Var(&cfg.maxFPR, "max-fpr", 0.01, "threshold: highest validated false-positive rate on all benign")
	flag.Float64Var(&cfg.maxHardFPR, "max-hard-fpr", 0.03, "threshold: highest validated false-positive rate on benign-hard")
	flag.Float64Var(&cfg.kappa, "kappa", 5, "strength, in records, of each signal probability's prior")
	flag.BoolVar(&o.verbose, "v", false, "print per-group validation tables")
	flag.Parse()
	if o.data == "" {
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
	return o, cfg
}

func main() {
	o, cfg := parseFlags()
	start := time.Now()
	if sum, err := fileSHA256(o.data); err == nil {
		log.Printf("data %s sha256 %s", o.data, sum)
	}
	docs, err := load(o.data, cfg)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("loaded %d records, %d features per record on average (%s)", len(docs), avgFeatures(docs), time.Since(start).Round(time.Millisecond))
	setWeights(docs, cfg)
	assignFolds(docs, cfg.folds)

	crossValidate(docs, cfg)
	log.Printf("grouped cross-validation done (%s)", time.Since(start).Round(time.Millisecond))
	if o.verbose {
		printFoldMeans(docs)
	}
	comb := validateCombiner(docs, cfg)
	if o.dump != "" {
		if err := writeDump(o.dump, docs); err != nil {
			log.Fatal(err)
		}
	}
	thr := chooseThreshold(docs, cfg.maxFPR, cfg.maxHardFPR)
	report(os.Stdout, docs, thr, o.verbose)

	final := train(docs, cfg, func(*doc) bool { return true })
	model := &inject.Model{
		Bits: cfg.bits, FS: cfg.fs, Scale: cfg.scale, Block: cfg.block,
		Bias: float32(final.bias), Weights: final.w,
		PlattA: float32(comb.a), PlattB: float32(comb.b), SigProb: comb.q, Threshold: float32(thr),
	}
	printCombination(docs, comb, thr)
	if err := checkParity(model, final, docs, o.data, cfg.scale); err != nil {
		log.Fatal(err)
	}
	if o.out != "" {
		if err := writeModel(o.out, model); err != nil {
			log.Fatal(err)
		}
		log.Printf("wrote %s", o.out)
	}
	if o.dev != "" {
		if err := devReport(o.dev, model, thr); err != nil {
			log.Fatal(err)
		}
	}
	log.Printf("done in %s", time.Since(start).Round(time.Millisecond))
}

// crossValidate sets every record's out-of-fold learned logit. A fold's
// model is trained on nothing from the held-out repositories, neither as
// source nor as carrier of an injection.
func crossValidate(docs []doc, cfg config) {
	for f := 0; f < cfg.folds; f++ {
		m := train(docs, cfg, func(d *doc) bool { return d.fold != f && d.cfold != f })
		for i := range docs {
			if docs[i].fold == f {
				docs[i].logit, _ = m.logit(&docs[i], cfg.scale, false)
			}
		}
	}
}

// validateCombiner sets every record's out-of-fold combined score, with
// the combination layer itself fitted fold by fold, and returns the layer
// fitted on all records.
func validateCombiner(docs []doc, cfg config) *combiner {
	for f := 0; f < cfg.folds; f++ {
		st := fitCombiner(docs, cfg.kappa, func(d *doc) bool { return d.fold != f && d.cfold != f })
		for i := range docs {
			if docs[i].fold == f {
				docs[i].score = st.score(docs[i].logit, docs[i].sig)
			}
		}
	}
	return fitCombiner(docs, cfg.kappa, func(*doc) bool { return true })
}

// printFoldMeans prints, per fold, repository and label, the mean
// out-of-fold logit and the share above zero.
func printFoldMeans(docs []doc) {
	means := map[string][3]float64{}
	for i := range docs {
		d := &docs[i]
		k := fmt.Sprintf("f%d %s y=%v", d.fold, d.repo, d.y)
		v := means[k]
		v[0]++
		v[1] += d.logit
		if d.logit > 0 {
			v[2]++
		}
		means[k] = v
	}
	var ks []string
	for k := range means {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	for _, k := range ks {
		v := means[k]
		fmt.Printf("  %-70s n=%5.0f mean logit %+.2f  >0: %.2f\n", k, v[0], v[1]/v[0], v[2]/v[0])
	}
}

func printCombination(docs []doc, comb *combiner, thr float64) {
	fmt.Printf("\ncombination: p = sigmoid(%.4f*logit %+.4f); score = 1 - (1-p)*prod(1-q[signal])\n", comb.a, comb.b)
	for i, n := range inject.SignalNames {
		fmt.Printf("  %-22s q=%.3f (prior %.2f, fired on %d train records)\n", n, comb.q[i], signalPrior[i], countSig(docs, inject.Signal(1)<<i))
	}
	fmt.Printf("chosen threshold: %.4f\n", thr)
}

func writeModel(path string, model *inject.Model) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := model.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
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
	var counts []map[uint32]float32
	var docs []doc
	line := 0
	for sc.Scan() {
		line++
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		res := inject.Analyze(nil, r.Text, scratch)
		d := doc{y: float64(r.Label), sig: res.Signals, kind: r.Kind, length: len(r.Text), line: line}
		d.path, _, _ = strings.Cut(r.Source, "#")
		d.repo, _, _ = strings.Cut(d.path, ":")
		if _, c, ok := strings.Cut(r.Source, "carrier="); ok {
			d.carrier, _, _ = strings.Cut(c, ":")
		}
		norm := scratch.Norm()
		half := cfg.block
		if half <= 0 {
			half = len(norm) + 1
		}
		nb := max(1, (len(norm)+half-1)/half)
		for len(counts) < nb {
			counts = append(counts, map[uint32]float32{})
		}
		for b := 0; b < nb; b++ {
			clear(counts[b])
		}
		inject.Features(cfg.fs, cfg.bits, norm, scratch.Tokens(), func(idx uint32, pos int32) {
			counts[int(pos)/half][idx]++
		})
		d.blocks = make([]sparse, nb)
		for b := 0; b < nb; b++ {
			sp := &d.blocks[b]
			for k := range counts[b] {
				sp.idx = append(sp.idx, k)
			}
			sort.Slice(sp.idx, func(x, y int) bool { return sp.idx[x] < sp.idx[y] })
			sp.val = make([]float32, len(sp.idx))
			for i, k := range sp.idx {
				sp.val[i] = counts[b][k]
				sp.n += counts[b][k]
			}
		}
		docs = append(docs, d)
	}
	return docs, sc.Err()
}

func avgFeatures(docs []doc) int {
	n := 0
	for i := range docs {
		for _, b := range docs[i].blocks {
			n += len(b.idx)
		}
	}
	return n / max(1, len(docs))
}

// setWeights gives each record the weight (size of its source-path group)
// ^ -pow, then rescales so each class has total weight equal to half the
// number of records: templated sources with hundreds of near-copies count
// less, and the classes are balanced.
func setWeights(docs []doc, cfg config) {
	key := func(d *doc) string {
		if cfg.groupBy == "repo" {
			return d.repo
		}
		return d.path
	}
	size := map[string]int{}
	for i := range docs {
		size[key(&docs[i])]++
	}
	var tot [2]float64
	for i := range docs {
		d := &docs[i]
		d.w = math.Pow(float64(size[key(d)]), -cfg.groupPow)
		if d.kind == "benign-hard" {
			d.w *= cfg.hardWeight
		}
		tot[int(d.y)] += d.w
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
		docs[i].cfold = -1
		if f, ok := fold[docs[i].carrier]; ok && docs[i].carrier != "" {
			docs[i].cfold = f
		}
	}
}

type lr struct {
	w    []float32
	bias float64
}

func (m *lr) blockSum(b *sparse) float64 {
	var z float64
	for i, k := range b.idx {
		z += float64(m.w[k]) * float64(b.val[i])
	}
	return z
}

// logit returns the record's logit and the first block of the window that
// gave it (-1 when the whole record is one window). whole scores the record
// as one window whatever its length (the warm-up objective).
func (m *lr) logit(d *doc, scale uint8, whole bool) (float64, int) {
	if len(d.blocks) == 1 || whole {
		var s, n float64
		for i := range d.blocks {
			s += m.blockSum(&d.blocks[i])
			n += float64(d.blocks[i].n)
		}
		return m.bias + s*scaleOf(scale, n), -1
	}
	best, arg := math.Inf(-1), 0
	prev := m.blockSum(&d.blocks[0])
	for j := 1; j < len(d.blocks); j++ {
		cur := m.blockSum(&d.blocks[j])
		z := m.bias + (prev+cur)*scaleOf(scale, float64(d.blocks[j-1].n+d.blocks[j].n))
		if z > best {
			best, arg = z, j-1
		}
		prev = cur
	}
	return best, arg
}

func scaleOf(scale uint8, n float64) float64 {
	if scale == inject.ScaleSqrt && n > 0 {
		return 1 / math.Sqrt(n)
	}
	return 1
}

// train fits logistic regression with AdaGrad and an L2 penalty on the
// records selected by use, in an order shuffled by the fixed seed. The first
// cfg.warm passes score each record as a whole; the others score it by its
// best window and update only that window (multiple-instance learning).
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
	update := func(b *sparse, g float32) {
		for j, k := range b.idx {
			gi := g*b.val[j] + float32(cfg.l2)*m.w[k]
			g2[k] += gi * gi
			m.w[k] -= float32(cfg.lr) * gi / float32(math.Sqrt(float64(g2[k])+1e-8))
		}
	}
	for ep := 0; ep < cfg.epochs; ep++ {
		whole := ep < cfg.warm
		rng.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		for _, i := range order {
			d := &docs[i]
			z, arg := m.logit(d, cfg.scale, whole)
			g := (inject.Sigmoid(z) - d.y) * d.w
			if arg < 0 {
				var cnt float64
				for b := range d.blocks {
					cnt += float64(d.blocks[b].n)
				}
				gs := float32(g * scaleOf(cfg.scale, cnt))
				for b := range d.blocks {
					update(&d.blocks[b], gs)
				}
			} else {
				gs := float32(g * scaleOf(cfg.scale, float64(d.blocks[arg].n+d.blocks[arg+1].n)))
				update(&d.blocks[arg], gs)
				update(&d.blocks[arg+1], gs)
			}
			bg2 += g * g
			m.bias -= cfg.lr * g / math.Sqrt(bg2+1e-8)
		}
	}
	return m
}

// signalPrior is each signal's prior probability of being right when it
// fires: what its estimate falls back to when the training data says
// little about it (rare signals keep roughly their prior).
var signalPrior = [inject.NumSignals]float64{
	0.90, // instruction_override
	0.80, // role_impersonation
	0.70, // exfiltration
	0.60, // tool_call_smuggling
	0.90, // hidden_text
	0.90, // encoded_instructions
	0.90, // markdown_exfiltration
	0.80, // delimiter_injection
	0.85, // jailbreak_persona
	0.80, // prompt_leak
	0.80, // embedded_request
	0.90, // ai_addressed
	0.90, // adversarial_suffix
}

// combiner is the calibration of the learned logit (Platt scaling) and the
// probability of each signal.
type combiner struct {
	a, b float64
	q    [inject.NumSignals]float32
}

func (c *combiner) score(logit float64, sig inject.Signal) float64 {
	return inject.NoisyOr(inject.Sigmoid(c.a*logit+c.b), sig, &c.q)
}

// fitCombiner fits Platt scaling of the out-of-fold logits (weighted
// log-loss, Newton's method) and estimates each signal's probability as its
// weighted precision on the selected records, smoothed towards its prior
// with the strength of kappa records.
func fitCombiner(docs []doc, kappa float64, use func(*doc) bool) *combiner {
	// Platt scaling by gradient descent on the standardised logit
	var wsum, mu, sq float64
	for i := range docs {
		if use(&docs[i]) {
			wsum += docs[i].w
			mu += docs[i].w * docs[i].logit
			sq += docs[i].w * docs[i].logit * docs[i].logit
		}
	}
	mu /= wsum
	sd := math.Sqrt(math.Max(sq/wsum-mu*mu, 1e-12))
	c := &combiner{}
	var a, b float64 = 1, 0
	for it := 0; it < 2000; it++ {
		var ga, gb float64
		for i := range docs {
			d := &docs[i]
			if !use(d) {
				continue
			}
			x := (d.logit - mu) / sd
			g := (inject.Sigmoid(a*x+b) - d.y) * d.w
			ga += g * x
			gb += g
		}
		a -= 2 * ga / wsum
		b -= 2 * gb / wsum
	}
	c.a, c.b = a/sd, b-a*mu/sd
	for k := range c.q {
		var pos, all float64
		for i := range docs {
			d := &docs[i]
			if use(d) && d.sig&(1<<k) != 0 {
				all += d.w
				pos += d.w * d.y
			}
		}
		c.q[k] = float32((pos + kappa*signalPrior[k]) / (all + kappa))
	}
	return c
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
	for _, rate := range []float64{0.02, 0.05} {
		lm, lh := macroRecall(docs, rate, func(d *doc) float64 { return d.logit })
		cm, ch := macroRecall(docs, rate, func(d *doc) float64 { return d.score })
		fmt.Fprintf(w, "  macro recall over injection repos at pooled FPR<=%.2f: logit %.3f (hard fpr %.3f)  combined %.3f (hard fpr %.3f)\n", rate, lm, lh, cm, ch)
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

func writeDump(path string, docs []doc) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	for i := range docs {
		d := &docs[i]
		if err := enc.Encode(map[string]any{"line": d.line, "label": d.y, "kind": d.kind, "path": d.path,
			"fold": d.fold, "logit": d.logit, "score": d.score, "signals": d.sig.Names(nil)}); err != nil {
			return err
		}
	}
	return f.Close()
}

// macroRecall thresholds score at the pooled benign false-positive rate
// rate and returns the mean recall over source repositories holding
// injections, and the false-positive rate on benign-hard records.
func macroRecall(docs []doc, rate float64, score func(*doc) float64) (float64, float64) {
	var neg []float64
	for i := range docs {
		if docs[i].y == 0 {
			neg = append(neg, score(&docs[i]))
		}
	}
	t := quantileThreshold(neg, rate)
	hit, tot := map[string]float64{}, map[string]float64{}
	var hardFP, hard float64
	for i := range docs {
		d := &docs[i]
		s := score(d)
		if d.y == 1 {
			tot[d.repo]++
			if s >= t {
				hit[d.repo]++
			}
		} else if d.kind == "benign-hard" {
			hard++
			if s >= t {
				hardFP++
			}
		}
	}
	var sum float64
	for r, n := range tot {
		sum += hit[r] / n
	}
	return sum / float64(len(tot)), hardFP / math.Max(1, hard)
}

// devReport prints precision, recall and FPR of model on a labelled file at
// the chosen threshold, overall and per kind. It is a report only.
func devReport(path string, m *inject.Model, thr float64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	scratch := inject.GetScratch()
	var docs []doc
	for sc.Scan() {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return err
		}
		res := inject.Analyze(m, r.Text, scratch)
		d := doc{y: float64(r.Label), kind: r.Kind, logit: res.Logit, sig: res.Signals}
		d.path, _, _ = strings.Cut(r.Source, "#")
		d.score = m.Combine(res.Logit, res.Signals)
		docs = append(docs, d)
	}
	fmt.Printf("\nreport on %s (not used for any choice)\n", path)
	for _, t := range []float64{thr, 0.5, 0.7, 0.9} {
		c, _ := tally(docs, t, func(*doc) string { return "all" })
		ck, keys := tally(docs, t, func(d *doc) string { return d.kind })
		fmt.Printf("  t=%.3f %s |", t, c["all"])
		for _, k := range keys {
			x := ck[k]
			if k == "benign-hard" {
				fmt.Printf(" %s fpr=%.3f", k, float64(x.fp)/math.Max(1, float64(x.fp+x.tn)))
			} else {
				fmt.Printf(" %s rec=%.3f", k, float64(x.tp)/math.Max(1, float64(x.tp+x.fn)))
			}
		}
		fmt.Println()
	}
	return sc.Err()
}

// checkParity writes the model to memory, loads it back the way the
// detector does, and checks that the run-time scorer gives the trainer's
// logits (up to int16 quantisation) on the first records of the data.
func checkParity(model *inject.Model, final *lr, docs []doc, path string, scale uint8) error {
	var buf bytes.Buffer
	if _, err := model.WriteTo(&buf); err != nil {
		return err
	}
	loaded, err := inject.Load(buf.Bytes())
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	scratch := inject.GetScratch()
	var worst float64
	for i := 0; i < 500 && i < len(docs) && sc.Scan(); i++ {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return err
		}
		got := inject.Analyze(loaded, r.Text, scratch).Logit
		want, _ := final.logit(&docs[i], scale, false)
		worst = math.Max(worst, math.Abs(got-want))
	}
	log.Printf("run-time scorer vs trainer on 500 records: max |logit difference| = %.2g", worst)
	if worst > 0.05 {
		return fmt.Errorf("run-time scorer disagrees with the trainer by %.3g", worst)
	}
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

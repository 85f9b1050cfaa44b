package content

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"testing"
)

// devSetPath is the labelled development set, relative to this package
// (the data lives beside the repository, not in it).
const devSetPath = "../../../shared/data/injection-dev.jsonl"

type devRecord struct {
	Text   string `json:"text"`
	Label  int    `json:"label"`
	Source string `json:"source"`
	Kind   string `json:"kind"`
}

func loadDevSet(t testing.TB) []devRecord {
	t.Helper()
	f, err := os.Open(devSetPath)
	if os.IsNotExist(err) {
		t.Skipf("dev set %s not present", devSetPath)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []devRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var r devRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: %v", devSetPath, err)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// confusion counts outcomes at a threshold.
type confusion struct{ tp, fp, tn, fn int }

func (c *confusion) add(label int, flagged bool) {
	switch {
	case label == 1 && flagged:
		c.tp++
	case label == 1:
		c.fn++
	case flagged:
		c.fp++
	default:
		c.tn++
	}
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func (c confusion) precision() float64 { return ratio(c.tp, c.tp+c.fp) }
func (c confusion) recall() float64    { return ratio(c.tp, c.tp+c.fn) }
func (c confusion) fpr() float64       { return ratio(c.fp, c.fp+c.tn) }

// cell prints a metric, or "-" where it is undefined for the row (recall
// of a benign-only group, FPR of an injection-only group).
func cell(num, den int) string {
	if den == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f", float64(num)/float64(den))
}

func (c confusion) row(name string) string {
	return fmt.Sprintf("| %s | %d | %d | %s | %s | %s |", name, c.tp+c.fn, c.fp+c.tn,
		cell(c.tp, c.tp+c.fp), cell(c.tp, c.tp+c.fn), cell(c.fp, c.fp+c.tn))
}

type devResult struct {
	overall confusion
	byKind  map[string]*confusion
	bySrc   map[string]*confusion
}

func evalDev(d *Detector, recs []devRecord, thr float64) devResult {
	res := devResult{byKind: map[string]*confusion{}, bySrc: map[string]*confusion{}}
	for _, r := range recs {
		score, _, _ := d.Injection(r.Text)
		flagged := score >= thr
		res.overall.add(r.Label, flagged)
		src, _, _ := strings.Cut(r.Source, "#")
		for _, mk := range []struct {
			m map[string]*confusion
			k string
		}{{res.byKind, r.Kind}, {res.bySrc, src}} {
			if mk.m[mk.k] == nil {
				mk.m[mk.k] = &confusion{}
			}
			mk.m[mk.k].add(r.Label, flagged)
		}
	}
	return res
}

func writeTable(w io.Writer, title string, m map[string]*confusion) {
	fmt.Fprintf(w, "\n| %s | injections | benign | precision | recall | FPR |\n|---|---:|---:|---:|---:|---:|\n", title)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintln(w, m[k].row(k))
	}
}

// TestDevEval holds the detector to the targets on the dev set:
// recall >= 0.90 on injections and FPR < 0.05 on benign at DefaultThreshold.
func TestDevEval(t *testing.T) {
	recs := loadDevSet(t)
	d, err := New()
	if err != nil {
		t.Fatal(err)
	}
	res := evalDev(d, recs, DefaultThreshold)
	c := res.overall
	t.Logf("dev set at %.3f: precision %.3f recall %.3f FPR %.3f", DefaultThreshold, c.precision(), c.recall(), c.fpr())
	if c.recall() < 0.90 {
		t.Errorf("recall %.3f < 0.90", c.recall())
	}
	if c.fpr() >= 0.05 {
		t.Errorf("FPR %.3f >= 0.05", c.fpr())
	}
}

// TestDevReport prints the dev-set tables of docs/CONTENT_SECURITY.md:
//
//	go test ./internal/content -run TestDevReport -v
func TestDevReport(t *testing.T) {
	recs := loadDevSet(t)
	d, err := New()
	if err != nil {
		t.Fatal(err)
	}
	res := evalDev(d, recs, DefaultThreshold)
	var b strings.Builder
	fmt.Fprintf(&b, "dev set %s, %d records, DefaultThreshold %.3f\n", devSetPath, len(recs), DefaultThreshold)
	writeTable(&b, "overall", map[string]*confusion{"all": &res.overall})
	writeTable(&b, "kind", res.byKind)
	writeTable(&b, "source", res.bySrc)
	fmt.Fprintf(&b, "\nthreshold sweep (for reading only; the default comes from grouped validation)\n")
	for _, thr := range []float64{0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9} {
		c := evalDev(d, recs, thr).overall
		fmt.Fprintf(&b, "  %.2f: precision %.3f recall %.3f FPR %.3f\n", thr, c.precision(), c.recall(), c.fpr())
	}
	t.Log("\n" + b.String())
}

package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ErrBroken is returned (wrapped) by Verify when any chain is broken.
var ErrBroken = errors.New("audit trail broken")

// BreakKind classifies the first break of a chain.
type BreakKind string

const (
	// BreakEdited: a record's bytes do not hash to its hash (a field or the
	// hash itself was changed), or its prev_hash does not match the record
	// before it (that one was changed and re-hashed, or this one replaced).
	BreakEdited BreakKind = "edited"
	// BreakDeleted: seq jumps forward and the missing seqs appear nowhere
	// later in the chain: records (or whole files) were removed.
	BreakDeleted BreakKind = "deleted"
	// BreakReordered: seq goes backwards, or jumps forward over a seq that
	// appears later: records were moved or duplicated.
	BreakReordered BreakKind = "reordered"
	// BreakTruncated: a file ends in a partial line. After a crash this is
	// the record being written when the process died (never fsynced, so in
	// durable mode never answered); otherwise the file was cut.
	BreakTruncated BreakKind = "truncated"
	// BreakMalformed: a line is not a hashed record of this chain.
	BreakMalformed BreakKind = "malformed"
)

// Break is where and how a chain first fails to verify.
type Break struct {
	Kind    BreakKind
	ChainID string
	File    string
	Line    int // 1-based
	Seq     uint64
	Detail  string
}

func (b *Break) Error() string {
	seq := ""
	if b.Seq > 0 {
		seq = fmt.Sprintf(" (seq %d)", b.Seq)
	}
	return fmt.Sprintf("%s at %s:%d%s: %s", b.Kind, b.File, b.Line, seq, b.Detail)
}

// ChainReport sums up one chain as far as it verified.
type ChainReport struct {
	ID       string
	Files    []string // in chain order
	Records  int      // records verified before any break
	FirstSeq uint64   // > 1 when earlier files were not given
	LastSeq  uint64
	LastHash string // anchor: compare with a copy kept elsewhere
	Break    *Break
}

// Report is the outcome of Verify.
type Report struct {
	Files   int
	Records int
	Chains  []ChainReport // sorted by chain id
}

// OK reports whether no chain broke.
func (r *Report) OK() bool { return r.FirstBreak() == nil }

// FirstBreak returns the first break in chain-id order, or nil.
func (r *Report) FirstBreak() *Break {
	for _, c := range r.Chains {
		if c.Break != nil {
			return c.Break
		}
	}
	return nil
}

// Verify checks the hash chains in paths (files, or directories whose
// *.jsonl files are taken). Files are grouped by the chain id of their
// records and ordered by their first seq, so names and argument order do
// not matter. Each chain is checked separately up to its first break. The
// error wraps ErrBroken when a chain broke, and is an I/O error when a file
// could not be read.
func Verify(paths ...string) (Report, error) {
	files, err := expandPaths(paths)
	if err != nil {
		return Report{}, err
	}
	chains, err := groupChains(files)
	if err != nil {
		return Report{}, err
	}
	rep := Report{Files: len(files)}
	for _, c := range chains {
		cr, err := verifyChain(c)
		if err != nil {
			return rep, err
		}
		rep.Records += cr.Records
		rep.Chains = append(rep.Chains, cr)
	}
	if b := rep.FirstBreak(); b != nil {
		return rep, fmt.Errorf("%w: chain %s: %w", ErrBroken, b.ChainID, b)
	}
	return rep, nil
}

func expandPaths(paths []string) ([]string, error) {
	if len(paths) == 0 {
		return nil, errors.New("verify: no files given")
	}
	var files []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		if !fi.IsDir() {
			files = append(files, p)
			continue
		}
		m, err := filepath.Glob(filepath.Join(p, "*"+fileSuffix))
		if err != nil {
			return nil, fmt.Errorf("verify: list %s: %w", p, err)
		}
		files = append(files, m...)
	}
	slices.Sort(files)
	return slices.Compact(files), nil
}

// chainFiles is one chain's files in order.
type chainFiles struct {
	id    string
	files []fileHead
}

type fileHead struct {
	path     string
	firstSeq uint64
}

// groupChains reads each file's first record to learn its chain and seq.
// A file whose first line is unreadable forms a chain of its own, named
// after the file, so its break is reported rather than hidden.
func groupChains(files []string) ([]chainFiles, error) {
	byID := map[string]*chainFiles{}
	for _, f := range files {
		id, seq, empty, err := peekFile(f)
		if err != nil {
			return nil, err
		}
		if empty {
			continue
		}
		c := byID[id]
		if c == nil {
			c = &chainFiles{id: id}
			byID[id] = c
		}
		c.files = append(c.files, fileHead{f, seq})
	}
	var out []chainFiles
	for _, c := range byID {
		slices.SortStableFunc(c.files, func(a, b fileHead) int { return cmpU64(a.firstSeq, b.firstSeq) })
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b chainFiles) int { return strings.Compare(a.id, b.id) })
	return out, nil
}

func peekFile(path string) (chain string, seq uint64, empty bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, false, fmt.Errorf("verify: %w", err)
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadBytes('\n')
	if len(line) == 0 && errors.Is(err, io.EOF) {
		return "", 0, true, nil
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return "", 0, false, fmt.Errorf("verify: read %s: %w", path, err)
	}
	var h recHead
	if json.Unmarshal(bytes.TrimSuffix(line, []byte{'\n'}), &h) == nil && h.ChainID != "" {
		return h.ChainID, h.Seq, false, nil
	}
	// Unreadable first line (say, a file holding only a torn write): place
	// it by its name, or in a chain of its own, so the break is reported.
	if id, seq, ok := parseSegmentName(filepath.Base(path)); ok {
		return id, seq, false, nil
	}
	return "?" + path, 0, false, nil
}

// recHead is the part of a record the chain check needs.
type recHead struct {
	ChainID  string `json:"chain_id"`
	Seq      uint64 `json:"seq"`
	PrevHash string `json:"prev_hash"`
}

// chainPos is one line of a chain.
type chainPos struct {
	file string
	line int
	raw  []byte // without newline
	torn bool   // last bytes of a file, no newline
}

// scanChain calls fn for each line of the chain's files from (fromFile,
// fromLine) on, until fn returns false.
func scanChain(files []fileHead, fromFile, fromLine int, fn func(fi int, p chainPos) bool) error {
	for fi := fromFile; fi < len(files); fi++ {
		cont, err := scanFile(files[fi].path, func(p chainPos) bool {
			if fi == fromFile && p.line < fromLine {
				return true
			}
			return fn(fi, p)
		})
		if err != nil || !cont {
			return err
		}
	}
	return nil
}

func scanFile(path string, fn func(chainPos) bool) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("verify: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 256<<10)
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			torn := line[len(line)-1] != '\n'
			if !fn(chainPos{file: path, line: n, raw: bytes.TrimSuffix(line, []byte{'\n'}), torn: torn}) {
				return false, nil
			}
		}
		if errors.Is(err, io.EOF) {
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("verify: read %s: %w", path, err)
		}
	}
}

// verifyChain walks one chain and stops at its first break.
func verifyChain(c chainFiles) (ChainReport, error) {
	cr := ChainReport{ID: c.id}
	for _, f := range c.files {
		cr.Files = append(cr.Files, f.path)
	}
	var brk *Break
	var at struct{ file, line int }
	err := scanChain(c.files, 0, 0, func(fi int, p chainPos) bool {
		h, b := checkLine(c.id, p, &cr)
		if b == nil {
			cr.Records++
			cr.LastSeq, cr.LastHash = h.Seq, hashOf(p.raw)
			if cr.FirstSeq == 0 {
				cr.FirstSeq = h.Seq
			}
			return true
		}
		brk, at.file, at.line = b, fi, p.line
		return false
	})
	if err != nil {
		return cr, err
	}
	if brk != nil && brk.Kind == BreakDeleted {
		// A forward jump is a reorder if the skipped seq turns up later.
		if found, err := seqLater(c.files, at.file, at.line, cr.LastSeq+1); err != nil {
			return cr, err
		} else if found {
			brk.Kind = BreakReordered
			brk.Detail += fmt.Sprintf("; seq %d appears later: records were moved", cr.LastSeq+1)
		}
	}
	cr.Break = brk
	return cr, nil
}

// checkLine verifies one line against the chain so far.
func checkLine(chain string, p chainPos, cr *ChainReport) (recHead, *Break) {
	brk := func(k BreakKind, seq uint64, format string, a ...any) *Break {
		return &Break{Kind: k, ChainID: chain, File: p.file, Line: p.line, Seq: seq, Detail: fmt.Sprintf(format, a...)}
	}
	var h recHead
	if p.torn {
		_ = json.Unmarshal(p.raw, &h)
		return h, brk(BreakTruncated, 0, "file ends in a partial line of %d bytes (no newline): the record being written when the process stopped (a crash before fsync; pdp serve moves it to a .torn file on restart), or the file was cut", len(p.raw))
	}
	body, stored, ok := splitLine(p.raw)
	if !ok || json.Unmarshal(body, &h) != nil || h.Seq == 0 {
		return h, brk(BreakMalformed, 0, "not a hashed audit record")
	}
	if got := hashHex(body); got != stored {
		return h, brk(BreakEdited, h.Seq, "record does not match its hash (content or hash changed): stored %s, computed %s", short(stored), short(got))
	}
	if h.ChainID != chain {
		return h, brk(BreakMalformed, h.Seq, "record of chain %q inside chain %q", h.ChainID, chain)
	}
	return h, checkLink(h, cr, brk)
}

// checkLink checks seq and prev_hash against the previous record.
func checkLink(h recHead, cr *ChainReport, brk func(BreakKind, uint64, string, ...any) *Break) *Break {
	if cr.Records == 0 {
		if h.Seq == 1 && h.PrevHash != "" {
			return brk(BreakEdited, h.Seq, "first record of the chain has prev_hash %s, want empty", short(h.PrevHash))
		}
		return nil // starts later: earlier files were not given (FirstSeq says so)
	}
	want := cr.LastSeq + 1
	switch {
	case h.Seq > want:
		return brk(BreakDeleted, h.Seq, "seq jumps from %d to %d: %d record(s) missing", cr.LastSeq, h.Seq, h.Seq-want)
	case h.Seq < want:
		return brk(BreakReordered, h.Seq, "seq %d after seq %d: records were moved or duplicated", h.Seq, cr.LastSeq)
	case h.PrevHash != cr.LastHash:
		return brk(BreakEdited, h.Seq, "prev_hash %s does not match seq %d's hash %s: that record was changed and re-hashed, or this one replaced", short(h.PrevHash), cr.LastSeq, short(cr.LastHash))
	}
	return nil
}

// seqLater reports whether seq occurs after the break position.
func seqLater(files []fileHead, fromFile, fromLine int, seq uint64) (bool, error) {
	found := false
	err := scanChain(files, fromFile, fromLine+1, func(_ int, p chainPos) bool {
		var h recHead
		if json.Unmarshal(p.raw, &h) == nil && h.Seq == seq {
			found = true
		}
		return !found
	})
	return found, err
}

// hashOf is the hash stored at the end of a verified line.
func hashOf(line []byte) string {
	n := len(line)
	return string(line[n-len(hashSuffix)-hashHexLen : n-len(hashSuffix)])
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12] + "…"
	}
	if h == "" {
		return `""`
	}
	return h
}

// WriteText prints the report the way `pdp audit verify` shows it:
// "ok: N records, chains: ..." or one BROKEN line per broken chain.
func (r *Report) WriteText(w io.Writer) error {
	var sb strings.Builder
	if r.OK() {
		fmt.Fprintf(&sb, "ok: %d records, chains: %s\n", r.Records, chainList(r.Chains))
	} else {
		for _, c := range r.Chains {
			if c.Break == nil {
				fmt.Fprintf(&sb, "ok: chain %s: %d records (%s)\n", c.ID, c.Records, seqRange(c))
				continue
			}
			fmt.Fprintf(&sb, "BROKEN: chain %s: %s\n", c.ID, c.Break)
			fmt.Fprintf(&sb, "  verified before the break: %d records (%s)\n", c.Records, seqRange(c))
		}
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

func chainList(cs []ChainReport) string {
	if len(cs) == 0 {
		return "none"
	}
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = fmt.Sprintf("%s (%s, %d file(s), last hash %s)", c.ID, seqRange(c), len(c.Files), short(c.LastHash))
	}
	return strings.Join(parts, ", ")
}

func seqRange(c ChainReport) string {
	if c.Records == 0 {
		return "no records"
	}
	return fmt.Sprintf("seq %d..%d", c.FirstSeq, c.LastSeq)
}

package audit

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rehash recomputes a line's hash after its body was changed, the way an
// attacker who knows the scheme would.
func rehash(t *testing.T, line string) string {
	t.Helper()
	body, _, ok := splitLine([]byte(line))
	if !ok {
		t.Fatalf("not a hashed line: %s", line)
	}
	out, _ := appendLine(nil, body)
	return strings.TrimSuffix(string(out), "\n")
}

func TestVerifyDetectsTampering(t *testing.T) {
	const n = 10
	tests := []struct {
		name   string
		tamper func(t *testing.T, lines []string) []string
		kind   BreakKind
		line   int
		seq    uint64
		detail string
	}{
		{
			name: "edited field",
			tamper: func(t *testing.T, l []string) []string {
				l[4] = strings.Replace(l[4], `"decision":"ALLOW"`, `"decision":"DENY"`, 1)
				return l
			},
			kind: BreakEdited, line: 5, seq: 5, detail: "does not match its hash",
		},
		{
			name: "edited hash itself",
			tamper: func(t *testing.T, l []string) []string {
				s := l[2]
				i := len(s) - len(hashSuffix) - 1
				c := byte('0')
				if s[i] == '0' {
					c = '1'
				}
				l[2] = s[:i] + string(c) + s[i+1:]
				return l
			},
			kind: BreakEdited, line: 3, seq: 3, detail: "does not match its hash",
		},
		{
			name: "edited and re-hashed",
			tamper: func(t *testing.T, l []string) []string {
				l[2] = rehash(t, strings.Replace(l[2], `"tool":"gmail.send"`, `"tool":"gmail.read"`, 1))
				return l
			},
			kind: BreakEdited, line: 4, seq: 4, detail: "prev_hash",
		},
		{
			name:   "deleted line",
			tamper: func(t *testing.T, l []string) []string { return append(l[:4:4], l[5:]...) },
			kind:   BreakDeleted, line: 5, seq: 6, detail: "1 record(s) missing",
		},
		{
			name:   "deleted first line",
			tamper: func(t *testing.T, l []string) []string { return l[1:] },
			// Without seq 1 the chain simply starts at 2, as when old files
			// were archived: the report shows FirstSeq 2 (checked below).
		},
		{
			name: "swapped lines",
			tamper: func(t *testing.T, l []string) []string {
				l[3], l[4] = l[4], l[3]
				return l
			},
			kind: BreakReordered, line: 4, seq: 5, detail: "appears later",
		},
		{
			name: "duplicated line",
			tamper: func(t *testing.T, l []string) []string {
				return append(l[:3:3], append([]string{l[2]}, l[3:]...)...)
			},
			kind: BreakReordered, line: 4, seq: 3, detail: "moved or duplicated",
		},
		{
			name: "first record given a prev_hash",
			tamper: func(t *testing.T, l []string) []string {
				l[0] = rehash(t, strings.Replace(l[0], `,"hash":`, `,"prev_hash":"abc","hash":`, 1))
				return l
			},
			kind: BreakEdited, line: 1, seq: 1, detail: "want empty",
		},
		{
			name: "line replaced by garbage",
			tamper: func(t *testing.T, l []string) []string {
				l[6] = `{"type":"decision","seq":7}`
				return l
			},
			kind: BreakMalformed, line: 7, detail: "not a hashed audit record",
		},
		{
			name:   "deleted last line",
			tamper: func(t *testing.T, l []string) []string { return l[:n-1] },
			// Not detectable from the file alone: LastSeq/LastHash in the
			// report are what an external anchor (Redis stream, collector)
			// is compared with.
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTrail(t, dir, n, nil)
			files := trailFiles(t, dir)
			writeLines(t, files[0], tc.tamper(t, readLines(t, files[0])))

			rep, err := Verify(dir)
			if tc.kind == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if tc.name == "deleted first line" && rep.Chains[0].FirstSeq != 2 {
					t.Errorf("FirstSeq = %d, want 2", rep.Chains[0].FirstSeq)
				}
				return
			}
			if !errors.Is(err, ErrBroken) {
				t.Fatalf("Verify error = %v, want ErrBroken", err)
			}
			checkBreak(t, rep.FirstBreak(), tc.kind, files[0], tc.line, tc.seq, tc.detail)
		})
	}
}

func checkBreak(t *testing.T, b *Break, kind BreakKind, file string, line int, seq uint64, detail string) {
	t.Helper()
	if b == nil {
		t.Fatal("no break reported")
	}
	if b.Kind != kind || b.File != file || b.Line != line || b.Seq != seq || !strings.Contains(b.Detail, detail) {
		t.Errorf("break = %+v\nwant kind %s file %s line %d seq %d detail ~%q", b, kind, file, line, seq, detail)
	}
}

func TestVerifyTruncatedFile(t *testing.T) {
	dir := t.TempDir()
	writeTrail(t, dir, 8, nil)
	f := trailFiles(t, dir)[0]
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, f)
	cut := len(b) - len(lines[7])/2 - 1 // mid-way through line 8
	if err := os.WriteFile(f, b[:cut], 0o640); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(f)
	if !errors.Is(err, ErrBroken) {
		t.Fatalf("Verify error = %v, want ErrBroken", err)
	}
	checkBreak(t, rep.FirstBreak(), BreakTruncated, f, 8, 0, "partial line")
	if got := rep.Chains[0].Records; got != 7 {
		t.Errorf("records verified before the break = %d, want 7", got)
	}
}

func TestVerifyAcrossRotation(t *testing.T) {
	dir := t.TempDir()
	const n = 300
	writeTrail(t, dir, n, func(o *Options) { o.MaxFileSize = 4 << 10 })
	files := trailFiles(t, dir)
	if len(files) < 20 {
		t.Fatalf("%d files, want many with a 4 KiB limit", len(files))
	}
	t.Run("whole directory", func(t *testing.T) {
		rep := mustVerify(t, dir)
		if rep.Records != n || rep.Files != len(files) || rep.Chains[0].FirstSeq != 1 || rep.Chains[0].LastSeq != n {
			t.Errorf("report = %+v", rep)
		}
	})
	t.Run("files in any order", func(t *testing.T) {
		rev := make([]string, len(files))
		for i, f := range files {
			rev[len(files)-1-i] = f
		}
		if rep := mustVerify(t, rev...); rep.Records != n {
			t.Errorf("records = %d, want %d", rep.Records, n)
		}
	})
	t.Run("middle file missing", func(t *testing.T) {
		given := append(append([]string{}, files[:5]...), files[6:]...)
		rep, err := Verify(given...)
		if !errors.Is(err, ErrBroken) {
			t.Fatalf("Verify error = %v, want ErrBroken", err)
		}
		_, next, _ := parseSegmentName(filepath.Base(files[6]))
		checkBreak(t, rep.FirstBreak(), BreakDeleted, files[6], 1, next, "missing")
	})
	t.Run("files stay within the size limit", func(t *testing.T) {
		for _, f := range files {
			if fi, _ := os.Stat(f); fi.Size() > 4<<10 {
				t.Errorf("%s is %d bytes", f, fi.Size())
			}
		}
	})
}

func TestVerifySeveralChains(t *testing.T) {
	dir := t.TempDir()
	writeTrail(t, dir, 5, func(o *Options) { o.ChainID = "replica-a" })
	writeTrail(t, dir, 7, func(o *Options) { o.ChainID = "replica-b" })
	rep := mustVerify(t, dir)
	if rep.Records != 12 || len(rep.Chains) != 2 || rep.Chains[0].ID != "replica-a" || rep.Chains[1].Records != 7 {
		t.Fatalf("report = %+v", rep)
	}
	var sb strings.Builder
	if err := rep.WriteText(&sb); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sb.String(), "ok: 12 records, chains: replica-a (seq 1..5") {
		t.Errorf("text = %q", sb.String())
	}

	// Break one chain: the other still verifies and is reported as ok.
	fb := trailFiles(t, filepath.Join(dir))[1]
	lines := readLines(t, fb)
	writeLines(t, fb, append(lines[:2:2], lines[3:]...))
	rep, err := Verify(dir)
	if !errors.Is(err, ErrBroken) {
		t.Fatalf("Verify error = %v", err)
	}
	if rep.Chains[0].Break != nil || rep.Chains[1].Break == nil || rep.Chains[1].Break.Kind != BreakDeleted {
		t.Errorf("chains = %+v", rep.Chains)
	}
	sb.Reset()
	_ = rep.WriteText(&sb)
	if !strings.Contains(sb.String(), "BROKEN: chain replica-b: deleted at") || !strings.Contains(sb.String(), "ok: chain replica-a: 5 records") {
		t.Errorf("text = %q", sb.String())
	}
}

func TestVerifyErrors(t *testing.T) {
	tests := []struct {
		name  string
		paths []string
	}{
		{"no paths", nil},
		{"missing file", []string{filepath.Join(t.TempDir(), "nope.jsonl")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Verify(tc.paths...); err == nil || errors.Is(err, ErrBroken) {
				t.Errorf("Verify = %v, want an I/O error", err)
			}
		})
	}
}

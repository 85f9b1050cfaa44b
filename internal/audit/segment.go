package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// File names are audit-<chain>-<UTC start time>-<seq of first record>.jsonl.
// The chain id may contain '-', so names are parsed from the right.
const (
	filePrefix = "audit-"
	fileSuffix = ".jsonl"
	fileTime   = "20060102T150405Z"
)

func segmentName(chain string, t time.Time, firstSeq uint64) string {
	return fmt.Sprintf("%s%s-%s-%012d%s", filePrefix, chain, t.UTC().Format(fileTime), firstSeq, fileSuffix)
}

// parseSegmentName returns the chain id and first seq a file name carries.
func parseSegmentName(name string) (chain string, seq uint64, ok bool) {
	if !strings.HasPrefix(name, filePrefix) || !strings.HasSuffix(name, fileSuffix) {
		return "", 0, false
	}
	s := strings.TrimSuffix(strings.TrimPrefix(name, filePrefix), fileSuffix)
	i := strings.LastIndexByte(s, '-')
	if i < 0 {
		return "", 0, false
	}
	seq, err := strconv.ParseUint(s[i+1:], 10, 64)
	if err != nil {
		return "", 0, false
	}
	j := strings.LastIndexByte(s[:i], '-')
	if j <= 0 {
		return "", 0, false
	}
	if _, err := time.Parse(fileTime, s[j+1:i]); err != nil {
		return "", 0, false
	}
	return s[:j], seq, true
}

type segment struct {
	path     string
	firstSeq uint64
}

// chainSegments lists the files of one chain in dir, oldest first.
func chainSegments(dir, chain string) ([]segment, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var segs []segment
	for _, e := range ents {
		c, seq, ok := parseSegmentName(e.Name())
		if ok && c == chain && e.Type().IsRegular() {
			segs = append(segs, segment{filepath.Join(dir, e.Name()), seq})
		}
	}
	slices.SortFunc(segs, func(a, b segment) int {
		if a.firstSeq != b.firstSeq {
			return cmpU64(a.firstSeq, b.firstSeq)
		}
		return strings.Compare(a.path, b.path)
	})
	return segs, nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// chainState is where a chain stands: the last record on disk.
type chainState struct {
	seq  uint64
	hash string
}

// trail is the open file of one chain. Only the writer goroutine uses it.
type trail struct {
	dir     string
	chain   string
	maxSize int64
	log     *slog.Logger

	f    *os.File
	size int64
}

// openTrail finds where the chain left off on disk (repairing a torn last
// line), then opens the file the next record goes to.
func openTrail(dir, chain string, maxSize int64, log *slog.Logger) (*trail, chainState, error) {
	t := &trail{dir: dir, chain: chain, maxSize: maxSize, log: log}
	segs, err := chainSegments(dir, chain)
	if err != nil {
		return nil, chainState{}, err
	}
	var st chainState
	tail := -1
	for i := len(segs) - 1; i >= 0 && tail < 0; i-- {
		found, s, err := t.recoverTail(segs[i].path)
		if err != nil {
			return nil, chainState{}, err
		}
		if found {
			st, tail = s, i
		}
	}
	if err := t.openNext(segs, tail, st); err != nil {
		return nil, chainState{}, err
	}
	return t, st, nil
}

// openNext appends to the newest file when it holds the tail (or is an empty
// file named for the next seq) and has room; otherwise starts a new file.
func (t *trail) openNext(segs []segment, tail int, st chainState) error {
	if n := len(segs); n > 0 {
		last := segs[n-1]
		fi, err := os.Stat(last.path)
		if err != nil {
			return fmt.Errorf("stat %s: %w", last.path, err)
		}
		reuse := (tail == n-1 && fi.Size() < t.maxSize) ||
			(fi.Size() == 0 && last.firstSeq == st.seq+1)
		if reuse {
			return t.open(last.path, false)
		}
	}
	return t.create(st.seq + 1)
}

func (t *trail) open(path string, created bool) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("stat %s: %w", path, err)
	}
	t.f, t.size = f, fi.Size()
	if created {
		// The new name must survive a crash as surely as the records in it.
		if err := syncDir(t.dir); err != nil {
			return err
		}
	}
	return nil
}

// create starts a new file whose first record will be firstSeq.
func (t *trail) create(firstSeq uint64) error {
	return t.open(filepath.Join(t.dir, segmentName(t.chain, time.Now(), firstSeq)), true)
}

// needsRotate reports whether a line of n bytes, after pending bytes not
// yet written, would push a non-empty file past the size limit. A record
// larger than the limit gets a file of its own.
func (t *trail) needsRotate(pending, n int) bool {
	cur := t.size + int64(pending)
	return cur > 0 && cur+int64(n) > t.maxSize
}

// rotate fsyncs and closes the current file and starts the next one.
func (t *trail) rotate(firstSeq uint64) error {
	if err := t.sync(); err != nil {
		return err
	}
	if err := t.f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", t.f.Name(), err)
	}
	t.f = nil
	return t.create(firstSeq)
}

func (t *trail) write(p []byte) error {
	n, err := t.f.Write(p)
	t.size += int64(n)
	if err != nil {
		return fmt.Errorf("write %s: %w", t.f.Name(), err)
	}
	return nil
}

func (t *trail) sync() error {
	if err := t.f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", t.f.Name(), err)
	}
	return nil
}

func (t *trail) close() error {
	if t.f == nil {
		return nil
	}
	err := t.f.Sync()
	if cerr := t.f.Close(); err == nil {
		err = cerr
	}
	t.f = nil
	if err != nil {
		return fmt.Errorf("close audit file: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}

// recoverTail reads the last complete record of a file. Bytes after the last
// newline are a write torn by a crash: such a record was never fsynced, so
// in durable mode it was never answered. They are moved to a .torn file
// beside it (kept for inspection, ignored by verify) and cut off, so the
// chain continues from the last complete record.
func (t *trail) recoverTail(path string) (bool, chainState, error) {
	line, torn, err := readTail(path)
	if err != nil {
		return false, chainState{}, err
	}
	if len(torn) > 0 {
		side, err := cutTorn(path, torn)
		if err != nil {
			return false, chainState{}, err
		}
		t.log.Warn("audit: cut a torn last line (crash before fsync?)",
			"file", path, "bytes", len(torn), "saved_as", side)
	}
	if line == nil {
		return false, chainState{}, nil
	}
	return t.parseTail(path, line)
}

func (t *trail) parseTail(path string, line []byte) (bool, chainState, error) {
	var h struct {
		ChainID string `json:"chain_id"`
		Seq     uint64 `json:"seq"`
		Hash    string `json:"hash"`
	}
	if err := json.Unmarshal(line, &h); err != nil || h.Seq == 0 || h.Hash == "" {
		return false, chainState{}, fmt.Errorf("audit tail of %s is not a chained record (run pdp audit verify; move the file away or use another chain id): %v", path, err)
	}
	if h.ChainID != t.chain {
		return false, chainState{}, fmt.Errorf("audit tail of %s belongs to chain %q, not %q", path, h.ChainID, t.chain)
	}
	// An edited tail stays detectable: the chain continues from the hash as
	// stored, so verify reports the mismatch at that record.
	if body, hx, ok := splitLine(line); !ok || hashHex(body) != hx {
		t.log.Error("audit: last record fails its hash; continuing the chain from it, verify will report it", "file", path, "seq", h.Seq)
	}
	return true, chainState{seq: h.Seq, hash: h.Hash}, nil
}

// readTail returns the last newline-terminated line of a file (without the
// newline) and any bytes after it. It reads backwards in growing windows, so
// a large file costs one short read.
func readTail(path string) (line, torn []byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("stat %s: %w", path, err)
	}
	size := fi.Size()
	for win := int64(64 << 10); ; win *= 2 {
		win = min(win, size)
		buf := make([]byte, win)
		if _, err := f.ReadAt(buf, size-win); err != nil && !errors.Is(err, io.EOF) {
			return nil, nil, fmt.Errorf("read %s: %w", path, err)
		}
		end := bytes.LastIndexByte(buf, '\n')
		if end < 0 && win == size {
			return nil, buf, nil // no complete line at all
		}
		if end >= 0 {
			start := bytes.LastIndexByte(buf[:end], '\n')
			if start >= 0 || win == size {
				return buf[start+1 : end], buf[end+1:], nil
			}
		}
	}
}

// cutTorn saves the torn bytes beside the file and truncates them away. It
// returns the name of the saved copy.
func cutTorn(path string, torn []byte) (string, error) {
	side := path + ".torn"
	if _, err := os.Stat(side); err == nil {
		side = fmt.Sprintf("%s.%d.torn", path, time.Now().UnixNano())
	}
	if err := writeFileSync(side, torn); err != nil {
		return "", err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("stat %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	if err := f.Truncate(fi.Size() - int64(len(torn))); err != nil {
		return "", fmt.Errorf("truncate %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("fsync %s: %w", path, err)
	}
	return side, nil
}

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", path, err)
	}
	return nil
}

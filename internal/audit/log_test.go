package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLineFormat(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, testOptions(dir))
	appendN(t, l, 1, 2)
	closeLog(t, l)
	lines := allLines(t, dir)
	tests := []struct {
		name string
		ok   func(string) bool
	}{
		{"hash is the last member", func(s string) bool { return strings.HasPrefix(s[len(s)-hashTailLen:], `,"hash":"`) }},
		{"no HTML escaping", func(s string) bool { return strings.Contains(s, `"Re: <order #42> & refund"`) }},
		{"first record has no prev_hash", func(string) bool { return !strings.Contains(lines[0], "prev_hash") }},
		{"second links to first", func(string) bool {
			var a, b Record
			_ = json.Unmarshal([]byte(lines[0]), &a)
			_ = json.Unmarshal([]byte(lines[1]), &b)
			return b.PrevHash == a.Hash && b.Seq == 2 && a.ChainID == "test-1"
		}},
		{"line equals json.Marshal of the chained record", func(s string) bool {
			// Hash is the last field of Record, so re-marshalling a parsed
			// record reproduces the line (a cross-check of the documented
			// encoding, not something verifiers need).
			var rec Record
			_ = json.Unmarshal([]byte(s), &rec)
			return string(oracle(t, &rec)) == s
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.ok(lines[0]) {
				t.Errorf("line: %s", lines[0])
			}
		})
	}
}

func TestSeqContinuesAfterReopen(t *testing.T) {
	tests := []struct {
		name    string
		maxSize int64
	}{
		{"same file", 0},
		{"across rotation", 2 << 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			o := testOptions(dir)
			o.MaxFileSize = tc.maxSize
			for round := range 3 {
				l := openLog(t, o)
				if got := l.Stats().LastSeq; got != uint64(round*10) {
					t.Fatalf("round %d: LastSeq after open = %d", round, got)
				}
				appendN(t, l, round*10+1, 10)
				closeLog(t, l)
			}
			rep := mustVerify(t, dir)
			if rep.Records != 30 || rep.Chains[0].LastSeq != 30 {
				t.Errorf("report = %+v", rep)
			}
		})
	}
}

func TestTornTailIsRepairedOnOpen(t *testing.T) {
	dir := t.TempDir()
	writeTrail(t, dir, 5, nil)
	f := trailFiles(t, dir)[0]
	torn := `{"type":"decision","chain_id":"test-1","seq":6,"time":"2026-`
	fh, err := os.OpenFile(f, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.WriteString(torn)
	fh.Close()

	// As found after the crash: reported as truncated.
	rep, err := Verify(dir)
	if !errors.Is(err, ErrBroken) || rep.FirstBreak().Kind != BreakTruncated {
		t.Fatalf("Verify before reopen = %v", err)
	}
	// Reopening cuts the torn line (keeping a copy) and continues at seq 6.
	l := openLog(t, testOptions(dir))
	appendN(t, l, 6, 3)
	closeLog(t, l)
	if rep := mustVerify(t, dir); rep.Records != 8 || rep.Chains[0].LastSeq != 8 {
		t.Errorf("report = %+v", rep)
	}
	saved, err := os.ReadFile(f + ".torn")
	if err != nil || string(saved) != torn {
		t.Errorf("torn copy = %q, %v", saved, err)
	}
}

func TestDurableAppendIsOnDiskWhenItReturns(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(dir)
	o.Durability = Durable
	o.MaxFileSize = 64 << 10
	l := openLog(t, o)
	const workers, each = 16, 50
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := map[string]uint64{}
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				r := decisionRecord(w*each+i, "email-agent", "ALLOW")
				if err := l.Append(context.Background(), r); err != nil {
					t.Errorf("Append: %v", err)
					continue
				}
				mu.Lock()
				acked[r.DecisionID] = r.Seq
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// Before Close: every acknowledged record is already in the files.
	onDisk := map[string]uint64{}
	for _, line := range allLines(t, dir) {
		var r Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		onDisk[r.DecisionID] = r.Seq
	}
	for id, seq := range acked {
		if onDisk[id] != seq || seq == 0 {
			t.Fatalf("acked %s (seq %d) not on disk (%d)", id, seq, onDisk[id])
		}
	}
	st := l.Stats()
	closeLog(t, l)
	if len(acked) != workers*each || st.Syncs >= uint64(len(acked)) {
		t.Errorf("acked %d, fsyncs %d: want group commit (fewer fsyncs than records)", len(acked), st.Syncs)
	}
	mustVerify(t, dir)
}

func TestAsyncCloseDrains(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(dir)
	o.FlushInterval = time.Hour // nothing is written unless Close drains
	o.SyncInterval = -1
	l := openLog(t, o)
	const n = 5000
	appendN(t, l, 1, n)
	closeLog(t, l)
	if rep := mustVerify(t, dir); rep.Records != n {
		t.Errorf("records = %d, want %d", rep.Records, n)
	}
	if st := l.Stats(); st.Written != n || st.Appended != n || st.Lost != 0 {
		t.Errorf("stats = %+v", st)
	}
	if err := l.Append(context.Background(), decisionRecord(0, "a", "ALLOW")); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
}

func TestSyncBarrier(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(dir)
	o.FlushInterval = time.Hour
	l := openLog(t, o)
	defer closeLog(t, l)
	appendN(t, l, 1, 3)
	if err := l.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := len(allLines(t, dir)); got != 3 {
		t.Errorf("lines after Sync = %d, want 3", got)
	}
}

// badSink fails or blocks every Write.
type badSink struct {
	block bool
	calls atomic.Int64
}

func (s *badSink) Write(ctx context.Context, _ []Entry) error {
	s.calls.Add(1)
	if s.block {
		<-ctx.Done()
		return ctx.Err()
	}
	return errors.New("sink down")
}

func (s *badSink) Close(context.Context) error { return nil }

func TestBadSinkLosesNoFileRecords(t *testing.T) {
	tests := []struct {
		name  string
		block bool
	}{
		{"failing sink", false},
		{"blocking sink", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			sink := &badSink{block: tc.block}
			o := testOptions(dir)
			o.Sinks = []SinkConfig{{Name: "bad", Sink: sink, QueueSize: 16}}
			l := openLog(t, o)
			const n = 5000
			start := time.Now()
			appendN(t, l, 1, n)
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("%d appends took %s: the sink slowed the decision path", n, d)
			}
			if err := l.Sync(context.Background()); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			err := l.Close(ctx)
			if tc.block && err == nil {
				t.Error("Close with a blocked sink returned nil, want a drain error")
			}
			if !tc.block && err != nil {
				t.Errorf("Close: %v", err)
			}
			if rep := mustVerify(t, dir); rep.Records != n {
				t.Errorf("file records = %d, want %d", rep.Records, n)
			}
			st := l.Stats()
			s := st.Sinks[0]
			if st.Written != n || s.Written != 0 || s.Dropped+s.Errors+uint64(s.QueueDepth) == 0 {
				t.Errorf("stats = %+v, sink %+v", st, s)
			}
			if !tc.block && s.Errors == 0 {
				t.Errorf("failing sink: errors not counted: %+v", s)
			}
		})
	}
}

func TestQueueFullFailsClosed(t *testing.T) {
	dir := t.TempDir()
	release := make(chan struct{})
	var once sync.Once
	o := testOptions(dir)
	o.QueueSize = 4
	o.MaxBatch = 2
	o.EnqueueTimeout = 5 * time.Millisecond
	o.FlushInterval = time.Millisecond
	o.beforeWrite = func() error { <-release; return nil } // a stalled disk
	l := openLog(t, o)
	var accepted []string
	var full error
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; full == nil && time.Now().Before(deadline); i++ {
		r := decisionRecord(i, "email-agent", "ALLOW")
		if err := l.Append(context.Background(), r); err != nil {
			full = err
			break
		}
		accepted = append(accepted, r.DecisionID)
	}
	if !errors.Is(full, ErrQueueFull) {
		t.Fatalf("Append on a full queue = %v, want ErrQueueFull", full)
	}
	// The stalled writer holds up to MaxBatch records; a writer slow to get
	// the CPU may not have taken them yet when the refusal came.
	if st := l.Stats(); st.Refused == 0 || st.Appended != uint64(len(accepted)) ||
		st.QueueDepth < o.QueueSize-o.MaxBatch || st.QueueDepth > o.QueueSize {
		t.Errorf("stats = %+v", st)
	}
	once.Do(func() { close(release) })
	closeLog(t, l)
	rep := mustVerify(t, dir)
	if rep.Records != len(accepted) {
		t.Errorf("on disk %d, accepted %d", rep.Records, len(accepted))
	}
}

// TestSmallRecordsIgnoreTheByteBudget: records under 16 KiB are bounded by
// QueueSize alone; a budget they would overrun at once does not refuse them.
func TestSmallRecordsIgnoreTheByteBudget(t *testing.T) {
	release := make(chan struct{})
	o := testOptions(t.TempDir())
	o.QueueSize = 10
	o.QueueBytes = 1 << 10 // under two records' estimates
	o.MaxBatch = 1
	o.EnqueueTimeout = 5 * time.Millisecond
	o.beforeWrite = func() error { <-release; return nil }
	l := openLog(t, o)
	defer func() { close(release); closeLog(t, l) }()
	for i := range 8 {
		if err := l.Append(context.Background(), decisionRecord(i, "email-agent", "ALLOW")); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
}

// TestOneRecordBatches: MaxBatch 1 still writes everything (the writer
// used to take nothing after its first batch and spin).
func TestOneRecordBatches(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(dir)
	o.MaxBatch = 1
	l := openLog(t, o)
	for i := range 50 {
		if err := l.Append(context.Background(), decisionRecord(i, "email-agent", "ALLOW")); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	closeLog(t, l)
	if rep := mustVerify(t, dir); rep.Records != 50 {
		t.Errorf("on disk %d, want 50", rep.Records)
	}
}

// TestQueueBytesBoundTheBacklog: big records fill the byte budget long
// before the record count, and Append then fails closed as on a full
// queue; a record bigger than the whole budget still goes through once the
// queue is empty.
func TestQueueBytesBoundTheBacklog(t *testing.T) {
	dir := t.TempDir()
	release := make(chan struct{})
	o := testOptions(dir)
	o.QueueSize = 1000
	o.QueueBytes = 256 << 10
	o.MaxBatch = 1
	o.EnqueueTimeout = 5 * time.Millisecond
	o.FlushInterval = time.Millisecond
	o.beforeWrite = func() error { <-release; return nil } // a stalled disk
	l := openLog(t, o)
	big := func(i, kib int) *Record {
		r := decisionRecord(i, "email-agent", "ALLOW")
		r.Inputs = []Input{{Source: "email", Text: strings.Repeat("x", kib<<10)}}
		return r
	}
	var accepted int
	var full error
	for i := 0; full == nil && i < 100; i++ {
		if full = l.Append(context.Background(), big(i, 100)); full == nil {
			accepted++
		}
	}
	// The stalled writer holds one record; the queue two more (~101 KiB
	// each against 256 KiB).
	if !errors.Is(full, ErrQueueFull) || accepted > 3 {
		t.Fatalf("after %d accepted: %v, want ErrQueueFull by the 4th", accepted, full)
	}
	if st := l.Stats(); st.QueueDepth > 2 || st.Refused != 1 {
		t.Errorf("stats = %+v", st)
	}
	close(release)
	for i := 0; !l.Drained(); i++ {
		time.Sleep(time.Millisecond)
		if i == 2000 {
			t.Fatalf("not drained: %+v", l.Stats())
		}
	}
	if err := l.Append(context.Background(), big(100, 300)); err != nil {
		t.Fatalf("a record over the whole budget, queue empty: %v", err)
	}

	closeLog(t, l)
	if rep := mustVerify(t, dir); rep.Records != accepted+1 {
		t.Errorf("on disk %d, accepted %d", rep.Records, accepted+1)
	}
}

func TestWriteFailureFailsClosedAndRecovers(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the 1s retry")
	}
	dir := t.TempDir()
	var failing atomic.Bool
	o := testOptions(dir)
	o.Durability = Durable
	o.beforeWrite = func() error {
		if failing.Load() {
			return errors.New("injected: no space left on device")
		}
		return nil
	}
	l := openLog(t, o)
	appendN(t, l, 1, 3)
	failing.Store(true)
	if err := l.Append(context.Background(), decisionRecord(4, "a", "ALLOW")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Append during a write failure = %v, want ErrUnavailable", err)
	}
	if err := l.Append(context.Background(), decisionRecord(5, "a", "ALLOW")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Append while failed = %v, want ErrUnavailable", err)
	}
	if st := l.Stats(); st.Healthy || st.FileErrors == 0 {
		t.Errorf("stats = %+v", st)
	}
	failing.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for l.Append(context.Background(), decisionRecord(6, "a", "ALLOW")) != nil {
		if time.Now().After(deadline) {
			t.Fatal("trail did not recover")
		}
		time.Sleep(50 * time.Millisecond)
	}
	closeLog(t, l)
	if rep := mustVerify(t, dir); rep.Records != 4 || rep.Chains[0].LastSeq != 4 {
		t.Errorf("report = %+v", rep)
	}
}

// TestUnencodableRecordsAreStillAudited: what JSON or RFC 3339 cannot
// write (NaN and infinities from a protobuf Struct, times past year 9999 from
// a policy's absurd window, zones of a day or more) is sanitised, not
// refused, in both modes: async mode encodes in the writer, where a refusal
// could no longer reach the caller.
func TestUnencodableRecordsAreStillAudited(t *testing.T) {
	for _, mode := range []Durability{Async, Durable} {
		t.Run(string(mode), func(t *testing.T) {
			dir := t.TempDir()
			o := testOptions(dir)
			o.Durability = mode
			l := openLog(t, o)
			r := decisionRecord(1, "email-agent", "DENY")
			r.Args["amount"] = math.NaN()
			r.Args["nested"] = map[string]any{"x": []any{math.Inf(1)}}
			r.RateLimits = []RateLimit{
				{ID: "forever", Limit: 1, Reset: time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)},
				{ID: "far", Limit: 1, Reset: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("far", 25*3600))},
			}
			early := decisionRecord(2, "email-agent", "ALLOW")
			early.Time = time.Date(-3, 1, 1, 0, 0, 0, 0, time.UTC)
			for _, rec := range []*Record{r, early} {
				if err := l.Append(context.Background(), rec); err != nil {
					t.Fatal(err)
				}
			}
			closeLog(t, l)
			lines := allLines(t, dir)
			want := [][]string{
				{`"amount":"NaN"`, `"x":["+Inf"]`, `"reset":"9999-12-31T23:59:59.999999999Z"`, `"reset":"2025-12-30T23:00:00Z"`},
				{`"time":"0000-01-01T00:00:00Z"`},
			}
			if len(lines) != len(want) {
				t.Fatalf("lines = %q", lines)
			}
			for i, parts := range want {
				for _, p := range parts {
					if !strings.Contains(lines[i], p) {
						t.Errorf("line %d lacks %s: %s", i+1, p, lines[i])
					}
				}
			}
			if st := l.Stats(); st.EncodeErrors != 0 || st.Lost != 0 || st.Written != 2 {
				t.Errorf("stats = %+v", st)
			}
			mustVerify(t, dir)
		})
	}
}

func TestChainLock(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, testOptions(dir))
	defer closeLog(t, l)
	if _, err := Open(testOptions(dir)); !errors.Is(err, ErrChainLocked) {
		t.Errorf("second Open of one chain = %v, want ErrChainLocked", err)
	}
	o := testOptions(dir)
	o.ChainID = "test-2"
	other := openLog(t, o)
	closeLog(t, other)
}

func TestOptionsValidation(t *testing.T) {
	tests := []struct {
		name string
		o    Options
	}{
		{"bad chain id", Options{ChainID: "../etc"}},
		{"bad durability", Options{Durability: "sometimes"}},
		{"nil sink", Options{Sinks: []SinkConfig{{Name: "x"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Dir = t.TempDir()
			if _, err := Open(tc.o); err == nil {
				t.Error("Open succeeded")
			}
		})
	}
	if id := DefaultChainID(); !chainIDPattern.MatchString(id) {
		t.Errorf("DefaultChainID() = %q", id)
	}
}

func TestSegmentNames(t *testing.T) {
	tests := []struct {
		chain string
		seq   uint64
	}{
		{"host-1", 1},
		{"pod-a-b-c", 123456789},
		{"x", 0},
	}
	for _, tc := range tests {
		t.Run(tc.chain, func(t *testing.T) {
			name := segmentName(tc.chain, time.Now(), tc.seq)
			c, s, ok := parseSegmentName(name)
			if !ok || c != tc.chain || s != tc.seq {
				t.Errorf("parse(%s) = %q %d %v", name, c, s, ok)
			}
		})
	}
	if _, _, ok := parseSegmentName("audit-x.jsonl"); ok {
		t.Error("parsed a name without time and seq")
	}
	if got := filepath.Base(segmentName("c", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), 7)); got != "audit-c-20260102T030405Z-000000000007.jsonl" {
		t.Errorf("name = %s", got)
	}
	_ = fmt.Sprint()
}

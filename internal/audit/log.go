package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Errors Append returns. The decision layer turns any of them into DENY with
// reason audit_unavailable: a decision that cannot be audited is not given.
var (
	// ErrQueueFull: the writer is EnqueueTimeout behind; the record was refused.
	ErrQueueFull = errors.New("audit: queue full")
	// ErrClosed: Append after Close.
	ErrClosed = errors.New("audit: log closed")
	// ErrUnavailable: the file trail cannot be written (disk full, I/O
	// error); the writer retries in the background.
	ErrUnavailable = errors.New("audit: trail unavailable")
	// ErrChainLocked: another process holds the chain.
	ErrChainLocked = errors.New("audit: chain locked")
)

// Durability says when Append returns.
type Durability string

const (
	// Async: Append returns once the record is queued; the writer writes in
	// batches at most FlushInterval later and fsyncs at most SyncInterval
	// after a write. A crash loses at most those windows.
	Async Durability = "async"
	// Durable: Append returns only after the record is written and fsynced.
	// The writer fsyncs once per batch and releases the whole batch (group
	// commit), so concurrent decisions share one fsync.
	Durable Durability = "durable"
)

// ParseDurability accepts "async" or "durable" ("" is async).
func ParseDurability(s string) (Durability, error) {
	switch d := Durability(strings.ToLower(strings.TrimSpace(s))); d {
	case "", Async:
		return Async, nil
	case Durable:
		return Durable, nil
	default:
		return "", fmt.Errorf("audit durability %q: want async or durable", s)
	}
}

// Defaults for zero Options fields.
const (
	DefaultDir            = "./pdp-audit"
	DefaultMaxFileSize    = 64 << 20
	DefaultQueueSize      = 16384
	DefaultQueueBytes     = 64 << 20
	DefaultEnqueueTimeout = 50 * time.Millisecond
	DefaultFlushInterval  = 2 * time.Millisecond
	DefaultSyncInterval   = time.Second
	DefaultMaxBatch       = 4096
	DefaultSinkQueueSize  = 8192
	retryInterval         = time.Second
)

// SinkConfig adds a sink beside the file trail.
type SinkConfig struct {
	// Name labels the sink in Stats and logs ("stdout", "redis", "stream").
	Name string
	Sink Sink
	// QueueSize bounds the records waiting for this sink; when full, new
	// records are dropped for this sink only, and counted.
	QueueSize int
}

// Options configure a Log. Zero values take the defaults above.
type Options struct {
	Dir string
	// ChainID names this replica's chain; it must be stable across restarts
	// for Seq to continue, and unique per replica writing to Dir.
	// Default: DefaultChainID().
	ChainID     string
	Durability  Durability
	MaxFileSize int64
	// QueueSize bounds records accepted but not yet written.
	QueueSize int
	// QueueBytes bounds the size of the big ones (16 KiB and more),
	// estimated when they are accepted (a record is held unencoded until
	// the writer takes it in async mode): a burst of requests near the
	// 8 MiB message limit must not hold QueueSize of them in memory. A big
	// record is always accepted when no other is queued, however big.
	QueueBytes int64
	// EnqueueTimeout is how long Append waits on a full queue before it
	// returns ErrQueueFull.
	EnqueueTimeout time.Duration
	// FlushInterval (async) bounds how long a record sits in memory before
	// it is written to the file.
	FlushInterval time.Duration
	// SyncInterval (async) bounds how long written data stays un-fsynced;
	// negative disables the periodic fsync.
	SyncInterval time.Duration
	// MaxBatch bounds records taken from the queue per write.
	MaxBatch int
	Sinks    []SinkConfig
	Logger   *slog.Logger

	// beforeWrite, when set (tests only), runs before each file write; an
	// error it returns stands in for the write's.
	beforeWrite func() error
}

var chainIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// DefaultChainID is the host name, reduced to file-name-safe characters:
// stable across restarts (so Seq continues) and distinct per host or pod.
// Two processes on one host sharing a directory need explicit ids; the chain
// lock makes the second one fail instead of forking the chain.
func DefaultChainID() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "pdp"
	}
	id := strings.Map(func(r rune) rune {
		if r < 128 && (r == '.' || r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return r
		}
		return '_'
	}, h)
	id = strings.TrimLeft(id, "._-")
	if !chainIDPattern.MatchString(id) {
		return "pdp"
	}
	return id
}

func (o *Options) withDefaults() (Options, error) {
	c := *o
	if c.Dir == "" {
		c.Dir = DefaultDir
	}
	if c.ChainID == "" {
		c.ChainID = DefaultChainID()
	}
	if !chainIDPattern.MatchString(c.ChainID) {
		return c, fmt.Errorf("audit chain id %q: want 1-128 of [A-Za-z0-9._-], starting with a letter or digit", c.ChainID)
	}
	d, err := ParseDurability(string(c.Durability))
	if err != nil {
		return c, err
	}
	c.Durability = d
	c.MaxFileSize = orDefault(c.MaxFileSize, DefaultMaxFileSize)
	c.QueueSize = orDefault(c.QueueSize, DefaultQueueSize)
	c.QueueBytes = orDefault(c.QueueBytes, DefaultQueueBytes)
	c.EnqueueTimeout = orDefault(c.EnqueueTimeout, DefaultEnqueueTimeout)
	c.FlushInterval = orDefault(c.FlushInterval, DefaultFlushInterval)
	c.SyncInterval = orDefault(c.SyncInterval, DefaultSyncInterval)
	c.MaxBatch = orDefault(c.MaxBatch, DefaultMaxBatch)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	for i, s := range c.Sinks {
		if s.Sink == nil {
			return c, fmt.Errorf("audit sink %d (%q): nil Sink", i, s.Name)
		}
	}
	return c, nil
}

func orDefault[T int | int64 | time.Duration](v, d T) T {
	if v == 0 {
		return d
	}
	return v
}

// pending is one queued request to the writer.
type pending struct {
	rec *Record
	// enc holds rec's body without chain fields (nil until encoded); the
	// writer recycles it.
	enc *encoder
	// done receives the outcome once the record is fsynced (durable mode and
	// Sync barriers); nil in async mode.
	done    chan error
	barrier bool
	// budget is what it counts against QueueBytes: its estimated size if
	// that is bigRecord or more, else 0.
	budget int64
}

// Log is the audit trail of one replica: Append queues records, and one
// writer goroutine chains, writes and fans them out.
type Log struct {
	opts Options
	q    chan pending

	// mu orders Append's send against Close's close(q): Append holds it
	// shared while it sends, Close exclusively while it closes.
	mu     sync.RWMutex
	closed bool

	failed atomic.Pointer[error]
	stats  counters
	sinks  []*sinkRunner
	lock   interface{ Close() error }
	done   chan struct{}
	kick   chan struct{} // ends the writer's linger early (buffer of one)
	// queuedBytes is the QueueBytes budget big records use: added by
	// Append, taken off by the writer when it takes the record.
	queuedBytes atomic.Int64
	doneCh      sync.Pool
	encoders    sync.Pool
}

// Open recovers the chain's tail from Dir, takes the chain lock and starts
// the writer and the sinks.
func Open(opts Options) (*Log, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("create audit dir %s: %w", o.Dir, err)
	}
	lock, err := lockChain(o.Dir, o.ChainID)
	if err != nil {
		return nil, err
	}
	t, st, err := openTrail(o.Dir, o.ChainID, o.MaxFileSize, o.Logger)
	if err != nil {
		lock.Close()
		return nil, err
	}
	l := &Log{opts: o, q: make(chan pending, o.QueueSize), lock: lock, done: make(chan struct{}), kick: make(chan struct{}, 1)}
	l.doneCh.New = func() any { return make(chan error, 1) }
	l.encoders.New = func() any { return newEncoder() }
	for _, sc := range o.Sinks {
		l.sinks = append(l.sinks, startSink(sc, o.Logger))
	}
	l.stats.lastSeq.Store(st.seq)
	w := newWriter(l, t, st)
	go w.run()
	return l, nil
}

// ChainID is the chain this log appends to.
func (l *Log) ChainID() string { return l.opts.ChainID }

// Append adds r to the trail. It queues a shallow copy of r, so the caller
// keeps r, but what r points to must not change afterwards: the writer
// encodes it later in async mode, and the sinks get it.
// In async mode it returns once queued; in durable mode once the record is
// fsynced, and then r's ChainID, Seq, PrevHash, Hash and Time are filled in.
// Any error means the record may not be in the trail: fail closed.
func (l *Log) Append(ctx context.Context, r *Record) error {
	if r == nil {
		return errors.New("audit: nil record")
	}
	if p := l.failed.Load(); p != nil {
		l.stats.refused.Add(1)
		return fmt.Errorf("%w: %w", ErrUnavailable, *p)
	}
	p, err := l.prepare(r)
	if err != nil {
		l.stats.encodeErrors.Add(1)
		l.stats.refused.Add(1)
		return err
	}
	if l.opts.Durability == Durable {
		p.done = l.doneCh.Get().(chan error)
	}
	if err := l.enqueue(ctx, p); err != nil {
		l.putEncoder(p.enc)
		if p.done != nil {
			l.doneCh.Put(p.done)
		}
		return err
	}
	if p.done == nil {
		return nil
	}
	if err := l.wait(ctx, p.done); err != nil {
		return err
	}
	c := p.rec
	r.ChainID, r.Seq, r.PrevHash, r.Hash, r.Time = c.ChainID, c.Seq, c.PrevHash, c.Hash, c.Time
	return nil
}

// prepare copies r for the writer. Durable mode encodes the copy here, on
// the caller's goroutine, so a group commit's records are encoded in
// parallel while the previous fsync runs. Async mode leaves encoding to the
// writer, which encodes a burst in a row with its code and data hot in the
// cache, instead of on gRPC handler goroutines (fresh ones also grow their
// stacks for it): BenchmarkAuthorizeInterleaved put the trail's cost at
// ~10% of throughput this way against ~16%. Encoding cannot fail once
// sanitised (see encoder.prepare), so nothing is refused later that would
// have been refused here.
func (l *Log) prepare(r *Record) (pending, error) {
	c := *r
	c.ChainID, c.Seq, c.PrevHash, c.Hash = "", 0, "", ""
	if c.Time.IsZero() {
		c.Time = time.Now()
	}
	c.Time = c.Time.UTC()
	if l.opts.Durability != Durable {
		return pending{rec: &c, budget: budgetFor(c.sizeHint())}, nil
	}
	p, err := l.encode(&c)
	if err == nil {
		p.budget = budgetFor(int64(len(p.enc.w.b)))
	}
	return p, err
}

// encode encodes a prepared record with a pooled encoder.
func (l *Log) encode(c *Record) (pending, error) {
	enc := l.encoders.Get().(*encoder)
	rec, err := enc.prepare(c)
	if err != nil {
		l.putEncoder(enc)
		return pending{}, fmt.Errorf("audit: %w", err)
	}
	return pending{rec: rec, enc: enc}, nil
}

// putEncoder recycles an encoder, except one grown by a huge record.
func (l *Log) putEncoder(e *encoder) {
	if e != nil && cap(e.w.b) <= 64<<10 {
		l.encoders.Put(e)
	}
}

// Sync returns once everything appended before it is written and fsynced.
func (l *Log) Sync(ctx context.Context) error {
	p := pending{barrier: true, done: l.doneCh.Get().(chan error)}
	if err := l.enqueue(ctx, p); err != nil {
		l.doneCh.Put(p.done)
		return err
	}
	l.wake()
	return l.wait(ctx, p.done)
}

func (l *Log) enqueue(ctx context.Context, p pending) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		l.stats.refused.Add(1)
		return ErrClosed
	}
	if l.send(p) {
		if len(l.q) > cap(l.q)/2 {
			l.wake() // don't let the writer linger into a full queue
		}
		return nil
	}
	// Slow path only: a timer per Append would cost more than the send. The
	// byte budget has no channel to wait on, so this polls.
	l.wake()
	t := time.NewTimer(l.opts.EnqueueTimeout)
	defer t.Stop()
	poll := time.NewTicker(time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case <-poll.C:
			if l.send(p) {
				return nil
			}
		case <-t.C:
			l.stats.refused.Add(1)
			return fmt.Errorf("%w (%d records, %d bytes queued, waited %s)", ErrQueueFull, len(l.q),
				l.queuedBytes.Load(), l.opts.EnqueueTimeout)
		case <-ctx.Done():
			l.stats.refused.Add(1)
			return fmt.Errorf("audit: enqueue: %w", ctx.Err())
		}
	}
}

// bigRecord is the size from which a record counts against QueueBytes.
// Smaller ones are bounded by QueueSize alone (16384 of them are at most
// 256 MiB), and they stay off the shared counter: counting every record
// (one more cache line bounced between the cores per decision) cost ~2
// points of throughput in BenchmarkAuthorizeInterleaved.
const bigRecord = 16 << 10

func budgetFor(size int64) int64 {
	if size < bigRecord {
		return 0
	}
	return size
}

// send queues p if the queue has room for it, in records and in bytes.
// A big record alone among big ones always fits, however big.
func (l *Log) send(p pending) bool {
	if p.budget > 0 {
		if n := l.queuedBytes.Add(p.budget); n > l.opts.QueueBytes && n != p.budget {
			l.queuedBytes.Add(-p.budget)
			return false
		}
	}
	select {
	case l.q <- p:
		l.countAppended(p)
		return true
	default:
		l.release(p)
		return false
	}
}

// release gives back what p took of the byte budget.
func (l *Log) release(p pending) {
	if p.budget > 0 {
		l.queuedBytes.Add(-p.budget)
	}
}

// wake ends the writer's linger; it never blocks.
func (l *Log) wake() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// Drained reports whether every record appended so far has been written
// or counted lost: nothing is left in the queue or the writer's batch.
func (l *Log) Drained() bool {
	return l.stats.written.Load()+l.stats.lost.Load() >= l.stats.appended.Load()
}

func (l *Log) countAppended(p pending) {
	if !p.barrier {
		l.stats.appended.Add(1)
	}
}

// wait blocks until the writer releases done. On ctx expiry the writer may
// still write the record; done is then left to the garbage collector (its
// buffer of one keeps the writer from blocking on it).
func (l *Log) wait(ctx context.Context, done chan error) error {
	select {
	case err := <-done:
		l.doneCh.Put(done)
		return err
	case <-ctx.Done():
		return fmt.Errorf("audit: waiting for fsync: %w", ctx.Err())
	}
}

// Close stops accepting records, drains the queue to the file, fsyncs it,
// then drains and closes the sinks. ctx bounds the whole shutdown.
func (l *Log) Close(ctx context.Context) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.q)
	l.mu.Unlock()
	l.wake()
	select {
	case <-l.done:
	case <-ctx.Done():
		return fmt.Errorf("audit: close: writer still draining %d records: %w", len(l.q), ctx.Err())
	}
	var errs []error
	for _, s := range l.sinks {
		errs = append(errs, s.close(ctx))
	}
	errs = append(errs, l.lock.Close())
	if p := l.failed.Load(); p != nil {
		errs = append(errs, fmt.Errorf("%w: %w", ErrUnavailable, *p))
	}
	return errors.Join(errs...)
}

// setFailed publishes the writer's health to Append; nil clears it.
func (l *Log) setFailed(err error) {
	if err == nil {
		l.failed.Store(nil)
		return
	}
	l.failed.Store(&err)
}

type counters struct {
	appended, written, refused, lost, encodeErrors atomic.Uint64
	fileErrors, syncs, rotations, lastSeq          atomic.Uint64
}

// Stats is a snapshot for metrics.
type Stats struct {
	ChainID       string
	Durability    Durability
	QueueDepth    int
	QueueCapacity int
	// Appended: records accepted by Append.
	Appended uint64
	// Written: records written to the file.
	Written uint64
	// Refused: Appends that returned an error (queue full, closed,
	// unavailable, context done): the decision was failed closed.
	Refused uint64
	// Lost: records accepted but never written (file error, or a record
	// that could not be encoded). In durable mode their callers got the error.
	Lost         uint64
	EncodeErrors uint64
	FileErrors   uint64
	Syncs        uint64
	Rotations    uint64
	LastSeq      uint64
	// Healthy is false while the file trail is failing; Err says why.
	Healthy bool
	Err     string
	Sinks   []SinkStats
}

// Stats returns the current counters.
func (l *Log) Stats() Stats {
	s := Stats{
		ChainID:       l.opts.ChainID,
		Durability:    l.opts.Durability,
		QueueDepth:    len(l.q),
		QueueCapacity: cap(l.q),
		Appended:      l.stats.appended.Load(),
		Written:       l.stats.written.Load(),
		Refused:       l.stats.refused.Load(),
		Lost:          l.stats.lost.Load(),
		EncodeErrors:  l.stats.encodeErrors.Load(),
		FileErrors:    l.stats.fileErrors.Load(),
		Syncs:         l.stats.syncs.Load(),
		Rotations:     l.stats.rotations.Load(),
		LastSeq:       l.stats.lastSeq.Load(),
		Healthy:       true,
	}
	if p := l.failed.Load(); p != nil {
		s.Healthy, s.Err = false, (*p).Error()
	}
	for _, r := range l.sinks {
		s.Sinks = append(s.Sinks, r.stats())
	}
	return s
}

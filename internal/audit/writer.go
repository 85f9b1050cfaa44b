package audit

import (
	"fmt"
	"log/slog"
	"time"
)

// flushThreshold ends a batch at this many bytes: bigger writes gain little,
// and it bounds what a failed write loses.
const flushThreshold = 256 << 10

// writer is the single goroutine that owns the chain: it alone assigns Seq
// and hashes, so chain order is file order without any locking.
type writer struct {
	l     *Log
	opts  *Options
	log   *slog.Logger
	trail *trail

	seq      uint64
	prevHash string

	// The current batch: bytes not yet written, the entries they hold (for
	// the sinks) and who waits for their fsync.
	buf       []byte
	body      []byte // scratch: the record being chained
	line      []byte // scratch: its hashed line
	entries   []Entry
	waiters   []chan error
	forceSync bool

	lingerT, syncT, retryT *time.Timer
	syncArmed              bool
	unsynced               bool
	failed                 error
	lastFailLog            time.Time
}

func newWriter(l *Log, t *trail, st chainState) *writer {
	w := &writer{
		l: l, opts: &l.opts, log: l.opts.Logger, trail: t,
		seq: st.seq, prevHash: st.hash,
		lingerT: time.NewTimer(time.Hour), syncT: time.NewTimer(time.Hour), retryT: time.NewTimer(time.Hour),
	}
	w.lingerT.Stop()
	w.syncT.Stop()
	w.retryT.Stop()
	return w
}

func (w *writer) run() {
	defer close(w.l.done)
	for {
		select {
		case p, ok := <-w.l.q:
			if !ok {
				w.shutdown()
				return
			}
			w.add(p)
			w.linger(p)
			if closed := w.drain(); closed {
				w.shutdown()
				return
			}
		case <-w.syncT.C:
			w.syncArmed = false
			w.sync()
		case <-w.retryT.C:
			w.retry()
		}
	}
}

// linger, in async mode, lets a burst queue up for FlushInterval after its
// first record instead of taking records as they come. A writer that keeps
// up would otherwise park on the queue after every record and every Append
// would have to wake it (a goroutine and often a thread wakeup, several µs
// of scheduler work per decision); this way Append only drops the record
// into the channel's buffer, and the writer wakes about once per interval.
// Durable mode never lingers: its batches form while the previous fsync
// runs.
func (w *writer) linger(p pending) {
	if w.opts.Durability != Async || p.barrier {
		return
	}
	w.lingerT.Reset(w.opts.FlushInterval)
	select {
	case <-w.lingerT.C:
	case <-w.l.kick: // Sync, Close or a half-full queue
		w.lingerT.Stop()
	}
}

// drain takes everything queued, in batches of at most MaxBatch records or
// flushThreshold bytes, and ends each batch. It reports whether the queue
// was closed.
func (w *writer) drain() bool {
	for have := 1; ; have = 0 { // the first batch has run's record already
		closed, more := w.gather(have)
		w.endBatch()
		if closed || !more {
			return closed
		}
	}
}

// gather adds what is already queued to a batch holding have records,
// without waiting: under load batches grow by themselves, which is what
// makes group commit work. more reports that it stopped at a batch limit
// with records left.
func (w *writer) gather(have int) (closed, more bool) {
	for n := have; n < w.opts.MaxBatch && len(w.buf) < flushThreshold; n++ {
		select {
		case p, ok := <-w.l.q:
			if !ok {
				return true, false
			}
			w.add(p)
		default:
			return false, false
		}
	}
	return false, len(w.l.q) > 0
}

// add chains one record into the current batch.
func (w *writer) add(p pending) {
	w.l.release(p)
	if p.barrier {
		w.waiters = append(w.waiters, p.done)
		w.forceSync = true
		return
	}
	if w.failed != nil {
		w.reject(p, unavailable(w.failed))
		return
	}
	if p.enc == nil { // async: encoded here
		e, err := w.l.encode(p.rec)
		if err != nil {
			w.l.stats.encodeErrors.Add(1)
			w.l.stats.lost.Add(1)
			w.log.Error("audit: record not encodable, not written", "err", err)
			return
		}
		p.rec, p.enc = e.rec, e.enc
	}
	r := p.rec
	seq := w.seq + 1
	w.body = p.enc.appendChained(w.body[:0], w.opts.ChainID, seq, w.prevHash)
	w.l.putEncoder(p.enc)
	p.enc = nil
	line, hash := appendLine(w.line[:0], w.body)
	w.line = line
	r.ChainID, r.Seq, r.PrevHash, r.Hash = w.opts.ChainID, seq, w.prevHash, hash
	if w.trail.needsRotate(len(w.buf), len(line)) && !w.rotate(r.Seq) {
		w.reject(p, unavailable(w.failed))
		return
	}
	w.buf = append(w.buf, line...)
	w.seq, w.prevHash = r.Seq, r.Hash
	e := Entry{Record: r}
	if len(w.l.sinks) > 0 {
		// Sinks outlive the scratch buffer, so they get their own copy.
		e.Line = append([]byte(nil), line[:len(line)-1]...)
	}
	w.entries = append(w.entries, e)
	if p.done != nil {
		w.waiters = append(w.waiters, p.done)
	}
}

// unavailable is how a file failure reaches callers: ErrUnavailable, so the
// decision layer can tell it apart, wrapping the cause.
func unavailable(err error) error { return fmt.Errorf("%w: %w", ErrUnavailable, err) }

// reject tells a waiting caller its record is not in the trail, or counts
// an async record as lost.
func (w *writer) reject(p pending, err error) {
	w.l.putEncoder(p.enc)
	if p.done != nil {
		p.done <- err
	}
	if !p.barrier {
		w.l.stats.lost.Add(1)
	}
}

// endBatch writes the batch and makes it as durable as the mode asks: durable
// mode (and a Sync barrier) fsyncs once and releases every waiter of the
// batch; async mode leaves the fsync to the sync timer.
func (w *writer) endBatch() {
	if w.failed != nil {
		w.release(unavailable(w.failed))
		return
	}
	w.flush()
	if w.opts.Durability == Durable || w.forceSync {
		w.sync()
		w.forceSync = false
	}
	w.release(nil) // on failure, fail has released them with the error
	w.publish()
}

// flush writes the batch to the file.
func (w *writer) flush() {
	if len(w.buf) == 0 || w.failed != nil {
		return
	}
	if err := w.write(); err != nil {
		w.fail(err)
		return
	}
	w.buf = w.buf[:0]
	w.l.stats.written.Add(uint64(len(w.entries)))
	w.l.stats.lastSeq.Store(w.seq)
	w.unsynced = true
	if w.opts.Durability == Async && w.opts.SyncInterval > 0 && !w.syncArmed {
		w.syncT.Reset(w.opts.SyncInterval)
		w.syncArmed = true
	}
}

func (w *writer) write() error {
	if w.opts.beforeWrite != nil {
		if err := w.opts.beforeWrite(); err != nil {
			return err
		}
	}
	return w.trail.write(w.buf)
}

func (w *writer) sync() {
	if !w.unsynced || w.failed != nil {
		return
	}
	if err := w.trail.sync(); err != nil {
		w.fail(err)
		return
	}
	w.unsynced = false
	w.l.stats.syncs.Add(1)
}

// publish hands written entries to the sinks; a full sink queue drops.
func (w *writer) publish() {
	if len(w.buf) > 0 || w.failed != nil {
		return // not written yet (or never will be)
	}
	for _, s := range w.l.sinks {
		for _, e := range w.entries {
			s.offer(e)
		}
	}
	clear(w.entries)
	w.entries = w.entries[:0]
}

func (w *writer) release(err error) {
	for _, c := range w.waiters {
		c <- err
	}
	clear(w.waiters)
	w.waiters = w.waiters[:0]
}

// rotate writes the records before the new one to the current file, which
// trail.rotate fsyncs and closes, and starts the file whose first record is
// firstSeq. The chain simply continues across files.
func (w *writer) rotate(firstSeq uint64) bool {
	w.flush()
	if w.failed != nil {
		return false
	}
	if err := w.trail.rotate(firstSeq); err != nil {
		w.fail(err)
		return false
	}
	w.unsynced = false
	w.l.stats.rotations.Add(1)
	w.l.stats.syncs.Add(1)
	w.publish()
	return true
}

// fail stops the trail: the batch in memory is lost (waiters are told),
// Append fails fast with ErrUnavailable, and the writer retries opening the
// trail from what is on disk every second.
func (w *writer) fail(err error) {
	w.failed = err
	w.l.setFailed(err)
	w.l.stats.fileErrors.Add(1)
	lost := len(w.entries)
	w.l.stats.lost.Add(uint64(lost))
	w.log.Error("audit: file trail failed; refusing decisions until it recovers", "err", err, "lost", lost)
	clear(w.entries)
	w.entries, w.buf = w.entries[:0], w.buf[:0]
	w.release(unavailable(err))
	if cerr := w.trail.close(); cerr != nil {
		w.log.Warn("audit: closing failed file", "err", cerr)
	}
	w.retryT.Reset(retryInterval)
}

// retry reopens the trail from disk: the chain resumes after the last record
// that actually reached the file.
func (w *writer) retry() {
	t, st, err := openTrail(w.opts.Dir, w.opts.ChainID, w.opts.MaxFileSize, w.log)
	if err != nil {
		if time.Since(w.lastFailLog) > time.Minute {
			w.log.Error("audit: file trail still failing", "err", err)
			w.lastFailLog = time.Now()
		}
		w.retryT.Reset(retryInterval)
		return
	}
	w.trail, w.seq, w.prevHash, w.failed, w.unsynced = t, st.seq, st.hash, nil, false
	w.l.stats.lastSeq.Store(st.seq)
	w.l.setFailed(nil)
	w.log.Info("audit: file trail recovered", "seq", st.seq)
}

// shutdown drains: write, fsync, release, publish, close the file.
func (w *writer) shutdown() {
	w.forceSync = true
	w.endBatch()
	w.syncT.Stop()
	w.retryT.Stop()
	if w.failed == nil {
		if err := w.trail.close(); err != nil {
			w.fail(err)
		}
	}
}

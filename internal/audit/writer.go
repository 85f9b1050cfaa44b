package audit

import (
	"log/slog"
	"time"
)

// flushThreshold makes async writes go out before the flush timer when a
// burst has filled this much: bigger writes gain little.
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

	flushT, syncT, retryT    *time.Timer
	flushArmed, syncArmed    bool
	unsynced                 bool
	failed                   error
	lastSinkLog, lastFailLog time.Time
}

func newWriter(l *Log, t *trail, st chainState) *writer {
	w := &writer{
		l: l, opts: &l.opts, log: l.opts.Logger, trail: t,
		seq: st.seq, prevHash: st.hash,
		flushT: time.NewTimer(time.Hour), syncT: time.NewTimer(time.Hour), retryT: time.NewTimer(time.Hour),
	}
	w.flushT.Stop()
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
			closed := w.gather()
			w.endBatch()
			if closed {
				w.shutdown()
				return
			}
		case <-w.flushT.C:
			w.flushArmed = false
			w.flush()
			w.publish()
		case <-w.syncT.C:
			w.syncArmed = false
			w.sync()
		case <-w.retryT.C:
			w.retry()
		}
	}
}

// gather takes what is already queued, up to MaxBatch records or
// flushThreshold bytes, without waiting: under load batches grow by
// themselves, which is what makes group commit work. It reports whether the
// queue was closed.
func (w *writer) gather() bool {
	for n := 1; n < w.opts.MaxBatch && len(w.buf) < flushThreshold; n++ {
		select {
		case p, ok := <-w.l.q:
			if !ok {
				return true
			}
			w.add(p)
		default:
			return false
		}
	}
	return false
}

// add chains one record into the current batch.
func (w *writer) add(p pending) {
	if p.barrier {
		w.waiters = append(w.waiters, p.done)
		w.forceSync = true
		return
	}
	if w.failed != nil {
		w.reject(p, w.failed)
		return
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
		w.reject(p, w.failed)
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

// endBatch makes the batch as durable as the mode asks. Durable mode (and a
// Sync barrier) writes, fsyncs once and releases every waiter of the batch.
// Async mode writes a big batch now and a small one when the flush timer
// fires, so a trickle of records costs one write per FlushInterval.
func (w *writer) endBatch() {
	if w.failed != nil {
		w.release(w.failed)
		return
	}
	if w.opts.Durability == Durable || w.forceSync {
		w.flush()
		w.sync()
		w.release(w.failed)
		w.publish()
		w.forceSync = false
		return
	}
	if len(w.buf) >= flushThreshold {
		w.flush()
		w.publish()
	} else if len(w.buf) > 0 && !w.flushArmed {
		w.flushT.Reset(w.opts.FlushInterval)
		w.flushArmed = true
	}
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
	w.release(err)
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
	w.flushT.Stop()
	w.syncT.Stop()
	w.retryT.Stop()
	if w.failed == nil {
		if err := w.trail.close(); err != nil {
			w.fail(err)
		}
	}
}

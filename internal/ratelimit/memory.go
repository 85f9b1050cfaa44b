package ratelimit

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

// MemoryOptions configure NewMemory. The zero value is ready to use.
type MemoryOptions struct {
	// Clock returns the current time; default time.Now. Tests inject a fake
	// clock. Only differences between readings are used, so a clock going
	// backwards never shortens a window (charges keep their order).
	Clock func() time.Time
	// Shards is the number of independently locked partitions of the
	// counters, rounded up to a power of two; default 64. Calls touching
	// different counters rarely share a lock.
	Shards int
	// SweepInterval is how often a background goroutine drops counters whose
	// window is empty, so idle keys do not hold memory; default 1 minute.
	// A negative value runs no goroutine (counters are then dropped only
	// when charged again after their window emptied).
	SweepInterval time.Duration
}

const (
	defaultShards        = 64
	defaultSweepInterval = time.Minute
)

// NewMemory returns the in-process limiter: an exact sliding log per counter,
// kept in memory, so limits are per replica. Close stops its sweeper.
func NewMemory(opts MemoryOptions) Limiter {
	clock := opts.Clock
	if clock == nil {
		clock = time.Now
	}
	n := opts.Shards
	if n <= 0 {
		n = defaultShards
	}
	size := 1
	for size < n {
		size <<= 1
	}
	m := &memoryLimiter{
		gate:   gate{name: "in-memory limiter"},
		clock:  clock,
		base:   clock(),
		seed:   maphash.MakeSeed(),
		shards: make([]memShard, size),
		mask:   uint64(size - 1),
		stop:   make(chan struct{}),
	}
	for i := range m.shards {
		m.shards[i].logs = make(map[counterKey]*slidingLog)
	}
	interval := opts.SweepInterval
	if interval == 0 {
		interval = defaultSweepInterval
	}
	if interval > 0 {
		m.wg.Add(1)
		go m.janitor(interval)
	}
	return m
}

type memoryLimiter struct {
	clock  func() time.Time
	base   time.Time // times are kept as nanoseconds since base
	seed   maphash.Seed
	shards []memShard
	mask   uint64

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	gate
}

type memShard struct {
	mu   sync.Mutex
	logs map[counterKey]*slidingLog
	_    [40]byte // keep neighbouring shards' locks off one cache line
}

// entry is one charge: when (ns since base) and how much.
type entry struct {
	at, cost int64
}

// slidingLog is the exact log of one counter: the charges still inside the
// window, oldest first, and their sum.
type slidingLog struct {
	entries []entry // live entries are entries[head:]
	head    int
	total   int64
	window  int64 // window of the latest charge, for the sweeper
}

// expire drops the entries that left the window ending at now: an entry
// counts while now-at < window.
func (l *slidingLog) expire(now, window int64) {
	cut := now - window
	for l.head < len(l.entries) && l.entries[l.head].at <= cut {
		l.total -= l.entries[l.head].cost
		l.head++
	}
	switch {
	case l.head == len(l.entries):
		if cap(l.entries) > 1024 {
			l.entries = nil // let a past burst's backing array go
		}
		l.entries, l.head = l.entries[:0], 0
	case l.head >= 32 && l.head*2 >= len(l.entries):
		n := copy(l.entries, l.entries[l.head:])
		l.entries, l.head = l.entries[:n], 0
	}
}

func (l *slidingLog) empty() bool { return l.head == len(l.entries) }

// add appends a charge at now, or at the newest entry's time if the clock
// went backwards, merging with an entry of the same instant.
func (l *slidingLog) add(now, cost, window int64) {
	if n := len(l.entries); n > l.head {
		last := &l.entries[n-1]
		if now <= last.at {
			last.cost += cost
			l.total += cost
			l.window = window
			return
		}
	}
	l.entries = append(l.entries, entry{at: now, cost: cost})
	l.total += cost
	l.window = window
}

func (l *slidingLog) oldest() int64 { return l.entries[l.head].at }

func (m *memoryLimiter) shardOf(k *counterKey) int {
	var h maphash.Hash
	h.SetSeed(m.seed)
	h.WriteString(k.Policy)
	h.WriteByte(0)
	h.WriteString(k.ID)
	h.WriteByte(0)
	h.WriteString(k.Key)
	return int(h.Sum64() & m.mask)
}

// Charge implements Limiter. It never fails for a valid request; ctx is not
// consulted since nothing waits. The counters' shard locks are held from
// reading the first counter to charging the last, so a call is all or
// nothing against concurrent ones. The buffers keep a call of up to four
// limits off the heap.
func (m *memoryLimiter) Charge(_ context.Context, reqs []Request, charge bool) ([]Result, error) {
	var (
		normBuf           [4]Request
		shardBuf, lockBuf [4]int
		logBuf            [4]*slidingLog
		usedBuf           [4]int64
	)
	norm, err := m.enter(reqs, normBuf[:0])
	if err != nil || len(norm) == 0 {
		return nil, err
	}
	shards, locks := m.locate(norm, shardBuf[:0], lockBuf[:0])
	for _, s := range locks {
		m.shards[s].mu.Lock()
	}
	defer func() {
		for _, s := range locks {
			m.shards[s].mu.Unlock()
		}
	}()
	now := int64(m.clock().Sub(m.base))
	logs, used, fits := m.measure(norm, shards, now, logBuf[:0], usedBuf[:0])
	return m.settle(norm, shards, logs, used, now, charge && fits), nil
}

// locate appends each request's shard to shards, and the shards to lock,
// ascending and once each, to locks.
func (m *memoryLimiter) locate(norm []Request, shards, locks []int) ([]int, []int) {
	for i := range norm {
		k := norm[i].counter()
		s := m.shardOf(&k)
		shards = append(shards, s)
		locks = insertSorted(locks, s)
	}
	return shards, locks
}

// measure expires each counter's old entries and appends its log (nil for
// a counter never charged) and what it has used. fits reports whether
// every request fits its limit.
func (m *memoryLimiter) measure(norm []Request, shards []int, now int64, logs []*slidingLog, used []int64) (_ []*slidingLog, _ []int64, fits bool) {
	fits = true
	for i := range norm {
		r := &norm[i]
		l := m.shards[shards[i]].logs[r.counter()]
		var u int64
		if l != nil {
			l.expire(now, int64(r.Window))
			u = l.total
		}
		logs = append(logs, l)
		used = append(used, u)
		if u+r.Cost > r.Limit {
			fits = false
		}
	}
	return logs, used, fits
}

// settle charges every counter when charged, and builds the results.
func (m *memoryLimiter) settle(norm []Request, shards []int, logs []*slidingLog, used []int64, now int64, charged bool) []Result {
	res := make([]Result, len(norm))
	for i := range norm {
		r := &norm[i]
		w := int64(r.Window)
		l := logs[i]
		rem := r.Limit - used[i]
		if charged {
			if l == nil {
				l = &slidingLog{}
				m.shards[shards[i]].logs[r.counter()] = l
			}
			l.add(now, r.Cost, w)
			rem -= r.Cost
			res[i].Charged = r.Cost
		}
		reset := now + w
		if l != nil && !l.empty() {
			reset = l.oldest() + w
		}
		res[i].Allowed = used[i]+r.Cost <= r.Limit
		res[i].Limit = r.Limit
		res[i].Remaining = max(rem, 0)
		res[i].Reset = m.base.Add(time.Duration(reset))
	}
	return res
}

// insertSorted adds s to the ascending, duplicate-free list xs. Shard locks
// are always taken in ascending order, so calls cannot deadlock.
func insertSorted(xs []int, s int) []int {
	i := 0
	for i < len(xs) && xs[i] < s {
		i++
	}
	if i < len(xs) && xs[i] == s {
		return xs
	}
	xs = append(xs, 0)
	copy(xs[i+1:], xs[i:])
	xs[i] = s
	return xs
}

// sweep drops every counter whose window is empty at now.
func (m *memoryLimiter) sweep() {
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		now := int64(m.clock().Sub(m.base))
		for k, l := range sh.logs {
			l.expire(now, l.window)
			if l.empty() {
				delete(sh.logs, k)
			}
		}
		sh.mu.Unlock()
	}
}

// size counts the counters held, for tests.
func (m *memoryLimiter) size() int {
	n := 0
	for i := range m.shards {
		m.shards[i].mu.Lock()
		n += len(m.shards[i].logs)
		m.shards[i].mu.Unlock()
	}
	return n
}

func (m *memoryLimiter) janitor(interval time.Duration) {
	defer m.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.sweep()
		}
	}
}

// Close stops the sweeper. Charge calls after Close fail with ErrUnavailable.
func (m *memoryLimiter) Close() error {
	m.closeOnce.Do(func() {
		m.closed.Store(true)
		close(m.stop)
		m.wg.Wait()
	})
	return nil
}

// Stats implements StatsReporter.
func (m *memoryLimiter) Stats() Stats {
	return Stats{Calls: m.calls.Load(), Errors: m.errors.Load()}
}

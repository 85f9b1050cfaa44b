package audit

import (
	"context"
	"sync"
	"sync/atomic"
)

// DefaultSubscriberBuffer bounds the events waiting for one subscriber.
const DefaultSubscriberBuffer = 4096

// Broadcaster is a Sink that fans records out to live subscribers (the
// AuditService stream). A subscriber that falls behind loses events, counted
// on its Subscription; it never slows the others or the trail.
type Broadcaster struct {
	mu      sync.RWMutex
	subs    map[*Subscription]struct{}
	closed  bool
	dropped atomic.Uint64
}

// NewBroadcaster returns a broadcaster with no subscribers. Add it to
// Options.Sinks and hand it to NewStreamServer.
func NewBroadcaster() *Broadcaster {
	return &Broadcaster{subs: map[*Subscription]struct{}{}}
}

// Subscription receives the entries its filter accepts.
type Subscription struct {
	b       *Broadcaster
	c       chan Entry
	match   func(*Entry) bool
	dropped atomic.Uint64
	once    sync.Once
}

// Subscribe registers a subscriber with a buffer of n entries (0: the
// default). match, called on the sink goroutine, selects entries; nil takes
// all. After the broadcaster closes, C is closed.
func (b *Broadcaster) Subscribe(n int, match func(*Entry) bool) *Subscription {
	s := &Subscription{b: b, c: make(chan Entry, orDefault(n, DefaultSubscriberBuffer)), match: match}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		close(s.c)
		s.once.Do(func() {})
		return s
	}
	b.subs[s] = struct{}{}
	return s
}

// C delivers the entries, in chain order.
func (s *Subscription) C() <-chan Entry { return s.c }

// Dropped counts entries this subscriber missed because it was behind.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close unsubscribes and closes C.
func (s *Subscription) Close() {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.closeLocked()
}

func (s *Subscription) closeLocked() {
	s.once.Do(func() {
		delete(s.b.subs, s)
		close(s.c)
	})
}

// Subscribers is the number of live subscriptions.
func (b *Broadcaster) Subscribers() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.subs)
}

// Dropped counts entries dropped across all subscribers.
func (b *Broadcaster) Dropped() uint64 { return b.dropped.Load() }

// Write offers each entry to each matching subscriber without blocking.
func (b *Broadcaster) Write(_ context.Context, batch []Entry) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for s := range b.subs {
		for i := range batch {
			if s.match != nil && !s.match(&batch[i]) {
				continue
			}
			select {
			case s.c <- batch[i]:
			default:
				s.dropped.Add(1)
				b.dropped.Add(1)
			}
		}
	}
	return nil
}

// Close ends every subscription; streams see their channel close.
func (b *Broadcaster) Close(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		s.closeLocked()
	}
	return nil
}

var _ Sink = (*Broadcaster)(nil)

package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// env is one limiter under test and control over its notion of time.
type env struct {
	lim Limiter
	// now is the limiter's current time (a fake clock, or the real one).
	now func() time.Time
	// advance lets d pass (moves the fake clock, or sleeps).
	advance func(d time.Duration)
	// window is short enough to wait out with advance.
	window time.Duration
	// slack is how far Reset may be from the value computed from now (0 for
	// a fake clock).
	slack time.Duration
}

// testLimiter is the suite every Limiter implementation passes.
func testLimiter(t *testing.T, newEnv func(t *testing.T) *env) {
	ctx := context.Background()

	t.Run("ConcurrentExactness", func(t *testing.T) {
		e := newEnv(t)
		const n, limit = 50, 20
		req := []Request{{Policy: "p", ID: "sends", Key: "u1", Limit: limit, Window: time.Minute, Cost: 1}}
		var allowed, denied atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				res, err := e.lim.Charge(ctx, req, true)
				if err != nil {
					t.Error(err)
					return
				}
				switch {
				case res[0].Allowed && res[0].Charged == 1:
					allowed.Add(1)
				case !res[0].Allowed && res[0].Charged == 0:
					denied.Add(1)
				default:
					t.Errorf("inconsistent result %+v", res[0])
				}
			}()
		}
		close(start)
		wg.Wait()
		if allowed.Load() != limit || denied.Load() != n-limit {
			t.Fatalf("admitted %d, denied %d; want %d and %d", allowed.Load(), denied.Load(), limit, n-limit)
		}
		res := charge(t, e.lim, false, req...)
		if res[0].Remaining != 0 || res[0].Allowed {
			t.Fatalf("after the burst: %+v, want Remaining 0 and not allowed", res[0])
		}
	})

	t.Run("ConcurrentManyKeys", func(t *testing.T) {
		e := newEnv(t)
		const keys, tries, limit = 16, 12, 5
		var admitted [keys]atomic.Int64
		var wg sync.WaitGroup
		for k := range keys {
			for range tries {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res, err := e.lim.Charge(ctx, []Request{
						{Policy: "p", ID: "a", Key: fmt.Sprint("k", k), Limit: limit, Window: time.Minute, Cost: 1},
						{Policy: "p", ID: "b", Key: fmt.Sprint("k", k%4), Limit: 1000, Window: time.Minute, Cost: 1},
					}, true)
					if err != nil {
						t.Error(err)
						return
					}
					if res[0].Charged == 1 {
						admitted[k].Add(1)
					}
				}()
			}
		}
		wg.Wait()
		total := int64(0)
		for k := range keys {
			if got := admitted[k].Load(); got != limit {
				t.Errorf("key k%d admitted %d, want %d", k, got, limit)
			}
			total += admitted[k].Load()
		}
		// Counter b was charged exactly once per admitted call.
		for k := range 4 {
			res := charge(t, e.lim, false, Request{Policy: "p", ID: "b", Key: fmt.Sprint("k", k), Limit: 1000, Window: time.Minute, Cost: 1})
			if want := int64(1000 - 4*limit); res[0].Remaining != want {
				t.Errorf("counter b/k%d remaining %d, want %d", k, res[0].Remaining, want)
			}
		}
	})

	t.Run("WeightedCost", func(t *testing.T) {
		e := newEnv(t)
		r := Request{Policy: "p", ID: "recipients", Key: "u1", Limit: 10, Window: time.Hour}
		r.Cost = 7
		expect(t, charge(t, e.lim, true, r)[0], true, 7, 3)
		r.Cost = 5 // would make 12: refused, nothing spent
		expect(t, charge(t, e.lim, true, r)[0], false, 0, 3)
		r.Cost = 3 // still fits exactly
		expect(t, charge(t, e.lim, true, r)[0], true, 3, 0)
		r.Cost = 1
		expect(t, charge(t, e.lim, true, r)[0], false, 0, 0)
		// A cost below 1 counts as 1.
		r2 := Request{Policy: "p", ID: "recipients", Key: "u2", Limit: 2, Window: time.Hour, Cost: 0}
		expect(t, charge(t, e.lim, true, r2)[0], true, 1, 1)
		r2.Cost = -5
		expect(t, charge(t, e.lim, true, r2)[0], true, 1, 0)
		// A cost over the limit never fits, even on an empty counter.
		r3 := Request{Policy: "p", ID: "recipients", Key: "u3", Limit: 2, Window: time.Hour, Cost: 3}
		expect(t, charge(t, e.lim, true, r3)[0], false, 0, 2)
	})

	t.Run("AllOrNothing", func(t *testing.T) {
		e := newEnv(t)
		a := Request{Policy: "p", ID: "per-hour", Key: "u1", Limit: 5, Window: time.Hour, Cost: 1}
		b := Request{Policy: "p", ID: "per-min", Key: "u1", Limit: 2, Window: time.Minute, Cost: 1}
		for i := range 2 {
			res := charge(t, e.lim, true, a, b)
			expect(t, res[0], true, 1, int64(4-i))
			expect(t, res[1], true, 1, int64(1-i))
		}
		// b is full: a fits its own limit but the call charges nothing.
		res := charge(t, e.lim, true, a, b)
		expect(t, res[0], true, 0, 3)
		expect(t, res[1], false, 0, 0)
		res = charge(t, e.lim, false, a)
		expect(t, res[0], true, 0, 3)
		// a alone is still chargeable.
		res = charge(t, e.lim, true, a)
		expect(t, res[0], true, 1, 2)
	})

	t.Run("DryRunChargesNothing", func(t *testing.T) {
		e := newEnv(t)
		r := Request{Policy: "p", ID: "x", Key: "u1", Limit: 3, Window: time.Hour, Cost: 2}
		for range 5 {
			expect(t, charge(t, e.lim, false, r)[0], true, 0, 3)
		}
		expect(t, charge(t, e.lim, true, r)[0], true, 2, 1)
		// A dry run reports what a real call would get.
		expect(t, charge(t, e.lim, false, r)[0], false, 0, 1)
		r.Cost = 1
		expect(t, charge(t, e.lim, false, r)[0], true, 0, 1)
		expect(t, charge(t, e.lim, true, r)[0], true, 1, 0)
	})

	t.Run("WindowSlides", func(t *testing.T) {
		e := newEnv(t)
		w := e.window
		r := Request{Policy: "p", ID: "x", Key: "u1", Limit: 4, Window: w, Cost: 2}
		expect(t, charge(t, e.lim, true, r)[0], true, 2, 2)
		firstDone := e.now()
		e.advance(w / 2)
		secondStart := e.now()
		expect(t, charge(t, e.lim, true, r)[0], true, 2, 0)
		expect(t, charge(t, e.lim, true, r)[0], false, 0, 0)
		// Past the first charge's window, inside the second's: only the
		// first charge has left (a fixed window would have reset both).
		target := firstDone.Add(w + secondStart.Sub(firstDone)/2)
		e.advance(target.Sub(e.now()))
		expect(t, charge(t, e.lim, false, r)[0], true, 0, 2)
		expect(t, charge(t, e.lim, true, r)[0], true, 2, 0)
		// Once everything aged out the full limit is back.
		e.advance(w + e.slack)
		expect(t, charge(t, e.lim, false, r)[0], true, 0, 4)
	})

	t.Run("WindowGrows", func(t *testing.T) {
		// A policy reload lengthens a limit's window: charges made under
		// the short window count for as long as the new one says, even
		// past the moment they would have left the old one.
		e := newEnv(t)
		w := e.window
		r := Request{Policy: "p", ID: "x", Key: "u1", Limit: 3, Window: w, Cost: 1}
		expect(t, charge(t, e.lim, true, r)[0], true, 1, 2)
		expect(t, charge(t, e.lim, true, r)[0], true, 1, 1)
		r.Window = 4 * w
		expect(t, charge(t, e.lim, true, r)[0], true, 1, 0)
		e.advance(w + w/2)
		expect(t, charge(t, e.lim, true, r)[0], false, 0, 0)
	})

	t.Run("SeparateKeysIndependent", func(t *testing.T) {
		e := newEnv(t)
		base := Request{Policy: "p", ID: "x", Key: "a:b", Limit: 1, Window: time.Hour, Cost: 1}
		expect(t, charge(t, e.lim, true, base)[0], true, 1, 0)
		expect(t, charge(t, e.lim, true, base)[0], false, 0, 0)
		others := []Request{
			{Policy: "p", ID: "x", Key: "a:c"},
			{Policy: "p", ID: "y", Key: "a:b"},
			{Policy: "q", ID: "x", Key: "a:b"},
			// Parts that would collide if joined naively with ':'.
			{Policy: "p", ID: "x:a", Key: "b"},
			{Policy: "p:x", ID: "a", Key: "b"},
			{Policy: "p}:x", ID: "a", Key: "b"},
			{Policy: "p", ID: "x", Key: "a%3Ab"},
			{Policy: "p", ID: "x", Key: "a{b"},
			{Policy: "", ID: "x", Key: "a:b"},
			{Policy: "%", ID: "x", Key: "a:b"},
			{Policy: "p", ID: "", Key: "x:a:b"},
		}
		for _, o := range others {
			o.Limit, o.Window, o.Cost = 1, time.Hour, 1
			res := charge(t, e.lim, true, o)
			if !res[0].Allowed || res[0].Charged != 1 {
				t.Errorf("counter %+v shares state with another: %+v", o, res[0])
			}
		}
	})

	t.Run("RemainingAndReset", func(t *testing.T) {
		e := newEnv(t)
		w := 10 * time.Minute
		r := Request{Policy: "p", ID: "x", Key: "u1", Limit: 10, Window: w, Cost: 1}
		// Empty window: Reset is now + Window.
		before := e.now()
		res := charge(t, e.lim, false, r)
		expect(t, res[0], true, 0, 10)
		within(t, "empty-window Reset", res[0].Reset, before.Add(w), e.now().Add(w), e.slack)
		if res[0].Limit != 10 {
			t.Errorf("Limit = %d", res[0].Limit)
		}

		t0 := e.now()
		res = charge(t, e.lim, true, r)
		t0end := e.now()
		expect(t, res[0], true, 1, 9)
		within(t, "Reset after first charge", res[0].Reset, t0.Add(w), t0end.Add(w), e.slack)
		firstReset := res[0].Reset

		e.advance(20 * time.Millisecond)
		r.Cost = 2
		res = charge(t, e.lim, true, r)
		expect(t, res[0], true, 2, 7)
		if !res[0].Reset.Equal(firstReset) {
			t.Errorf("Reset moved to %v, want the oldest charge's %v", res[0].Reset, firstReset)
		}
		r.Cost = 8
		res = charge(t, e.lim, true, r)
		expect(t, res[0], false, 0, 7)
		if !res[0].Reset.Equal(firstReset) {
			t.Errorf("refused call's Reset %v, want %v", res[0].Reset, firstReset)
		}
	})

	t.Run("ZeroLimitDeniesAll", func(t *testing.T) {
		e := newEnv(t)
		for _, l := range []int64{0, -3} {
			r := Request{Policy: "p", ID: "x", Key: "u1", Limit: l, Window: time.Hour, Cost: 1}
			res := charge(t, e.lim, true, r)
			if res[0].Allowed || res[0].Charged != 0 || res[0].Remaining != 0 || res[0].Limit != 0 {
				t.Errorf("limit %d: %+v", l, res[0])
			}
		}
	})

	t.Run("InvalidRequests", func(t *testing.T) {
		e := newEnv(t)
		ok := Request{Policy: "p", ID: "x", Key: "u1", Limit: 5, Window: time.Hour, Cost: 1}
		bad := ok
		bad.ID, bad.Window = "y", 0
		if _, err := e.lim.Charge(ctx, []Request{ok, bad}, true); !errors.Is(err, ErrInvalidRequest) || errors.Is(err, ErrUnavailable) {
			t.Errorf("zero window: err = %v, want ErrInvalidRequest", err)
		}
		if _, err := e.lim.Charge(ctx, []Request{ok, ok}, true); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("duplicate counter: err = %v, want ErrInvalidRequest", err)
		}
		// Nothing was charged by the refused calls.
		expect(t, charge(t, e.lim, false, ok)[0], true, 0, 5)
		res, err := e.lim.Charge(ctx, nil, true)
		if err != nil || len(res) != 0 {
			t.Errorf("empty call: %v, %v", res, err)
		}
	})

	t.Run("CloseRefuses", func(t *testing.T) {
		e := newEnv(t)
		if err := e.lim.Close(); err != nil {
			t.Fatal(err)
		}
		if err := e.lim.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		_, err := e.lim.Charge(ctx, []Request{{Policy: "p", ID: "x", Key: "k", Limit: 1, Window: time.Second, Cost: 1}}, true)
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Charge after Close: err = %v, want ErrUnavailable", err)
		}
	})

	t.Run("Stats", func(t *testing.T) {
		e := newEnv(t)
		sr, ok := e.lim.(StatsReporter)
		if !ok {
			t.Fatalf("%T does not report stats", e.lim)
		}
		r := Request{Policy: "p", ID: "x", Key: "k", Limit: 1, Window: time.Hour, Cost: 1}
		charge(t, e.lim, true, r)
		_, _ = e.lim.Charge(ctx, []Request{r, r}, true)
		st := sr.Stats()
		if st.Calls != 2 || st.Errors != 1 {
			t.Fatalf("stats %+v, want 2 calls and 1 error", st)
		}
	})
}

func charge(t *testing.T, l Limiter, spend bool, reqs ...Request) []Result {
	t.Helper()
	res, err := l.Charge(context.Background(), reqs, spend)
	if err != nil {
		t.Fatalf("Charge: %v", err)
	}
	if len(res) != len(reqs) {
		t.Fatalf("Charge returned %d results for %d requests", len(res), len(reqs))
	}
	return res
}

func expect(t *testing.T, r Result, allowed bool, charged, remaining int64) {
	t.Helper()
	if r.Allowed != allowed || r.Charged != charged || r.Remaining != remaining {
		t.Fatalf("got Allowed=%v Charged=%d Remaining=%d, want %v %d %d (result %+v)",
			r.Allowed, r.Charged, r.Remaining, allowed, charged, remaining, r)
	}
}

// within checks lo-slack <= got <= hi+slack.
func within(t *testing.T, what string, got, lo, hi time.Time, slack time.Duration) {
	t.Helper()
	if got.Before(lo.Add(-slack)) || got.After(hi.Add(slack)) {
		t.Errorf("%s = %v, want within [%v, %v] ± %v", what, got, lo, hi, slack)
	}
}

// fakeClock is a settable clock safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newMemoryEnv(t *testing.T) *env {
	clk := newFakeClock()
	lim := NewMemory(MemoryOptions{Clock: clk.Now})
	t.Cleanup(func() { _ = lim.Close() })
	return &env{lim: lim, now: clk.Now, advance: clk.Advance, window: time.Minute}
}

func TestMemoryLimiter(t *testing.T) {
	testLimiter(t, newMemoryEnv)
}

func TestMemoryRealClock(t *testing.T) {
	// The default clock (time.Now) works without injection.
	lim := NewMemory(MemoryOptions{})
	defer lim.Close()
	r := Request{Policy: "p", ID: "x", Key: "k", Limit: 2, Window: 50 * time.Millisecond, Cost: 2}
	before := time.Now()
	res := charge(t, lim, true, r)
	expect(t, res[0], true, 2, 0)
	within(t, "Reset", res[0].Reset, before.Add(r.Window), time.Now().Add(r.Window), 0)
	expect(t, charge(t, lim, true, r)[0], false, 0, 0)
	time.Sleep(60 * time.Millisecond)
	expect(t, charge(t, lim, true, r)[0], true, 2, 0)
}

func TestMemoryClockBackwards(t *testing.T) {
	clk := newFakeClock()
	lim := NewMemory(MemoryOptions{Clock: clk.Now, SweepInterval: -1})
	defer lim.Close()
	r := Request{Policy: "p", ID: "x", Key: "k", Limit: 2, Window: time.Minute, Cost: 1}
	charge(t, lim, true, r)
	clk.Advance(-30 * time.Second)
	expect(t, charge(t, lim, true, r)[0], true, 1, 0)
	clk.Advance(30*time.Second + time.Minute)
	// Both charges left together: the second was recorded at the first's
	// time, not 30 s before it.
	expect(t, charge(t, lim, false, r)[0], true, 0, 2)
}

func TestMemorySweepEvictsIdleKeys(t *testing.T) {
	clk := newFakeClock()
	l := NewMemory(MemoryOptions{Clock: clk.Now, SweepInterval: -1}).(*memoryLimiter)
	defer l.Close()
	for i := range 1000 {
		w := time.Minute
		if i%2 == 0 {
			w = time.Hour
		}
		charge(t, l, true, Request{Policy: "p", ID: "x", Key: fmt.Sprint(i), Limit: 5, Window: w, Cost: 1})
	}
	// Dry runs and refused calls on fresh keys create no state.
	charge(t, l, false, Request{Policy: "p", ID: "x", Key: "dry", Limit: 5, Window: time.Minute, Cost: 1})
	charge(t, l, true, Request{Policy: "p", ID: "x", Key: "big", Limit: 5, Window: time.Minute, Cost: 6})
	if n := l.size(); n != 1000 {
		t.Fatalf("%d counters, want 1000", n)
	}
	clk.Advance(time.Minute)
	l.sweep()
	if n := l.size(); n != 500 {
		t.Fatalf("after a minute: %d counters, want the 500 hour-window ones", n)
	}
	clk.Advance(time.Hour)
	l.sweep()
	if n := l.size(); n != 0 {
		t.Fatalf("after an hour: %d counters, want 0", n)
	}
}

func TestMemoryJanitorRunsAndStops(t *testing.T) {
	clk := newFakeClock()
	l := NewMemory(MemoryOptions{Clock: clk.Now, SweepInterval: 5 * time.Millisecond}).(*memoryLimiter)
	charge(t, l, true, Request{Policy: "p", ID: "x", Key: "k", Limit: 5, Window: time.Second, Cost: 1})
	clk.Advance(2 * time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for l.size() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("janitor did not evict the idle counter")
		}
		time.Sleep(time.Millisecond)
	}
	done := make(chan struct{})
	go func() { _ = l.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not stop the janitor")
	}
}

func TestMemoryLogCompaction(t *testing.T) {
	// A long-running counter keeps only what is inside its window.
	clk := newFakeClock()
	l := NewMemory(MemoryOptions{Clock: clk.Now, SweepInterval: -1}).(*memoryLimiter)
	defer l.Close()
	r := Request{Policy: "p", ID: "x", Key: "k", Limit: 100, Window: time.Second, Cost: 1}
	for i := range 20000 {
		clk.Advance(20 * time.Millisecond)
		res := charge(t, l, true, r)[0]
		if i >= 50 {
			expect(t, res, true, 1, 50)
		}
	}
	k := r.counter()
	sh := &l.shards[l.shardOf(&k)]
	sh.mu.Lock()
	log := sh.logs[k]
	live, capacity := len(log.entries)-log.head, cap(log.entries)
	sh.mu.Unlock()
	if live != 50 || capacity > 1024 {
		t.Fatalf("log holds %d live entries in capacity %d; want 50 in a small array", live, capacity)
	}
}

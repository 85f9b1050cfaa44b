package ratelimit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// scriptBatcher runs the sliding-log scripts of concurrent Charge calls
// together. At most maxInFlight round trips are in flight. A call that
// finds one of them free sends its own script at once, from its own
// goroutine, as an unbatched limiter would. A call that finds them all busy
// waits in a queue; when a round trip ends, everything queued by then goes
// in the next one, as one pipeline. So light load pays nothing for
// batching, and under load the syscalls, wake-ups and reply parsing of a
// round trip are shared by the batch, on both the PDP's side and Redis's.
// Each script is still its own atomic EVALSHA.
type scriptBatcher struct {
	client  redis.UniversalClient
	timeout time.Duration

	mu       sync.Mutex
	inFlight int
	queue    []*scriptCall
	closed   bool

	roundTrips atomic.Uint64
}

// scriptCall is one Charge's script and, once finished, its outcome. done
// is made only for a queued call, which another goroutine finishes.
type scriptCall struct {
	ctx  context.Context
	keys []string
	args []any
	out  []int64
	err  error
	done chan struct{}
}

var errBatcherClosed = errors.New("redis limiter closed")

const (
	// maxInFlight bounds the round trips in flight. Two did best in
	// interleaved benchmarks against one, three and four
	// (docs/PERFORMANCE.md): fuller pipelines, less CPU per decision.
	maxInFlight = 2
	maxBatch    = 64 // scripts per round trip
)

func newScriptBatcher(client redis.UniversalClient, timeout time.Duration) *scriptBatcher {
	return &scriptBatcher{client: client, timeout: timeout}
}

// run evaluates one script and returns its reply, or gives up when ctx
// ends. A call given up on may still run in Redis and charge: the caller
// reported it unavailable (a DENY by default), so the error is on the safe
// side.
func (b *scriptBatcher) run(ctx context.Context, keys []string, args []any) ([]int64, error) {
	c := &scriptCall{ctx: ctx, keys: keys, args: args}
	b.mu.Lock()
	switch {
	case b.closed:
		b.mu.Unlock()
		return nil, errBatcherClosed
	case b.inFlight < maxInFlight:
		b.inFlight++
		b.mu.Unlock()
		b.exec(ctx, []*scriptCall{c})
		b.next()
		return c.out, c.err
	}
	c.done = make(chan struct{})
	b.queue = append(b.queue, c)
	b.mu.Unlock()
	select {
	case <-c.done:
		return c.out, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// next ends a round trip: the calls queued meanwhile go in the next one,
// from a new goroutine so that the caller who ended this one can return;
// with none queued, the slot is free again.
func (b *scriptBatcher) next() {
	b.mu.Lock()
	n := min(len(b.queue), maxBatch)
	if n == 0 {
		b.inFlight--
		b.mu.Unlock()
		return
	}
	batch := b.queue[:n:n]
	b.queue = append([]*scriptCall(nil), b.queue[n:]...)
	b.mu.Unlock()
	go func() {
		if live := b.dropAbandoned(batch); len(live) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
			b.exec(ctx, live)
			cancel()
			for _, c := range live {
				close(c.done)
			}
		}
		b.next()
	}()
}

// dropAbandoned finishes the calls whose caller has stopped waiting, so
// that their scripts do not charge for answers nobody reads, and returns
// the others.
func (b *scriptBatcher) dropAbandoned(batch []*scriptCall) []*scriptCall {
	live := batch[:0]
	for _, c := range batch {
		if err := c.ctx.Err(); err != nil {
			c.err = err
			close(c.done)
			continue
		}
		live = append(live, c)
	}
	return live
}

// exec runs a batch's scripts in one round trip: a lone script as a plain
// EVALSHA, several as a pipeline. After a Redis restart or SCRIPT FLUSH an
// EVALSHA fails with NOSCRIPT without running, so those scripts are sent
// again as EVALs, which also cache the script.
func (b *scriptBatcher) exec(ctx context.Context, batch []*scriptCall) {
	cmds := b.send(ctx, batch, slidingLogScript.EvalSha)
	var again []*scriptCall
	for i, c := range batch {
		if redis.HasErrorPrefix(cmds[i].Err(), "NOSCRIPT") {
			again = append(again, c)
			continue
		}
		c.out, c.err = cmds[i].Int64Slice()
	}
	if len(again) > 0 {
		for i, cmd := range b.send(ctx, again, slidingLogScript.Eval) {
			again[i].out, again[i].err = cmd.Int64Slice()
		}
	}
}

type evalFunc func(ctx context.Context, c redis.Scripter, keys []string, args ...any) *redis.Cmd

func (b *scriptBatcher) send(ctx context.Context, batch []*scriptCall, eval evalFunc) []*redis.Cmd {
	b.roundTrips.Add(1)
	if len(batch) == 1 {
		return []*redis.Cmd{eval(ctx, b.client, batch[0].keys, batch[0].args...)}
	}
	cmds := make([]*redis.Cmd, len(batch))
	// Each command carries its own error; Pipelined's is the first of them.
	_, _ = b.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range batch {
			cmds[i] = eval(ctx, p, c.keys, c.args...)
		}
		return nil
	})
	return cmds
}

// close fails the queued calls and any later ones; round trips in flight
// finish.
func (b *scriptBatcher) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for _, c := range b.queue {
		c.err = errBatcherClosed
		close(c.done)
	}
	b.queue = nil
}

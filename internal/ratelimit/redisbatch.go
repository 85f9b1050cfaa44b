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
// together. While fewer than batchWorkers round trips are being made, a
// call sends its own script at once from its own goroutine, as an
// unbatched limiter would: light load pays nothing for batching. Beyond
// that the call is queued, and a worker coming free takes everything
// queued and sends it as one pipeline, so under load the syscalls,
// wake-ups and reply parsing of a round trip are shared by the batch, on
// both the PDP's side and Redis's. Each script is still its own atomic
// EVALSHA.
type scriptBatcher struct {
	client  redis.UniversalClient
	timeout time.Duration
	calls   chan *scriptCall
	stop    chan struct{}
	wg      sync.WaitGroup

	inFlight   atomic.Int32 // round trips being made, direct or batched
	roundTrips atomic.Uint64
}

// scriptCall is one Charge's script and, once done is closed, its outcome.
type scriptCall struct {
	ctx  context.Context // the caller's: once it ends, nobody reads out
	keys []string
	args []any
	out  []int64
	err  error
	done chan struct{}
}

var errBatcherClosed = errors.New("redis limiter closed")

const (
	// batchWorkers is how many batches can be in flight, and how many
	// round trips before calls are batched. Two workers did best in
	// interleaved benchmarks against one, three and four
	// (docs/PERFORMANCE.md).
	batchWorkers = 2
	maxBatch     = 64 // scripts per round trip
)

func newScriptBatcher(client redis.UniversalClient, timeout time.Duration) *scriptBatcher {
	b := &scriptBatcher{client: client, timeout: timeout,
		calls: make(chan *scriptCall, 4*maxBatch), stop: make(chan struct{})}
	b.wg.Add(batchWorkers)
	for range batchWorkers {
		go b.work()
	}
	return b
}

// run sends one script, itself or through a worker, and waits for its
// reply or ctx's end. A call given up on may still run in Redis and
// charge: the caller reported it unavailable (a DENY by default), so the
// error is on the safe side.
func (b *scriptBatcher) run(ctx context.Context, keys []string, args []any) ([]int64, error) {
	if b.inFlight.Add(1) <= batchWorkers {
		// Little traffic: no batch worth joining, so skip the hand-off to
		// a worker. (Script.Run falls back to EVAL on NOSCRIPT.)
		defer b.inFlight.Add(-1)
		b.roundTrips.Add(1)
		return slidingLogScript.Run(ctx, b.client, keys, args...).Int64Slice()
	}
	b.inFlight.Add(-1)
	c := &scriptCall{ctx: ctx, keys: keys, args: args, done: make(chan struct{})}
	select {
	case b.calls <- c:
	case <-b.stop:
		return nil, errBatcherClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case <-c.done:
		return c.out, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (b *scriptBatcher) work() {
	defer b.wg.Done()
	batch := make([]*scriptCall, 0, maxBatch)
	for {
		select {
		case c := <-b.calls:
			batch = append(batch[:0], c)
		case <-b.stop:
			return
		}
	gather:
		for len(batch) < maxBatch {
			select {
			case c := <-b.calls:
				batch = append(batch, c)
			default:
				break gather
			}
		}
		b.inFlight.Add(1)
		b.exec(batch)
		b.inFlight.Add(-1)
		clear(batch) // let the finished calls be collected
	}
}

// exec sends one batch as a pipeline of EVALSHAs. After a Redis restart or
// SCRIPT FLUSH an EVALSHA fails with NOSCRIPT without running, so those
// calls are sent again as EVALs, which also cache the script.
func (b *scriptBatcher) exec(batch []*scriptCall) {
	// A script whose caller stopped waiting is not sent: it would charge
	// for an answer nobody reads.
	live := batch[:0]
	for _, c := range batch {
		if err := c.ctx.Err(); err != nil {
			c.err = err
			close(c.done)
			continue
		}
		live = append(live, c)
	}
	if batch = live; len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	cmds := b.send(ctx, batch, slidingLogScript.EvalSha)
	var again []*scriptCall
	for i, c := range batch {
		if redis.HasErrorPrefix(cmds[i].Err(), "NOSCRIPT") {
			again = append(again, c)
			continue
		}
		c.finish(cmds[i])
	}
	if len(again) > 0 {
		for i, cmd := range b.send(ctx, again, slidingLogScript.Eval) {
			again[i].finish(cmd)
		}
	}
}

func (c *scriptCall) finish(cmd *redis.Cmd) {
	c.out, c.err = cmd.Int64Slice()
	close(c.done)
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

// close stops the workers once their batches are done; calls still queued
// or arriving later fail.
func (b *scriptBatcher) close() {
	close(b.stop)
	b.wg.Wait()
	for {
		select {
		case c := <-b.calls:
			c.err = errBatcherClosed
			close(c.done)
		default:
			return
		}
	}
}

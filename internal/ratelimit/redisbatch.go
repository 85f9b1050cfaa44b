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
// together: a few workers each take the calls waiting when they come free
// and send them as one pipeline, one round trip for the lot. A call that
// finds a worker idle goes at once; under load, the syscalls, wake-ups and
// reply parsing of one round trip are shared by the whole batch, on both
// the PDP's side and Redis's. Two workers did best (against one, three
// and four) in interleaved benchmarks (docs/PERFORMANCE.md). Each script is
// still its own atomic EVALSHA.
type scriptBatcher struct {
	client  redis.UniversalClient
	timeout time.Duration
	calls   chan *scriptCall
	stop    chan struct{}
	wg      sync.WaitGroup

	roundTrips atomic.Uint64
}

// scriptCall is one Charge's script and, once done is closed, its outcome.
type scriptCall struct {
	keys []string
	args []any
	out  []int64
	err  error
	done chan struct{}
}

var errBatcherClosed = errors.New("redis limiter closed")

const (
	batchWorkers = 2  // round trips in flight at once
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

// run queues one script and waits for its reply or ctx's end. A call given
// up on may still run in Redis and charge: the caller reported it
// unavailable (a DENY by default), so the error is on the safe side.
func (b *scriptBatcher) run(ctx context.Context, keys []string, args []any) ([]int64, error) {
	c := &scriptCall{keys: keys, args: args, done: make(chan struct{})}
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
		b.exec(batch)
		clear(batch) // let the finished calls be collected
	}
}

// exec sends one batch as a pipeline of EVALSHAs. After a Redis restart or
// SCRIPT FLUSH an EVALSHA fails with NOSCRIPT without running, so those
// calls are sent again as EVALs, which also cache the script.
func (b *scriptBatcher) exec(batch []*scriptCall) {
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	cmds := b.pipeline(ctx, batch, slidingLogScript.EvalSha)
	var again []*scriptCall
	for i, c := range batch {
		if redis.HasErrorPrefix(cmds[i].Err(), "NOSCRIPT") {
			again = append(again, c)
			continue
		}
		c.finish(cmds[i])
	}
	if len(again) > 0 {
		for i, cmd := range b.pipeline(ctx, again, slidingLogScript.Eval) {
			again[i].finish(cmd)
		}
	}
}

func (c *scriptCall) finish(cmd *redis.Cmd) {
	c.out, c.err = cmd.Int64Slice()
	close(c.done)
}

type evalFunc func(ctx context.Context, c redis.Scripter, keys []string, args ...any) *redis.Cmd

func (b *scriptBatcher) pipeline(ctx context.Context, batch []*scriptCall, eval evalFunc) []*redis.Cmd {
	b.roundTrips.Add(1)
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

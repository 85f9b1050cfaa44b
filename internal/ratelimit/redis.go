package ratelimit

import (
	"context"
	_ "embed"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

//go:embed sliding_log.lua
var slidingLogSrc string

// slidingLogScript is run with EVALSHA, falling back to EVAL on NOSCRIPT
// (after a Redis restart or SCRIPT FLUSH); EVAL caches it again.
var slidingLogScript = redis.NewScript(slidingLogSrc)

// KeyPrefix starts every Redis key of the limiter:
// agentpdp:rl2:{<policy>}:<id>:<key>, each part escaped (see RedisKey).
// The 2 is the version of the members' layout (sliding_log.lua): a
// limiter never reads a set written in another layout.
const KeyPrefix = "agentpdp:rl2:"

// RedisOptions configure NewRedis. The zero value is ready to use.
type RedisOptions struct {
	// Timeout bounds each Charge call (one round trip), on top of the
	// caller's context; default 50 ms. When it passes, Charge returns an
	// error wrapping ErrUnavailable and context.DeadlineExceeded.
	Timeout time.Duration

	// OverLimitCacheTTL is the longest a counter known to be full is
	// answered locally. After a call leaves a counter with Remaining 0, no
	// call can fit it before its Reset, so a later charging call whose every
	// counter is known full is refused without a round trip until
	// min(Reset, now+OverLimitCacheTTL). The cache only ever refuses. Default
	// 5 s; negative disables the cache.
	OverLimitCacheTTL time.Duration

	// OverLimitCacheSize caps the number of cached counters; default 10000.
	// When full, expired entries are dropped, and new ones are not cached
	// until there is room.
	OverLimitCacheSize int
}

const (
	defaultRedisTimeout      = 50 * time.Millisecond
	defaultOverLimitCacheTTL = 5 * time.Second
	defaultOverLimitCacheMax = 10000
)

// NewRedis returns a limiter that keeps every counter in Redis, so that all
// replicas sharing the Redis share the limits. Each Charge is one atomic Lua
// script run, in one round trip shared with concurrent calls, and uses
// Redis's clock. Errors and timeouts return an error wrapping
// ErrUnavailable; whether to fail closed or open is the caller's decision.
// The client is the caller's: Close does not close it.
func NewRedis(client redis.UniversalClient, opts RedisOptions) Limiter {
	if opts.Timeout <= 0 {
		opts.Timeout = defaultRedisTimeout
	}
	if opts.OverLimitCacheTTL == 0 {
		opts.OverLimitCacheTTL = defaultOverLimitCacheTTL
	}
	if opts.OverLimitCacheSize <= 0 {
		opts.OverLimitCacheSize = defaultOverLimitCacheMax
	}
	r := &redisLimiter{gate: gate{name: "redis limiter"}, batch: newScriptBatcher(client, opts.Timeout), timeout: opts.Timeout}
	if opts.OverLimitCacheTTL > 0 {
		r.cache = &overCache{
			ttl: opts.OverLimitCacheTTL,
			max: opts.OverLimitCacheSize,
			m:   make(map[overKey]overEntry),
		}
	}
	return r
}

type redisLimiter struct {
	batch   *scriptBatcher
	timeout time.Duration
	cache   *overCache // nil when disabled
	gate
	cacheHits atomic.Uint64
}

// RedisKey is the Redis key of a counter:
//
//	agentpdp:rl2:{<policy>}:<id>:<key>
//
// Each part has '%', ':', '{', '}', space, control bytes and DEL replaced by
// %XX, so no part can contain a separator or end the hash tag early, and
// different counters never share a key. An empty policy is written "%" (no
// escape produces it), so the hash tag is never empty: Redis Cluster would
// hash the whole key for "{}", and the keys of one call could then fall in
// different slots.
func RedisKey(policy, id, key string) string {
	var b strings.Builder
	b.Grow(len(KeyPrefix) + len(policy) + len(id) + len(key) + 8)
	b.WriteString(KeyPrefix)
	b.WriteByte('{')
	if policy == "" {
		b.WriteByte('%')
	} else {
		escapeKeyPart(&b, policy)
	}
	b.WriteString("}:")
	escapeKeyPart(&b, id)
	b.WriteByte(':')
	escapeKeyPart(&b, key)
	return b.String()
}

func escapeKeyPart(b *strings.Builder, s string) {
	const hexdig = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%' || c == ':' || c == '{' || c == '}' || c <= ' ' || c == 0x7f:
			b.WriteByte('%')
			b.WriteByte(hexdig[c>>4])
			b.WriteByte(hexdig[c&0xf])
		default:
			b.WriteByte(c)
		}
	}
}

// Charge implements Limiter with one EVALSHA of the sliding-log script,
// pipelined with those of concurrent calls (see scriptBatcher).
func (r *redisLimiter) Charge(ctx context.Context, reqs []Request, charge bool) ([]Result, error) {
	norm, err := r.enter(reqs, make([]Request, 0, len(reqs)))
	if err != nil || len(norm) == 0 {
		return nil, err
	}
	keys := make([]string, len(norm))
	for i := range norm {
		keys[i] = RedisKey(norm[i].Policy, norm[i].ID, norm[i].Key)
	}
	if charge && r.cache != nil {
		if res, ok := r.cache.refuse(keys, norm, time.Now()); ok {
			r.cacheHits.Add(1)
			return res, nil
		}
	}

	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	sent := time.Now()
	out, err := r.batch.run(ctx, keys, scriptArgs(norm, charge))
	if err != nil {
		return nil, r.fail(fmt.Errorf("%w: redis: %w", ErrUnavailable, err))
	}
	if len(out) != 2+3*len(norm) {
		return nil, r.fail(fmt.Errorf("%w: redis: rate limit script returned %d values, want %d", ErrUnavailable, len(out), 2+3*len(norm)))
	}
	return r.results(norm, keys, out, sent), nil
}

// scriptArgs are the script's ARGV: whether to charge, then limit, window
// (µs) and cost per counter.
func scriptArgs(norm []Request, charge bool) []any {
	args := make([]any, 1, 1+3*len(norm))
	args[0] = "0"
	if charge {
		args[0] = "1"
	}
	for i := range norm {
		args = append(args, norm[i].Limit, norm[i].Window.Microseconds(), norm[i].Cost)
	}
	return args
}

// results reads the script's reply (Redis's time in µs, whether it charged,
// then allowed, remaining and reset per counter) and updates the cache of
// full counters.
func (r *redisLimiter) results(norm []Request, keys []string, out []int64, sent time.Time) []Result {
	nowUS, charged := out[0], out[1] == 1
	res := make([]Result, len(norm))
	for i := range norm {
		o := out[2+3*i:]
		resetUS := o[2]
		res[i] = Result{
			Allowed:   o[0] == 1,
			Limit:     norm[i].Limit,
			Remaining: o[1],
			Reset:     time.UnixMicro(resetUS),
		}
		if charged {
			res[i].Charged = norm[i].Cost
		}
		if r.cache == nil {
			continue
		}
		k := overKey{keys[i], norm[i].Limit, norm[i].Window}
		if o[1] == 0 {
			// Full until resetUS on Redis's clock; counting from when the
			// request was sent makes the local deadline early, never late.
			until := sent.Add(time.Duration(resetUS-nowUS) * time.Microsecond)
			r.cache.put(k, until, res[i].Reset, sent)
		} else {
			r.cache.forget(k)
		}
	}
	return res
}

// Close marks the limiter closed; later Charge calls fail with
// ErrUnavailable. The Redis client is left open: it belongs to the caller.
func (r *redisLimiter) Close() error {
	if !r.closed.Swap(true) {
		r.batch.close()
	}
	return nil
}

// Stats implements StatsReporter.
func (r *redisLimiter) Stats() Stats {
	return Stats{Calls: r.calls.Load(), Errors: r.errors.Load(), CacheHits: r.cacheHits.Load(),
		RoundTrips: r.batch.roundTrips.Load()}
}

// overKey is one counter under one configuration: a changed limit or window
// (a policy reload) is a different entry, so it goes to Redis.
type overKey struct {
	key    string
	limit  int64
	window time.Duration
}

type overEntry struct {
	until time.Time // local time (monotonic) until which the counter is full
	reset time.Time // Result.Reset to report
}

// overCache remembers counters known to be full. It can only refuse.
type overCache struct {
	ttl time.Duration
	max int

	mu sync.RWMutex
	m  map[overKey]overEntry
}

// refuse answers a charging call locally when every counter of it is known
// full at now: each Result is Allowed false, Remaining 0, nothing charged.
func (c *overCache) refuse(keys []string, reqs []Request, now time.Time) ([]Result, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if len(c.m) == 0 {
		return nil, false
	}
	var res []Result
	for i := range reqs {
		e, ok := c.m[overKey{keys[i], reqs[i].Limit, reqs[i].Window}]
		if !ok || !now.Before(e.until) {
			return nil, false
		}
		if res == nil {
			res = make([]Result, len(reqs))
		}
		res[i] = Result{Limit: reqs[i].Limit, Reset: e.reset}
	}
	return res, true
}

func (c *overCache) put(k overKey, until, reset, now time.Time) {
	if limit := now.Add(c.ttl); until.After(limit) {
		until = limit
	}
	if !now.Before(until) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		for ok, e := range c.m {
			if !now.Before(e.until) {
				delete(c.m, ok)
			}
		}
		if len(c.m) >= c.max {
			return
		}
	}
	c.m[k] = overEntry{until: until, reset: reset}
}

func (c *overCache) forget(k overKey) {
	c.mu.RLock()
	_, ok := c.m[k]
	c.mu.RUnlock()
	if !ok {
		return
	}
	c.mu.Lock()
	delete(c.m, k)
	c.mu.Unlock()
}

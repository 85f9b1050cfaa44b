package ratelimit

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentpdp/agentpdp/internal/testutil/redisserver"
)

const benchKeys = 1024

// benchCalls prebuilds one call per key so the loop measures Charge only.
// kind "allow": a huge limit and a 10 ms window, so every call is admitted
// and charged and the log slides steadily; "deny": a limit of 10 per hour,
// filled before the timer starts, so every call is refused; "two": an
// admitted call with two short limits (10 and 20 ms), so the logs slide
// on most calls; "email": two admitted limits of an hour and a day, like
// the email agent's, whose logs only grow.
func benchCalls(kind string) [][]Request {
	calls := make([][]Request, benchKeys)
	for i := range calls {
		key := fmt.Sprintf("principal-%d", i)
		switch kind {
		case "allow":
			calls[i] = []Request{{Policy: "email-agent", ID: "sends", Key: key, Limit: 1 << 40, Window: 10 * time.Millisecond, Cost: 1}}
		case "deny":
			calls[i] = []Request{{Policy: "email-agent", ID: "sends", Key: key, Limit: 10, Window: time.Hour, Cost: 1}}
		case "two":
			calls[i] = []Request{
				{Policy: "email-agent", ID: "sends", Key: key, Limit: 1 << 40, Window: 10 * time.Millisecond, Cost: 1},
				{Policy: "email-agent", ID: "recipients", Key: key, Limit: 1 << 40, Window: 20 * time.Millisecond, Cost: 2},
			}
		case "email":
			calls[i] = []Request{
				{Policy: "email-agent", ID: "sends", Key: key, Limit: 1 << 40, Window: time.Hour, Cost: 1},
				{Policy: "email-agent", ID: "recipients", Key: key, Limit: 1 << 40, Window: 24 * time.Hour, Cost: 2},
			}
		}
	}
	return calls
}

func prefill(b *testing.B, lim Limiter, calls [][]Request) {
	b.Helper()
	for _, c := range calls {
		for range c[0].Limit {
			if _, err := lim.Charge(context.Background(), c, true); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// runCharge times Charge calls of kind; started, if not nil, is called
// once the timer starts.
func runCharge(b *testing.B, lim Limiter, kind string, parallel bool, started func()) {
	calls := benchCalls(kind)
	if kind == "deny" {
		prefill(b, lim, calls)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	if started != nil {
		started()
	}
	if !parallel {
		for i := 0; i < b.N; i++ {
			if _, err := lim.Charge(ctx, calls[i%benchKeys], true); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(7919)) // spread goroutines over the keys
		for pb.Next() {
			if _, err := lim.Charge(ctx, calls[i%benchKeys], true); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

func BenchmarkMemoryCharge(b *testing.B) {
	for _, kind := range []string{"allow", "deny", "two"} {
		b.Run(kind, func(b *testing.B) {
			lim := NewMemory(MemoryOptions{})
			defer lim.Close()
			runCharge(b, lim, kind, false, nil)
		})
	}
}

func BenchmarkMemoryChargeParallel(b *testing.B) {
	for _, kind := range []string{"allow", "deny", "two"} {
		b.Run(kind, func(b *testing.B) {
			lim := NewMemory(MemoryOptions{})
			defer lim.Close()
			runCharge(b, lim, kind, true, nil)
		})
	}
}

// benchRedis also reports redis-µs/op: the server's own time running the
// scripts (INFO commandstats), which all replicas share.
func benchRedis(b *testing.B, parallel bool) {
	s := redisserver.Start(b)
	c := openClient(b, s.URL())
	for _, kind := range []string{"allow", "deny", "deny-nocache", "two", "email"} {
		b.Run(kind, func(b *testing.B) {
			if err := c.FlushAll(context.Background()).Err(); err != nil {
				b.Fatal(err)
			}
			opts := RedisOptions{Timeout: time.Second}
			k := kind
			if kind == "deny-nocache" {
				opts.OverLimitCacheTTL, k = -1, "deny"
			}
			lim := NewRedis(c, opts)
			var before int64
			runCharge(b, lim, k, parallel, func() { _, before = scriptStats(b, c) })
			b.StopTimer()
			_, after := scriptStats(b, c)
			b.ReportMetric(float64(after-before)/float64(b.N), "redis-µs/op")
		})
	}
}

func BenchmarkRedisCharge(b *testing.B)         { benchRedis(b, false) }
func BenchmarkRedisChargeParallel(b *testing.B) { benchRedis(b, true) }

// BenchmarkRedisPing is the round-trip floor the Redis figures compare to.
func BenchmarkRedisPing(b *testing.B) {
	s := redisserver.Start(b)
	c := openClient(b, s.URL())
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.Ping(ctx).Err(); err != nil {
			b.Fatal(err)
		}
	}
}

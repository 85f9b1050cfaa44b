package ratelimit

import (
	"context"
	"encoding/binary"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentpdp/agentpdp/internal/redisconn"
	"github.com/agentpdp/agentpdp/internal/testutil/redisserver"
)

// suiteTimeout is generous: the shared suite checks semantics, not latency,
// and runs under -race on small machines. The outage tests use the default.
const suiteTimeout = time.Second

func openClient(t testing.TB, url string) redis.UniversalClient {
	t.Helper()
	c, err := redisconn.Open(context.Background(), url, redisconn.Options{})
	if err != nil {
		t.Fatalf("redisconn.Open: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func newRedisEnv(t *testing.T) *env {
	s := redisserver.Start(t)
	lim := NewRedis(openClient(t, s.URL()), RedisOptions{Timeout: suiteTimeout})
	t.Cleanup(func() { _ = lim.Close() })
	return &env{
		lim:     lim,
		now:     time.Now,
		advance: func(d time.Duration) { time.Sleep(d) },
		window:  400 * time.Millisecond,
		slack:   5 * time.Millisecond,
	}
}

func TestRedisLimiter(t *testing.T) {
	testLimiter(t, newRedisEnv)
}

// countHook counts the commands a client sends.
type countHook struct{ n atomic.Int64 }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}
func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// scriptCalls reads how many EVALSHA and EVAL the server has run.
func scriptCalls(t testing.TB, c redis.UniversalClient) int {
	n, _ := scriptStats(t, c)
	return n
}

// scriptStats reads how many EVALSHA and EVAL the server has run, and the
// microseconds it spent running them.
func scriptStats(t testing.TB, c redis.UniversalClient) (calls int, usec int64) {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatalf("INFO commandstats: %v", err)
	}
	re := regexp.MustCompile(`cmdstat_(?:evalsha|eval):calls=(\d+),usec=(\d+)`)
	for _, m := range re.FindAllStringSubmatch(info, -1) {
		n, _ := strconv.Atoi(m[1])
		u, _ := strconv.ParseInt(m[2], 10, 64)
		calls, usec = calls+n, usec+u
	}
	return calls, usec
}

func TestRedisOutageAndRecovery(t *testing.T) {
	s := redisserver.Start(t)
	c := openClient(t, s.URL())
	lim := NewRedis(c, RedisOptions{}) // default 50 ms timeout
	ctx := context.Background()
	r := Request{Policy: "p", ID: "x", Key: "u1", Limit: 10, Window: time.Minute, Cost: 1}
	expect(t, charge(t, lim, true, r)[0], true, 1, 9)

	s.Stop()
	for i := range 5 {
		start := time.Now()
		res, err := lim.Charge(ctx, []Request{r}, true)
		took := time.Since(start)
		if !errors.Is(err, ErrUnavailable) || res != nil {
			t.Fatalf("call %d with Redis down: res %v, err %v; want ErrUnavailable", i, res, err)
		}
		t.Logf("call %d with Redis down: %s: %v", i, took, err)
		if took > 300*time.Millisecond {
			t.Fatalf("call %d took %s with a 50 ms timeout", i, took)
		}
	}
	if st := lim.(StatsReporter).Stats(); st.Errors != 5 {
		t.Fatalf("stats %+v, want 5 errors", st)
	}

	s.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := lim.Charge(ctx, []Request{r}, true)
		if err == nil {
			// The restarted server has no data: the counter starts afresh.
			expect(t, res[0], true, 1, 9)
			break
		}
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("after restart: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("limiter did not recover within 10 s after Restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRedisSlowServerTimesOut(t *testing.T) {
	s := redisserver.Start(t)
	c := openClient(t, s.URL())
	admin := openClient(t, s.URL())
	lim := NewRedis(c, RedisOptions{Timeout: 50 * time.Millisecond})
	r := Request{Policy: "p", ID: "x", Key: "u1", Limit: 10, Window: time.Minute, Cost: 1}
	charge(t, lim, true, r) // warm the pool and the script cache

	if err := admin.Do(context.Background(), "CLIENT", "PAUSE", 500, "ALL").Err(); err != nil {
		t.Fatalf("CLIENT PAUSE: %v", err)
	}
	start := time.Now()
	_, err := lim.Charge(context.Background(), []Request{r}, true)
	took := time.Since(start)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("paused server: err = %v, want ErrUnavailable", err)
	}
	t.Logf("paused server: %s: %v", took, err)
	if took > 300*time.Millisecond {
		t.Fatalf("Charge took %s against a paused server with a 50 ms timeout", took)
	}
	// A caller's shorter deadline wins as well, and cancellation is reported.
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := lim.Charge(cctx, []Request{r}, true); !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: err = %v", err)
	}
	time.Sleep(500 * time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := lim.Charge(context.Background(), []Request{r}, false); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("no recovery after the pause: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRedisKeysAndTTL(t *testing.T) {
	s := redisserver.Start(t)
	c := openClient(t, s.URL())
	lim := NewRedis(c, RedisOptions{})
	ctx := context.Background()

	r := Request{Policy: "email-agent", ID: "sends-per-hour", Key: "u1@example.com", Limit: 5, Window: 10 * time.Second, Cost: 2}
	charge(t, lim, true, r)
	r.Cost = 1
	charge(t, lim, true, r)
	key := "agentpdp:rl2:{email-agent}:sends-per-hour:u1@example.com"
	if got := RedisKey(r.Policy, r.ID, r.Key); got != key {
		t.Fatalf("RedisKey = %q, want %q", got, key)
	}
	keys, err := c.Keys(ctx, "agentpdp:rl2:*").Result()
	if err != nil || len(keys) != 1 || keys[0] != key {
		t.Fatalf("keys in Redis: %q, %v; want [%q]", keys, err, key)
	}
	// The key outlives its newest member's window by an eighth of it.
	ttl, err := c.PTTL(ctx, key).Result()
	if err != nil || ttl <= 10*time.Second || ttl > 10*time.Second+1251*time.Millisecond { // +1 ms: PEXPIREAT rounds up
		t.Fatalf("PTTL = %s, %v; want just under 11.25 s", ttl, err)
	}
	members, err := c.ZRangeWithScores(ctx, key, 0, -1).Result()
	if err != nil || len(members) != 2 {
		t.Fatalf("members %v, %v; want two", members, err)
	}
	first, second := decodeMember(t, members[0]), decodeMember(t, members[1])
	at0 := int64(members[0].Score)
	exp := first[4]
	// cum, cost, oldest score, base, key expiry (µs).
	if want := [5]int64{2, 2, at0, 0, exp}; first != want {
		t.Fatalf("first member %v, want %v", first, want)
	}
	if want := [5]int64{3, 1, at0, 0, exp}; second != want {
		t.Fatalf("second member %v, want %v: the expiry is not moved while it covers the window", second, want)
	}
	if d := exp - at0; d != 11_250_000 {
		t.Fatalf("expiry %d µs after the first charge, want 11.25 s", d)
	}

	// Dry runs and refused calls leave the TTL alone and create no key.
	dry := Request{Policy: "email-agent", ID: "sends-per-hour", Key: "u2", Limit: 5, Window: time.Second, Cost: 1}
	charge(t, lim, false, dry)
	dry.Cost = 9
	charge(t, lim, true, dry)
	if n, _ := c.Exists(ctx, RedisKey(dry.Policy, dry.ID, dry.Key)).Result(); n != 0 {
		t.Fatal("a dry run or refused call created a key")
	}

	// A key vanishes once its window (and an eighth) has passed.
	short := Request{Policy: "p", ID: "x", Key: "short", Limit: 5, Window: 160 * time.Millisecond, Cost: 1}
	charge(t, lim, true, short)
	skey := RedisKey(short.Policy, short.ID, short.Key)
	if ttl, _ := c.PTTL(ctx, skey).Result(); ttl <= 0 || ttl > 181*time.Millisecond {
		t.Fatalf("short key PTTL = %s", ttl)
	}
	time.Sleep(250 * time.Millisecond)
	if n, _ := c.Exists(ctx, skey).Result(); n != 0 {
		t.Fatal("key still exists after its window")
	}
}

// decodeMember reads a counter member's five big-endian int64s.
func decodeMember(t *testing.T, z redis.Z) [5]int64 {
	t.Helper()
	b := []byte(z.Member.(string))
	if len(b) != 40 {
		t.Fatalf("member %q is %d bytes, want 40", b, len(b))
	}
	var v [5]int64
	for i := range v {
		v[i] = int64(binary.BigEndian.Uint64(b[8*i:]))
	}
	return v
}

func TestRedisOverLimitCache(t *testing.T) {
	s := redisserver.Start(t)
	c := openClient(t, s.URL())
	hook := &countHook{}
	c.AddHook(hook)
	admin := openClient(t, s.URL())
	lim := NewRedis(c, RedisOptions{})
	sr := lim.(StatsReporter)

	full := Request{Policy: "p", ID: "x", Key: "loop", Limit: 3, Window: time.Hour, Cost: 1}
	var last Result
	for range 3 {
		last = charge(t, lim, true, full)[0]
	}
	expect(t, last, true, 1, 0)

	sent, served := hook.n.Load(), scriptCalls(t, admin)
	for range 10 {
		res := charge(t, lim, true, full)[0]
		expect(t, res, false, 0, 0)
		if !res.Reset.Equal(last.Reset) || res.Limit != 3 {
			t.Fatalf("cached result %+v, want Reset %v", res, last.Reset)
		}
	}
	if d := hook.n.Load() - sent; d != 0 {
		t.Fatalf("%d commands sent for calls the cache should answer", d)
	}
	if d := scriptCalls(t, admin) - served; d != 0 {
		t.Fatalf("server ran the script %d more times", d)
	}
	if st := sr.Stats(); st.CacheHits != 10 {
		t.Fatalf("stats %+v, want 10 cache hits", st)
	}

	// Not answered locally: dry runs, calls with a counter not known full,
	// and a changed limit (a policy reload).
	sent = hook.n.Load()
	expect(t, charge(t, lim, false, full)[0], false, 0, 0)
	other := Request{Policy: "p", ID: "y", Key: "loop", Limit: 10, Window: time.Hour, Cost: 1}
	res := charge(t, lim, true, full, other)
	expect(t, res[0], false, 0, 0)
	expect(t, res[1], true, 0, 10)
	raised := full
	raised.Limit = 4
	expect(t, charge(t, lim, true, raised)[0], true, 1, 0)
	if d := hook.n.Load() - sent; d != 3 {
		t.Fatalf("%d commands for 3 calls that must reach Redis", d)
	}
}

func TestRedisOverLimitCacheExpires(t *testing.T) {
	s := redisserver.Start(t)
	c := openClient(t, s.URL())
	hook := &countHook{}
	c.AddHook(hook)

	// The cache ends at the counter's Reset: then the call goes to Redis and
	// is admitted.
	lim := NewRedis(c, RedisOptions{})
	r := Request{Policy: "p", ID: "x", Key: "k", Limit: 1, Window: 200 * time.Millisecond, Cost: 1}
	expect(t, charge(t, lim, true, r)[0], true, 1, 0)
	sent := hook.n.Load()
	expect(t, charge(t, lim, true, r)[0], false, 0, 0)
	if hook.n.Load() != sent {
		t.Fatal("a full counter went to Redis")
	}
	time.Sleep(250 * time.Millisecond)
	expect(t, charge(t, lim, true, r)[0], true, 1, 0)
	if hook.n.Load() != sent+1 {
		t.Fatal("the call after Reset did not go to Redis")
	}

	// OverLimitCacheTTL caps the local answer well before a long Reset.
	capped := NewRedis(c, RedisOptions{OverLimitCacheTTL: 100 * time.Millisecond})
	long := Request{Policy: "p", ID: "x", Key: "long", Limit: 1, Window: time.Hour, Cost: 1}
	charge(t, capped, true, long)
	sent = hook.n.Load()
	charge(t, capped, true, long)
	time.Sleep(150 * time.Millisecond)
	expect(t, charge(t, capped, true, long)[0], false, 0, 0)
	if hook.n.Load() != sent+1 {
		t.Fatalf("%d commands; want 1 after the cache TTL", hook.n.Load()-sent)
	}

	// A negative TTL turns the cache off.
	off := NewRedis(c, RedisOptions{OverLimitCacheTTL: -1})
	sent = hook.n.Load()
	for range 3 {
		charge(t, off, true, long)
	}
	if hook.n.Load() != sent+3 {
		t.Fatal("disabled cache answered locally")
	}
	if st := off.(StatsReporter).Stats(); st.CacheHits != 0 {
		t.Fatalf("disabled cache: stats %+v", st)
	}
}

func TestRedisTwoInstancesShareLimits(t *testing.T) {
	s := redisserver.Start(t)
	a := NewRedis(openClient(t, s.URL()), RedisOptions{Timeout: suiteTimeout})
	b := NewRedis(openClient(t, s.URL()), RedisOptions{Timeout: suiteTimeout})
	const n, limit = 50, 20
	req := []Request{
		{Policy: "p", ID: "sends", Key: "u1", Limit: limit, Window: time.Minute, Cost: 1},
		{Policy: "p", ID: "daily", Key: "u1", Limit: 1000, Window: 24 * time.Hour, Cost: 3},
	}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		lim := a
		if i%2 == 1 {
			lim = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := lim.Charge(context.Background(), req, true)
			if err != nil {
				t.Error(err)
				return
			}
			if res[0].Charged == 1 {
				admitted.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if admitted.Load() != limit {
		t.Fatalf("two instances admitted %d, want %d", admitted.Load(), limit)
	}
	res := charge(t, b, false, req...)
	expect(t, res[0], false, 0, 0)
	expect(t, res[1], true, 0, 1000-3*limit)
}

func TestRedisScriptReloadedAfterFlush(t *testing.T) {
	s := redisserver.Start(t)
	c := openClient(t, s.URL())
	lim := NewRedis(c, RedisOptions{})
	r := Request{Policy: "p", ID: "x", Key: "k", Limit: 5, Window: time.Minute, Cost: 1}
	expect(t, charge(t, lim, true, r)[0], true, 1, 4)
	if err := c.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	expect(t, charge(t, lim, true, r)[0], true, 1, 3)
	expect(t, charge(t, lim, true, r)[0], true, 1, 2)

	// Concurrent calls share pipelines; the scripts that meet NOSCRIPT are
	// sent again as EVAL, and each still runs exactly once.
	if err := c.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	big := Request{Policy: "p", ID: "y", Key: "k", Limit: 1000, Window: time.Minute, Cost: 1}
	var wg sync.WaitGroup
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := lim.Charge(context.Background(), []Request{big}, true); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	expect(t, charge(t, lim, false, big)[0], true, 0, 800)
	if st := lim.(StatsReporter).Stats(); st.RoundTrips >= st.Calls {
		t.Errorf("%d round trips for %d calls: concurrent calls were not batched", st.RoundTrips, st.Calls)
	}
}

func TestRedisForeignDataIsAnError(t *testing.T) {
	s := redisserver.Start(t)
	c := openClient(t, s.URL())
	lim := NewRedis(c, RedisOptions{})
	r := Request{Policy: "p", ID: "x", Key: "k", Limit: 5, Window: time.Minute, Cost: 1}
	if err := c.Set(context.Background(), RedisKey(r.Policy, r.ID, r.Key), "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	_, err := lim.Charge(context.Background(), []Request{r}, true)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "WRONGTYPE") {
		t.Fatalf("err = %v, want ErrUnavailable with WRONGTYPE", err)
	}
}

// hashTag is the part of a key Redis Cluster hashes: between the first '{'
// and the next '}', if that is not empty; else the whole key.
func hashTag(key string) string {
	i := strings.IndexByte(key, '{')
	if i < 0 {
		return key
	}
	j := strings.IndexByte(key[i+1:], '}')
	if j <= 0 {
		return key
	}
	return key[i+1 : i+1+j]
}

func TestRedisKeyEncoding(t *testing.T) {
	cases := map[[3]string]string{
		{"email-agent", "sends", "u1"}:        "agentpdp:rl2:{email-agent}:sends:u1",
		{"p", "x", "a:b"}:                     "agentpdp:rl2:{p}:x:a%3Ab",
		{"p}x", "{id}", "50%"}:                "agentpdp:rl2:{p%7Dx}:%7Bid%7D:50%25",
		{"", "", ""}:                          "agentpdp:rl2:{%}::",
		{"p q", "x\n", "ünï"}:                 "agentpdp:rl2:{p%20q}:x%0A:ünï",
		{"{", "}", "\x7f"}:                    "agentpdp:rl2:{%7B}:%7D:%7F",
		{"team/agent@v2", "a.b-c_d", "k=v&w"}: "agentpdp:rl2:{team/agent@v2}:a.b-c_d:k=v&w",
	}
	for in, want := range cases {
		if got := RedisKey(in[0], in[1], in[2]); got != want {
			t.Errorf("RedisKey%q = %q, want %q", in, got, want)
		}
	}

	parts := []string{"", "a", "b", ":", "a:b", "{", "}", "{a}", "%", "%3A", "a%b", " ", "}:{"}
	seen := map[string][3]string{}
	for _, p := range parts {
		tag := ""
		for _, id := range parts {
			for _, k := range parts {
				key := RedisKey(p, id, k)
				if prev, dup := seen[key]; dup {
					t.Fatalf("%q and %q share key %q", prev, [3]string{p, id, k}, key)
				}
				seen[key] = [3]string{p, id, k}
				got := hashTag(key)
				if got == key || got == "" {
					t.Fatalf("key %q has no usable hash tag", key)
				}
				if tag == "" {
					tag = got
				} else if got != tag {
					t.Fatalf("policy %q: keys hash on %q and %q", p, tag, got)
				}
			}
		}
	}
}

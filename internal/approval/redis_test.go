package approval_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
	"github.com/agentpdp/agentpdp/internal/approval"
	"github.com/agentpdp/agentpdp/internal/redisconn"
	"github.com/agentpdp/agentpdp/internal/testutil/redisserver"
)

// openClient opens a client the way pdp serve does, with timeouts that
// tolerate a loaded test machine (-race).
func openClient(t *testing.T, url string) redis.UniversalClient {
	t.Helper()
	c, err := redisconn.Open(context.Background(), url, redisconn.Options{
		DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second})
	if err != nil {
		t.Fatalf("redis: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// redisStores returns two stores on two clients of one fresh server: two
// replicas.
func redisStores(t *testing.T) (*redisserver.Server, pair, redis.UniversalClient) {
	srv := redisserver.Start(t)
	ca, cb := openClient(t, srv.URL()), openClient(t, srv.URL())
	a, b := approval.NewRedis(ca, nil), approval.NewRedis(cb, nil)
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		b.Close()
	})
	return srv, pair{a, b}, ca
}

func TestRedisStore(t *testing.T) {
	runStoreSuite(t, func(t *testing.T) pair {
		_, p, _ := redisStores(t)
		return p
	})
}

func TestRedisLayoutAndRetention(t *testing.T) {
	_, p, c := redisStores(t)
	ctx := context.Background()
	now := base()
	a := newApproval("mail", "u1", "gmail.send", now, time.Hour)
	mustCreate(t, p.a, a)

	key := approval.Key(a.Id)
	if want := "agentpdp:approval:{" + a.Id + "}"; key != want {
		t.Fatalf("Key = %q, want %q", key, want)
	}
	m, err := c.HGetAll(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"status", "digest", "expires_ms", "approver", "note", "decided_ms", "data"} {
		if _, ok := m[f]; !ok {
			t.Errorf("hash has no field %q: %v", f, m)
		}
	}
	if m["status"] != "1" || m["digest"] != a.Digest {
		t.Errorf("status %q digest %q", m["status"], m["digest"])
	}
	ttl, err := c.PTTL(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if lo, hi := time.Hour+approval.Retention-time.Minute, time.Hour+approval.Retention; ttl < lo || ttl > hi {
		t.Errorf("PTTL = %s, want about expiry + %s", ttl, approval.Retention)
	}
	score, err := c.ZScore(ctx, approval.PendingKey, a.Id).Result()
	if err != nil || int64(score) != a.ExpiresAt.AsTime().UnixMilli() {
		t.Errorf("pending index score = %v, %v; want the expiry in ms", score, err)
	}

	// An approval created already expired still keeps its record.
	old := newApproval("mail", "u1", "gmail.send", now.Add(-48*time.Hour), time.Hour)
	mustCreate(t, p.a, old)
	if ttl, _ := c.PTTL(ctx, approval.Key(old.Id)).Result(); ttl < approval.Retention-time.Minute {
		t.Errorf("PTTL of an approval past expiry = %s, want about %s", ttl, approval.Retention)
	}

	// Deciding removes it from the index; the record keeps its TTL.
	if _, err := p.b.Decide(ctx, a.Id, true, "alice", "", now); err != nil {
		t.Fatal(err)
	}
	if err := c.ZScore(ctx, approval.PendingKey, a.Id).Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("decided approval still in the pending index (err %v)", err)
	}
	if ttl, _ := c.PTTL(ctx, key).Result(); ttl < approval.Retention {
		t.Errorf("PTTL after Decide = %s", ttl)
	}
}

func TestRedisListPendingDropsStaleIndexEntries(t *testing.T) {
	_, p, c := redisStores(t)
	ctx := context.Background()
	now := base()
	a := newApproval("mail", "u1", "gmail.send", now, time.Hour)
	b := newApproval("mail", "u1", "gmail.send", now, time.Hour)
	mustCreate(t, p.a, a)
	mustCreate(t, p.a, b)
	// a's record vanished (e.g. deleted by hand); b was decided but its ZREM
	// was lost.
	c.Del(ctx, approval.Key(a.Id))
	c.HSet(ctx, approval.Key(b.Id), "status", int(pb.ApprovalStatus_APPROVAL_STATUS_REJECTED))
	list, err := p.b.ListPending(ctx, approval.Filter{}, now)
	if err != nil || len(list) != 0 {
		t.Fatalf("ListPending = %v, %v; want none", list, err)
	}
	if n, _ := c.ZCard(ctx, approval.PendingKey).Result(); n != 0 {
		t.Fatalf("pending index keeps %d stale entries", n)
	}
}

func TestRedisDownIsAnErrorNotAVerdict(t *testing.T) {
	srv, p, _ := redisStores(t)
	ctx := context.Background()
	now := base()
	a := newApproval("mail", "u1", "gmail.send", now, time.Hour)
	mustCreate(t, p.a, a)
	srv.Stop()
	sentinels := []error{approval.ErrNotFound, approval.ErrExpired, approval.ErrNotPending, approval.ErrRejected,
		approval.ErrNotApproved, approval.ErrUsed, approval.ErrDigestMismatch}
	check := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s succeeded with Redis down", what)
		}
		for _, s := range sentinels {
			if errors.Is(err, s) {
				t.Fatalf("%s: %v is a verdict (%v), want a store error", what, err, s)
			}
		}
		if !strings.Contains(err.Error(), "approval store") {
			t.Errorf("%s: error %q does not say where it comes from", what, err)
		}
	}
	check("Create", p.a.Create(ctx, newApproval("mail", "u1", "gmail.send", now, time.Hour)))
	_, err := p.a.Get(ctx, a.Id, now)
	check("Get", err)
	_, err = p.a.ListPending(ctx, approval.Filter{}, now)
	check("ListPending", err)
	_, err = p.a.Decide(ctx, a.Id, true, "alice", "", now)
	check("Decide", err)
	_, err = p.a.Use(ctx, a.Id, a.Digest, now, true)
	check("Use", err)

	// After a restart (empty data set) the stores work again, scripts
	// reloaded.
	srv.Restart()
	// The clients' pools recover from the failed dials within a second or
	// so; retry each step until then.
	retry := func(what string, f func() error) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			err := f()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s after restart: %v", what, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	b := newApproval("mail", "u1", "gmail.send", now, time.Hour)
	retry("Create", func() error { return p.a.Create(ctx, b) })
	retry("Decide", func() error { _, err := p.b.Decide(ctx, b.Id, true, "alice", "", now); return err })
	retry("Use", func() error { _, err := p.a.Use(ctx, b.Id, b.Digest, now, false); return err })
}

func TestRedisSubscribeSurvivesRestart(t *testing.T) {
	srv, p, _ := redisStores(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := p.b.Subscribe(ctx)
	srv.Restart()

	// go-redis notices the dead connection (read error or its health
	// check) and resubscribes; create approvals until one's event arrives.
	deadline := time.After(15 * time.Second)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	ids := map[string]bool{}
	for {
		select {
		case ev := <-events:
			if ids[ev.Approval.GetId()] && ev.Kind == pb.ApprovalEvent_KIND_CREATED {
				return
			}
		case <-tick.C:
			a := newApproval("mail", "u1", "gmail.send", base(), time.Hour)
			if err := p.a.Create(ctx, a); err == nil {
				ids[a.Id] = true
			}
		case <-deadline:
			t.Fatal("no event delivered after a Redis restart within 15s")
		}
	}
}

func TestRedisSlowSubscriberDoesNotBlock(t *testing.T) {
	_, p, _ := redisStores(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_ = p.b.Subscribe(ctx) // never read
	fast := p.b.Subscribe(ctx)
	seen := make(chan string, 1024)
	go func() {
		for ev := range fast {
			seen <- ev.Approval.GetId()
		}
	}()
	now := base()
	var last string
	start := time.Now()
	for i := 0; i < 200; i++ {
		a := newApproval("mail", "u1", "gmail.send", now, time.Hour)
		mustCreate(t, p.a, a)
		last = a.Id
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("creating 200 approvals took %s", d)
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case id := <-seen:
			if id == last {
				return
			}
		case <-deadline:
			t.Fatal("the reading subscriber did not get the last event")
		}
	}
}

func TestRedisCloseStopsEvents(t *testing.T) {
	srv := redisserver.Start(t)
	c := openClient(t, srv.URL())
	s := approval.NewRedis(c, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_ = s.Subscribe(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// The client is the caller's and still works.
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("client closed by the store: %v", err)
	}
}

func TestRedisApprovalWithoutExpiry(t *testing.T) {
	_, p, c := redisStores(t)
	ctx := context.Background()
	now := base()
	a := newApproval("mail", "u1", "gmail.send", now, 0)
	a.ExpiresAt = nil
	mustCreate(t, p.a, a)
	list, err := p.b.ListPending(ctx, approval.Filter{}, now.Add(1000*time.Hour))
	if err != nil || len(list) != 1 || list[0].Id != a.Id {
		t.Fatalf("ListPending = %v, %v; want the approval that never expires", list, err)
	}
	if ttl, _ := c.PTTL(ctx, approval.Key(a.Id)).Result(); ttl < approval.Retention-time.Minute || ttl > approval.Retention {
		t.Errorf("PTTL = %s, want %s", ttl, approval.Retention)
	}
	if _, err := p.b.Decide(ctx, a.Id, true, "alice", "", now.Add(1000*time.Hour)); err != nil {
		t.Fatalf("Decide: %v", err)
	}
	if _, err := p.a.Use(ctx, a.Id, a.Digest, now.Add(1000*time.Hour), false); err != nil {
		t.Fatalf("Use: %v", err)
	}
}

package suspension_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
	"github.com/agentpdp/agentpdp/internal/redisconn"
	"github.com/agentpdp/agentpdp/internal/suspension"
	"github.com/agentpdp/agentpdp/internal/testutil/redisserver"
)

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

func newRedis(t *testing.T, c redis.UniversalClient) suspension.Store {
	t.Helper()
	s, err := suspension.NewRedis(context.Background(), c, nil)
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func redisPair(t *testing.T) (*redisserver.Server, pair, redis.UniversalClient) {
	srv := redisserver.Start(t)
	ca, cb := openClient(t, srv.URL()), openClient(t, srv.URL())
	return srv, pair{newRedis(t, ca), newRedis(t, cb)}, ca
}

func TestRedisStore(t *testing.T) {
	runStoreSuite(t, func(t *testing.T) pair {
		_, p, _ := redisPair(t)
		return p
	})
}

func TestRedisLayout(t *testing.T) {
	_, p, c := redisPair(t)
	ctx := context.Background()
	mustSuspend(t, p.a, sus("mail", "u1", "why", time.Now(), 0))
	v, err := c.HGet(ctx, suspension.HashKey, "mail\x00u1").Result()
	if err != nil {
		t.Fatalf("HGET %s mail\\0u1: %v", suspension.HashKey, err)
	}
	s := &pb.Suspension{}
	if err := proto.Unmarshal([]byte(v), s); err != nil || s.AgentId != "mail" || s.PrincipalId != "u1" || s.Reason != "why" {
		t.Fatalf("stored %v (%v)", s, err)
	}
	// Written by hand (another version, a script): picked up by Check.
	data, _ := proto.Marshal(sus("files", "", "by hand", time.Now(), 0))
	c.HSet(ctx, suspension.HashKey, "files\x00", data)
	eventually(t, "a suspension written to the hash", func() bool { return p.b.Check("files", "x", time.Now()) != nil })
	// Garbage is skipped, not fatal.
	c.HSet(ctx, suspension.HashKey, "broken\x00", "not a proto \xff\xff")
	c.HSet(ctx, suspension.HashKey, "nofield", "x")
	c.Publish(ctx, suspension.EventsChannel, "x")
	time.Sleep(2 * suspension.RefreshInterval)
	if p.b.Check("files", "x", time.Now()) == nil || p.b.Check("mail", "u1", time.Now()) == nil {
		t.Fatal("an unreadable entry dropped the others")
	}
}

func TestRedisNewFailsWithoutRedis(t *testing.T) {
	srv := redisserver.Start(t)
	c := openClient(t, srv.URL())
	srv.Stop()
	s, err := suspension.NewRedis(context.Background(), c, nil)
	if err == nil {
		s.Close()
		t.Fatal("NewRedis succeeded with Redis down")
	}
	if !strings.Contains(err.Error(), "suspension store") {
		t.Fatalf("error %q does not say where it comes from", err)
	}
}

func TestRedisOutageKeepsSnapshot(t *testing.T) {
	srv, p, _ := redisPair(t)
	ctx := context.Background()
	mustSuspend(t, p.a, sus("mail", "", "kill", time.Now(), 0))
	eventually(t, "B sees it", func() bool { return p.b.Check("mail", "u", time.Now()) != nil })
	srv.Stop()
	time.Sleep(4 * suspension.RefreshInterval) // several failed refreshes
	for _, s := range []suspension.Store{p.a, p.b} {
		start := time.Now()
		if s.Check("mail", "u", time.Now()) == nil {
			t.Fatal("the snapshot was dropped when Redis went away")
		}
		if d := time.Since(start); d > 10*time.Millisecond {
			t.Errorf("Check took %s with Redis down: it must not wait on Redis", d)
		}
	}
	if err := p.a.Suspend(ctx, sus("other", "", "x", time.Now(), 0)); err == nil {
		t.Fatal("Suspend succeeded with Redis down")
	}
	if p.a.Check("other", "u", time.Now()) != nil {
		t.Fatal("a failed Suspend changed the snapshot")
	}
	if _, err := p.a.Resume(ctx, "mail", ""); err == nil {
		t.Fatal("Resume succeeded with Redis down")
	}
	if p.a.Check("mail", "u", time.Now()) == nil {
		t.Fatal("a failed Resume changed the snapshot")
	}
	if _, err := p.a.List(ctx, "", time.Now()); err == nil {
		t.Fatal("List succeeded with Redis down")
	}

	// Back up (with an empty data set): both follow it again.
	srv.Restart()
	deadline := time.Now().Add(5 * time.Second)
	for p.a.Check("mail", "u", time.Now()) != nil || p.b.Check("mail", "u", time.Now()) != nil {
		if time.Now().After(deadline) {
			t.Fatal("snapshots not refreshed within 5s of Redis coming back")
		}
		time.Sleep(20 * time.Millisecond)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		err := p.a.Suspend(ctx, sus("again", "", "x", time.Now(), 0))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Suspend after restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	eventually(t, "B sees a suspension after the restart", func() bool { return p.b.Check("again", "u", time.Now()) != nil })
}

func TestRedisPrunesLongExpired(t *testing.T) {
	_, p, c := redisPair(t)
	ctx := context.Background()
	now := time.Now()
	mustSuspend(t, p.a, sus("old", "", "long gone", now.Add(-time.Hour), 30*time.Minute))
	mustSuspend(t, p.a, sus("recent", "", "just expired", now.Add(-time.Hour), time.Hour-time.Second))
	mustSuspend(t, p.a, sus("live", "", "live", now, time.Hour))
	deadline := time.Now().Add(3 * time.Second)
	for {
		n, err := c.HExists(ctx, suspension.HashKey, "old\x00").Result()
		if err != nil {
			t.Fatal(err)
		}
		if !n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a suspension expired half an hour ago is still in Redis")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, f := range []string{"recent\x00", "live\x00"} {
		if ok, _ := c.HExists(ctx, suspension.HashKey, f).Result(); !ok {
			t.Errorf("%q pruned too early", f)
		}
	}
	// B learns of A's suspensions asynchronously (pub/sub), so wait for "live"
	// to arrive before asserting that the expired one is ignored.
	eventually(t, "B sees the live suspension", func() bool { return p.b.Check("live", "u", time.Now()) != nil })
	if p.b.Check("recent", "u", time.Now()) != nil {
		t.Fatal("Check ignores expiry")
	}
}

func TestRedisCloseStops(t *testing.T) {
	srv := redisserver.Start(t)
	c := openClient(t, srv.URL())
	s, err := suspension.NewRedis(context.Background(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, redis.ErrClosed) {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs")
	}
	s.Close()
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("client closed by the store: %v", err)
	}
}

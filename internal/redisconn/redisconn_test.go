package redisconn_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentpdp/agentpdp/internal/redisconn"
	"github.com/agentpdp/agentpdp/internal/testutil/redisserver"
)

func options(t *testing.T, c redis.UniversalClient) *redis.Options {
	t.Helper()
	rc, ok := c.(*redis.Client)
	if !ok {
		t.Fatalf("client is %T, want *redis.Client", c)
	}
	return rc.Options()
}

func TestOpenDefaults(t *testing.T) {
	s := redisserver.Start(t)
	c, err := redisconn.Open(context.Background(), s.URL(), redisconn.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer c.Close()
	if err := c.Set(context.Background(), "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	o := options(t, c)
	for name, got := range map[string]time.Duration{"dial": o.DialTimeout, "read": o.ReadTimeout, "write": o.WriteTimeout} {
		if got != redisconn.DefaultTimeout {
			t.Errorf("%s timeout = %s, want %s", name, got, redisconn.DefaultTimeout)
		}
	}
	if !o.ContextTimeoutEnabled {
		t.Error("ContextTimeoutEnabled is off")
	}
	if o.DialerRetries != 1 {
		t.Errorf("DialerRetries = %d, want 1", o.DialerRetries)
	}
	if o.ClientName != "agentpdp" {
		t.Errorf("ClientName = %q", o.ClientName)
	}
	name, err := c.ClientGetName(context.Background()).Result()
	if err != nil || name != "agentpdp" {
		t.Errorf("CLIENT GETNAME = %q, %v", name, err)
	}
}

func TestOpenURLAndOptionPrecedence(t *testing.T) {
	s := redisserver.Start(t)
	u := s.URL() + "?read_timeout=200ms&pool_size=7"
	c, err := redisconn.Open(context.Background(), u, redisconn.Options{WriteTimeout: 80 * time.Millisecond, PoolSize: 3})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer c.Close()
	o := options(t, c)
	if o.ReadTimeout != 200*time.Millisecond {
		t.Errorf("read timeout = %s, want 200ms from the URL", o.ReadTimeout)
	}
	if o.WriteTimeout != 80*time.Millisecond {
		t.Errorf("write timeout = %s, want 80ms from Options", o.WriteTimeout)
	}
	if o.DialTimeout != redisconn.DefaultTimeout {
		t.Errorf("dial timeout = %s, want default", o.DialTimeout)
	}
	if o.PoolSize != 3 {
		t.Errorf("pool size = %d, want 3 (Options win over the URL)", o.PoolSize)
	}
}

func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func TestOpenRefusedIsClear(t *testing.T) {
	u := "redis://127.0.0.1:" + strconv.Itoa(closedPort(t))
	start := time.Now()
	c, err := redisconn.Open(context.Background(), u, redisconn.Options{})
	if err == nil {
		c.Close()
		t.Fatal("Open succeeded against a closed port")
	}
	msg := err.Error()
	t.Logf("error: %s (after %s)", msg, time.Since(start))
	if !strings.HasPrefix(msg, "redis at "+u+": ") || !strings.Contains(msg, "connection refused") {
		t.Fatalf("error %q does not read `redis at %s: ... connection refused`", msg, u)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Open took %s to fail", d)
	}
}

func TestOpenRedactsPassword(t *testing.T) {
	u := "redis://agent:s3cret-pw@127.0.0.1:" + strconv.Itoa(closedPort(t)) + "/0"
	_, err := redisconn.Open(context.Background(), u, redisconn.Options{PingTimeout: 300 * time.Millisecond})
	if err == nil {
		t.Fatal("Open succeeded against a closed port")
	}
	if strings.Contains(err.Error(), "s3cret-pw") {
		t.Fatalf("error leaks the password: %v", err)
	}
	if !strings.Contains(err.Error(), "agent:xxxxx@") {
		t.Fatalf("error does not show the redacted URL: %v", err)
	}
}

func TestOpenBadURL(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:6379", "redis://127.0.0.1:6379/notadb", "::not a url"} {
		_, err := redisconn.Open(context.Background(), u, redisconn.Options{})
		if err == nil {
			t.Errorf("Open(%q) succeeded", u)
			continue
		}
		if !strings.HasPrefix(err.Error(), "redis at ") || !strings.Contains(err.Error(), "invalid URL") {
			t.Errorf("Open(%q) error = %q", u, err)
		}
	}
}

func TestOpenNoPing(t *testing.T) {
	u := "redis://127.0.0.1:" + strconv.Itoa(closedPort(t))
	c, err := redisconn.Open(context.Background(), u, redisconn.Options{PingTimeout: -1})
	if err != nil {
		t.Fatalf("Open without ping: %v", err)
	}
	c.Close()
}

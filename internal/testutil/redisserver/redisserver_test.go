package redisserver

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func TestStartStopRestart(t *testing.T) {
	s := Start(t)
	if err := ping(s.Addr()); err != nil {
		t.Fatalf("ping after Start: %v", err)
	}
	if want := fmt.Sprintf("redis://127.0.0.1:%d/0", s.Port()); s.URL() != want {
		t.Fatalf("URL = %q, want %q", s.URL(), want)
	}
	s.Stop()
	if err := ping(s.Addr()); err == nil {
		t.Fatal("ping after Stop succeeded")
	}
	s.Stop() // idempotent
	port := s.Port()
	s.Restart()
	if s.Port() != port {
		t.Fatalf("port changed across Restart: %d -> %d", port, s.Port())
	}
	if err := ping(s.Addr()); err != nil {
		t.Fatalf("ping after Restart: %v", err)
	}
	s.Restart() // restart while running
	if err := ping(s.Addr()); err != nil {
		t.Fatalf("ping after second Restart: %v", err)
	}
}

func TestTwoServersAreSeparate(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Port() == b.Port() {
		t.Fatalf("two servers on one port %d", a.Port())
	}
}

// fatalTB records Fatalf and stops the goroutine like testing.T does.
type fatalTB struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.msg = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func TestMissingBinaryFails(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("AGENTPDP_REDIS_SERVER", "")
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(f)
		t.Error("Start returned without failing")
	}()
	<-done
	if !strings.Contains(f.msg, "redis-server not installed: apt-get install -y redis-server") {
		t.Fatalf("failure message = %q", f.msg)
	}
}

package redisserver

import (
	"bufio"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
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

func TestCPU(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("CPU reads /proc")
	}
	s := Start(t)
	before := s.CPU()
	// A Lua loop keeps the server busy for tens of milliseconds.
	script := "local x = 0 for i = 1, 2e7 do x = x + i end return 1"
	busy := fmt.Sprintf("*3\r\n$4\r\nEVAL\r\n$%d\r\n%s\r\n$1\r\n0\r\n", len(script), script)
	if got, err := send(s.Addr(), busy); err != nil || got != ":1\r\n" {
		t.Fatalf("EVAL: %q, %v", got, err)
	}
	if used := s.CPU() - before; used < 10*time.Millisecond {
		t.Fatalf("CPU grew by %s over a busy script, want at least 10ms", used)
	}
	s.Stop()
	if got := s.CPU(); got != 0 {
		t.Fatalf("CPU of a stopped server = %s, want 0", got)
	}
}

// send writes a request and reads one line of reply.
func send(addr, req string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write([]byte(req)); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

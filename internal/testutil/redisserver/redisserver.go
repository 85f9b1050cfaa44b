// Package redisserver starts a real redis-server for tests.
//
// Each Start runs its own redis-server process on a free loopback port with
// persistence off, waits until it answers PING and stops it when the test
// ends. Stop and Restart (on the same port) let tests simulate an outage.
//
// redis-server must be on PATH (Debian/Ubuntu: apt-get install -y
// redis-server); without it the test fails rather than skips, because CI
// installs it and a silently skipped Redis suite would hide regressions. The
// environment variable AGENTPDP_REDIS_SERVER may name the binary instead.
package redisserver

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentpdp/agentpdp/internal/testutil/proc"
)

// startTimeout bounds how long Start waits for the server to answer PING.
const startTimeout = 10 * time.Second

// Server is one redis-server process owned by a test.
type Server struct {
	tb   testing.TB
	bin  string
	port int
	dir  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	out  *syncBuffer
}

// Start launches redis-server on a free loopback port and registers its stop
// with tb.Cleanup. It fails the test if redis-server is not installed or
// does not come up.
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin := os.Getenv("AGENTPDP_REDIS_SERVER")
	if bin == "" {
		var err error
		bin, err = exec.LookPath("redis-server")
		if err != nil {
			tb.Fatalf("redis-server not installed: apt-get install -y redis-server (%v)", err)
			return nil
		}
	}
	s := &Server{tb: tb, bin: bin, dir: tb.TempDir()}
	tb.Cleanup(s.Stop)

	// A free port can be taken by someone else between probing and
	// redis-server binding it; try a few.
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			tb.Fatalf("redisserver: find a free port: %v", err)
			return nil
		}
		s.port = port
		if lastErr = s.start(); lastErr == nil {
			return s
		}
	}
	tb.Fatalf("redisserver: %v", lastErr)
	return nil
}

// URL is redis://127.0.0.1:PORT/0.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Addr is 127.0.0.1:PORT.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Port is the TCP port the server listens on; it stays the same across
// Restart.
func (s *Server) Port() int { return s.port }

// CPU is the user+system CPU time the running server has used, in steps
// of 10 ms (0 where /proc is not available, or once stopped): benchmarks
// charge Redis's share of the machine to the operations that caused it.
func (s *Server) CPU() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return cpuOf(s.cmd.Process.Pid)
}

// Stop terminates the server (SIGTERM, then SIGKILL after 5 s) and waits for
// it to exit. Data is lost: persistence is off. Stopping a stopped server
// does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

// Restart starts the server again on the same port after Stop (or stops it
// first if it is running), with an empty data set, and waits until it
// answers PING. It fails the test if the server does not come up.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Stop()
	// The port may linger for a moment after the old process exited.
	deadline := time.Now().Add(startTimeout)
	for {
		err := s.start()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("redisserver: restart on port %d: %v", s.port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--dir", s.dir,
		"--logfile", "",
		"--loglevel", "warning",
	}
	cmd := exec.Command(s.bin, args...)
	out := &syncBuffer{}
	cmd.Stdout = out
	cmd.Stderr = out
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.cmd, s.done, s.out = cmd, done, out

	deadline := time.Now().Add(startTimeout)
	for {
		if ping(s.Addr()) == nil {
			return nil
		}
		select {
		case <-done:
			s.cmd = nil
			return fmt.Errorf("redis-server on port %d exited at start: %s", s.port, strings.TrimSpace(out.String()))
		default:
		}
		if time.Now().After(deadline) {
			s.stopLocked()
			return fmt.Errorf("redis-server on port %d did not answer PING within %s: %s", s.port, startTimeout, strings.TrimSpace(out.String()))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (s *Server) stopLocked() {
	if s.cmd == nil {
		return
	}
	proc.Stop(s.cmd.Process, s.done, 5*time.Second)
	s.cmd = nil
}

// ping sends an inline PING and expects +PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("unexpected PING reply %q", line)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// syncBuffer collects the server's output for error messages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.b.Len() > 64<<10 {
		return len(p), nil
	}
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

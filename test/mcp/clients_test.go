package mcpe2e

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// proxied is one MCP client session through a running proxy.
type proxied struct {
	session   *mcp.ClientSession
	principal string
	callLog   string // what the tools of the server really ran
	pidFile   string // the server's pid
	progress  chan *mcp.ProgressNotificationParams
	proxyLog  string
	upstream  *exec.Cmd // HTTP only: the upstream server process
}

func newClient(progress chan *mcp.ProgressNotificationParams) *mcp.Client {
	return mcp.NewClient(&mcp.Implementation{Name: "mcpe2e-client", Version: "1.0.0"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			select {
			case progress <- req.Params:
			default:
			}
		},
	})
}

func proxyArgs(principal string, extra []string) []string {
	args := []string{"mcp-proxy", "--pdp", h.pdpAddr, "--agent-id", "mcp-agent", "--server-name", "files",
		"--log-level", "debug"}
	if principal != "" {
		args = append(args, "--principal", principal)
	}
	return append(args, extra...)
}

// startStdio has the client launch `pdp mcp-proxy ... -- server`, where
// server is this test binary in server mode, or the command given.
func startStdio(t *testing.T, principal string, extra []string, server ...string) *proxied {
	t.Helper()
	dir := t.TempDir()
	p := &proxied{principal: principal, callLog: filepath.Join(dir, "calls.log"), pidFile: filepath.Join(dir, "server.pid"),
		progress: make(chan *mcp.ProgressNotificationParams, 64), proxyLog: filepath.Join(dir, "proxy.log")}
	if len(server) == 0 {
		server = []string{os.Args[0]}
	}
	args := append(append(proxyArgs(principal, extra), "--"), server...)
	cmd := exec.Command(h.pdpBin, args...)
	cmd.Env = append(os.Environ(), envServer+"=stdio", envCallLog+"="+p.callLog, envPIDFile+"="+p.pidFile)
	cmd.Stderr = logFile(t, p.proxyLog)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sess, err := newClient(p.progress).Connect(ctx, &mcp.CommandTransport{Command: cmd, TerminateDuration: 2 * time.Second}, nil)
	if err != nil {
		t.Fatalf("connect through the stdio proxy: %v\n%s", err, readFile(p.proxyLog))
	}
	p.session = sess
	t.Cleanup(func() {
		_ = sess.Close()
		if t.Failed() {
			t.Logf("proxy log:\n%s", readFile(p.proxyLog))
		}
	})
	return p
}

// startHTTP runs the test server on Streamable HTTP, `pdp mcp-proxy
// --listen --upstream` in front of it, and connects the client to the
// proxy. The principal travels in the X-Agentpdp-Principal header.
func startHTTP(t *testing.T, principal string, extra []string) *proxied {
	t.Helper()
	dir := t.TempDir()
	p := &proxied{principal: principal, callLog: filepath.Join(dir, "calls.log"), pidFile: filepath.Join(dir, "server.pid"),
		progress: make(chan *mcp.ProgressNotificationParams, 64), proxyLog: filepath.Join(dir, "proxy.log")}
	upAddr, proxyAddr := freeAddr(), freeAddr()
	p.upstream = startProcess(t, os.Args[0], nil, filepath.Join(dir, "upstream.log"),
		envServer+"=http:"+upAddr, envCallLog+"="+p.callLog, envPIDFile+"="+p.pidFile)
	waitListening(t, upAddr)
	args := append(proxyArgs("", extra), "--listen", proxyAddr, "--upstream", "http://"+upAddr+"/mcp")
	startProcess(t, h.pdpBin, args, p.proxyLog)
	waitListening(t, proxyAddr)
	client := &http.Client{Transport: headerTransport{"X-Agentpdp-Principal": principal}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sess, err := newClient(p.progress).Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint: "http://" + proxyAddr + "/mcp", HTTPClient: client, MaxRetries: 1}, nil)
	if err != nil {
		t.Fatalf("connect through the HTTP proxy: %v\n%s", err, readFile(p.proxyLog))
	}
	p.session = sess
	t.Cleanup(func() {
		_ = sess.Close()
		if t.Failed() {
			t.Logf("proxy log:\n%s", readFile(p.proxyLog))
		}
	})
	return p
}

// startProcess starts a process killed when the test ends.
func startProcess(t *testing.T, bin string, args []string, logPath string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out := logFile(t, logPath)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

// headerTransport adds headers to every request.
type headerTransport map[string]string

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h {
		r.Header.Set(k, v)
	}
	return http.DefaultTransport.RoundTrip(r)
}

func logFile(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// killServer kills the MCP server behind the proxy, as a crash would.
func (p *proxied) killServer(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(p.pidFile)
	if err != nil {
		t.Fatalf("server pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("server pid %q: %v", b, err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill server %d: %v", pid, err)
	}
}

package mcpe2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// envRequirePy makes a missing Python MCP SDK a failure instead of a skip.
const envRequirePy = "AGENTPDP_REQUIRE_PY_MCP"

// TestPythonFastMCPServer drives the reference Python SDK's FastMCP server
// through the stdio proxy with the Go client.
func TestPythonFastMCPServer(t *testing.T) {
	t.Parallel()
	python, err := pythonWithMCP(h.root)
	if err != nil {
		if os.Getenv(envRequirePy) == "1" {
			t.Fatalf("the Python mcp package is not available (%s=1): %v", envRequirePy, err)
		}
		t.Skipf("the Python mcp package is not available, so the FastMCP server is not tested (set %s=1 to fail instead): %v", envRequirePy, err)
	}
	p := startStdio(t, "alice-py", []string{"--filter-tools"}, python, filepath.Join(h.root, "test/mcp/pyserver.py"))
	t.Run("tools/list is filtered", func(t *testing.T) {
		res, err := p.session.ListTools(ctx(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tool := range res.Tools {
			names = append(names, tool.Name)
		}
		slices.Sort(names)
		if want := []string{"delete", "read", "write"}; !slices.Equal(names, want) {
			t.Fatalf("tools = %v, want %v", names, want)
		}
	})
	t.Run("allowed call runs", func(t *testing.T) {
		if res := call(t, p, "read", map[string]any{"path": "notes.txt"}); res.IsError || text(res) != files["notes.txt"] {
			t.Fatalf("read = %q isError=%v", text(res), res.IsError)
		}
	})
	t.Run("denied call does not run", func(t *testing.T) {
		res := call(t, p, "delete", map[string]any{"path": "notes.txt"})
		if !res.IsError || !strings.Contains(text(res), "Denied by policy: no-delete") {
			t.Fatalf("delete = %q isError=%v", text(res), res.IsError)
		}
		if slices.Contains(calls(t, p.callLog), "delete_notes.txt") {
			t.Fatal("the denied delete ran")
		}
	})
	t.Run("approved call runs", func(t *testing.T) { approveAndCall(t, p) })
	t.Run("resources and prompts pass through", func(t *testing.T) {
		rr, err := p.session.ReadResource(ctx(t), &mcp.ReadResourceParams{URI: "files://readme"})
		if err != nil || len(rr.Contents) != 1 || rr.Contents[0].Text != "read me first" {
			t.Fatalf("resources/read = %+v, %v", rr, err)
		}
		gp, err := p.session.GetPrompt(ctx(t), &mcp.GetPromptParams{Name: "greet", Arguments: map[string]string{"name": "Bob"}})
		if err != nil || len(gp.Messages) != 1 {
			t.Fatalf("prompts/get = %+v, %v", gp, err)
		}
	})
}

// pythonWithMCP returns the python of a private venv (.cache/venv-mcp in
// the repository) that has the mcp package, creating it when needed.
func pythonWithMCP(root string) (string, error) {
	dir := filepath.Join(root, ".cache", "venv-mcp")
	python := filepath.Join(dir, "bin", "python")
	if hasMCP(python) {
		return python, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	unlock, err := lockFile(dir + ".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if hasMCP(python) { // another test process made it meanwhile
		return python, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := os.Stat(python); err != nil {
		if out, err := exec.CommandContext(ctx, "python3", "-m", "venv", dir).CombinedOutput(); err != nil {
			return "", fmt.Errorf("python3 -m venv: %v: %s", err, out)
		}
	}
	req := filepath.Join(root, "test/mcp/requirements.txt")
	if out, err := exec.CommandContext(ctx, python, "-m", "pip", "install", "-q", "-r", req).CombinedOutput(); err != nil {
		return "", fmt.Errorf("pip install -r %s: %v: %s", req, err, out)
	}
	if !hasMCP(python) {
		return "", fmt.Errorf("%s cannot import mcp.server.fastmcp after pip install", python)
	}
	return python, nil
}

func hasMCP(python string) bool {
	return exec.Command(python, "-c", "import mcp.server.fastmcp").Run() == nil
}

// lockFile takes an exclusive lock, so concurrent test runs build the
// venv once.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

package mcpe2e

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func TestStdioProxy(t *testing.T) {
	t.Parallel()
	p := startStdio(t, "alice-stdio", []string{"--filter-tools"})
	exercise(t, p, func(id string) bool { return strings.HasPrefix(id, "stdio-") })
	t.Run("server crash ends the session", func(t *testing.T) {
		crash(t, p)
		done := make(chan error, 1)
		go func() { done <- p.session.Wait() }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Fatal("the session did not end after the server died: the proxy hangs")
		}
		if !strings.Contains(readFile(p.proxyLog), "upstream MCP server is gone") {
			t.Errorf("proxy log does not say the server is gone:\n%s", readFile(p.proxyLog))
		}
	})
}

func TestHTTPProxy(t *testing.T) {
	t.Parallel()
	p := startHTTP(t, "alice-http", []string{"--filter-tools"})
	sid := p.session.ID()
	if sid == "" {
		t.Fatal("the client got no Mcp-Session-Id through the proxy")
	}
	exercise(t, p, func(id string) bool { return id == sid })
	t.Run("upstream crash fails the call, the proxy still answers", func(t *testing.T) {
		crash(t, p)
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_, err := p.session.CallTool(ctx, &mcp.CallToolParams{Name: "read", Arguments: map[string]any{"path": "notes.txt"}})
		if err == nil || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("a call after the upstream died: got %v, want a prompt error", err)
		}
	})
}

func TestUnreachablePDPFailsClosed(t *testing.T) {
	t.Parallel()
	p := startStdio(t, "alice-nopdp", []string{"--pdp", freeAddr(), "--pdp-timeout", "2s"})
	res := call(t, p, "read", map[string]any{"path": "notes.txt"})
	if !res.IsError || !strings.Contains(text(res), "Denied by policy: pdp_unavailable") {
		t.Fatalf("read with no pdp = %q (isError %v)", text(res), res.IsError)
	}
	if len(calls(t, p.callLog)) != 0 {
		t.Fatal("a tool ran without a decision")
	}
	if err := p.session.Ping(ctx(t), nil); err != nil {
		t.Fatalf("the session broke: %v", err)
	}
}

// exercise runs the behaviour both transports share. sessionOK checks the
// agent.session_id the audit trail recorded.
func exercise(t *testing.T, p *proxied, sessionOK func(string) bool) {
	t.Run("tools/list hides tools no rule names", func(t *testing.T) {
		res, err := p.session.ListTools(ctx(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tool := range res.Tools {
			names = append(names, tool.Name)
		}
		slices.Sort(names)
		if want := []string{"delete", "read", "slow", "write"}; !slices.Equal(names, want) {
			t.Fatalf("tools = %v, want %v (admin hidden, delete kept: a rule names it)", names, want)
		}
	})
	t.Run("allowed call returns the tool's result", func(t *testing.T) {
		res := call(t, p, "read", map[string]any{"path": "notes.txt"})
		if res.IsError || text(res) != files["notes.txt"] {
			t.Fatalf("read = %+v (isError %v), want the file", text(res), res.IsError)
		}
	})
	t.Run("denied call is an isError result and the tool does not run", func(t *testing.T) {
		res := call(t, p, "delete", map[string]any{"path": "notes.txt"})
		want := "Denied by policy: no-delete: the agent never deletes files"
		if !res.IsError || !strings.Contains(text(res), want) {
			t.Fatalf("delete = %q (isError %v), want %q", text(res), res.IsError, want)
		}
		if slices.Contains(calls(t, p.callLog), "delete_notes.txt") {
			t.Fatal("the denied delete ran on the server")
		}
	})
	t.Run("a tool no rule names is refused even if called", func(t *testing.T) {
		res := call(t, p, "admin", nil)
		if !res.IsError || !strings.Contains(text(res), "Denied by policy: default") {
			t.Fatalf("admin = %q (isError %v)", text(res), res.IsError)
		}
	})
	t.Run("approved call waits for the human, then runs", func(t *testing.T) {
		approveAndCall(t, p)
	})
	t.Run("rejected call is refused", func(t *testing.T) {
		errc := make(chan error, 1)
		go func() { errc <- h.decide(ctx(t), p.principal, "files.write", false, "not today") }()
		res := call(t, p, "write", map[string]any{"path": "out.txt", "content": "again"})
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if !res.IsError || !strings.Contains(text(res), "approval_rejected") || !strings.Contains(text(res), "not today") {
			t.Fatalf("rejected write = %q (isError %v)", text(res), res.IsError)
		}
		if n := count(calls(t, p.callLog), "write_out.txt"); n != 1 {
			t.Fatalf("write ran %d times, want 1 (only the approved one)", n)
		}
	})
	t.Run("resources and prompts pass through", func(t *testing.T) {
		passThrough(t, p)
	})
	t.Run("server progress notifications pass through", func(t *testing.T) {
		params := &mcp.CallToolParams{Name: "slow", Arguments: map[string]any{"seconds": 0.35}}
		params.SetProgressToken("slow-1")
		res, err := p.session.CallTool(ctx(t), params)
		if err != nil || text(res) != "slow done" {
			t.Fatalf("slow = %v, %v", res, err)
		}
		if n := waitProgress(t, p, "slow-1", "step"); n == nil {
			t.Fatal("no progress notification from the server reached the client")
		}
	})
	t.Run("decisions are audited with the MCP session id", func(t *testing.T) {
		rec := h.auditRecord(t, "decision on files.read", func(r map[string]any) bool {
			a, _ := r["agent"].(map[string]any)
			pr, _ := r["principal"].(map[string]any)
			sid, _ := a["session_id"].(string)
			return r["type"] == "decision" && r["tool"] == "files.read" && r["decision"] == "ALLOW" && r["dry_run"] != true &&
				a["framework"] == "mcp" && pr["id"] == p.principal && sessionOK(sid)
		})
		id, _ := rec["decision_id"].(string)
		h.auditRecord(t, "outcome of "+id, func(r map[string]any) bool {
			return r["type"] == "outcome" && r["decision_id"] == id
		})
	})
}

func approveAndCall(t *testing.T, p *proxied) {
	errc := make(chan error, 1)
	go func() { errc <- h.decide(ctx(t), p.principal, "files.write", true, "fine") }()
	params := &mcp.CallToolParams{Name: "write", Arguments: map[string]any{"path": "out.txt", "content": "hello"}}
	params.SetProgressToken("approval-1")
	res, err := p.session.CallTool(ctx(t), params)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if res.IsError || text(res) != "wrote 5 bytes to out.txt" {
		t.Fatalf("approved write = %q (isError %v)", text(res), res.IsError)
	}
	if !slices.Contains(calls(t, p.callLog), "write_out.txt") {
		t.Fatal("the approved write did not run")
	}
	if waitProgress(t, p, "approval-1", "waiting for a human") == nil {
		t.Error("no progress notification while the call waited for approval")
	}
}

func passThrough(t *testing.T, p *proxied) {
	rr, err := p.session.ReadResource(ctx(t), &mcp.ReadResourceParams{URI: "files://readme"})
	if err != nil || len(rr.Contents) != 1 || rr.Contents[0].Text != "read me first" {
		t.Fatalf("resources/read = %+v, %v", rr, err)
	}
	lr, err := p.session.ListResources(ctx(t), nil)
	if err != nil || len(lr.Resources) != 1 || lr.Resources[0].URI != "files://readme" {
		t.Fatalf("resources/list = %+v, %v", lr, err)
	}
	gp, err := p.session.GetPrompt(ctx(t), &mcp.GetPromptParams{Name: "greet", Arguments: map[string]string{"name": "Bob"}})
	if err != nil || len(gp.Messages) != 1 {
		t.Fatalf("prompts/get = %+v, %v", gp, err)
	}
	if tc, ok := gp.Messages[0].Content.(*mcp.TextContent); !ok || tc.Text != "Say hello to Bob" {
		t.Fatalf("prompt message = %+v", gp.Messages[0].Content)
	}
	if err := p.session.Ping(ctx(t), nil); err != nil {
		t.Fatalf("ping: %v", err)
	}
}

// crash kills the server while a call runs there: the call must fail
// promptly, not hang.
func crash(t *testing.T, p *proxied) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		params := &mcp.CallToolParams{Name: "slow", Arguments: map[string]any{"seconds": 60}}
		params.SetProgressToken("crash-1")
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := p.session.CallTool(c, params)
		if err == nil && !res.IsError {
			err = errors.New("the call succeeded")
		} else if err == nil {
			err = errors.New(text(res))
		}
		errc <- err
	}()
	if waitProgress(t, p, "crash-1", "step") == nil {
		t.Fatal("the slow call never started on the server")
	}
	p.killServer(t)
	select {
	case err := <-errc:
		if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "succeeded") {
			t.Fatalf("the call in flight: %v", err)
		}
		t.Logf("the call in flight failed as it should: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("the call in flight did not fail after the server died")
	}
}

func call(t *testing.T, p *proxied, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	res, err := p.session.CallTool(ctx(t), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("tools/call %s: %v", name, err)
	}
	return res
}

func text(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// waitProgress waits for a progress notification with this token whose
// message contains msg.
func waitProgress(t *testing.T, p *proxied, token, msg string) *mcp.ProgressNotificationParams {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case n := <-p.progress:
			if n.ProgressToken == token && strings.Contains(n.Message, msg) {
				return n
			}
		case <-timeout:
			return nil
		}
	}
}

func count(list []string, s string) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

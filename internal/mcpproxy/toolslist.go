package mcpproxy

import (
	"context"
	"slices"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
)

// hiddenReasons are the built-in reasons that mean "no rule of the policy
// spoke about this call": a tool denied for only these is one the policy
// never allows (with empty arguments, see docs/MCP.md).
var hiddenReasons = []string{"default", "unknown_agent"}

// listConcurrency bounds the dry runs one tools/list makes at once.
const listConcurrency = 8

// FilterList removes from a tools/list result the tools a dry-run
// Authorize with empty arguments denies for only built-in reasons. A tool
// whose dry run fails (PDP unreachable) stays listed: listing is not
// permission, and calling it is refused anyway while the PDP is away.
func (p *Proxy) FilterList(ctx context.Context, sess *Session, principal string, resp *jsonrpc.Response) *jsonrpc.Response {
	if !p.cfg.FilterTools || resp.Error != nil {
		return resp
	}
	var res map[string]any
	if err := decodeJSON(resp.Result, &res); err != nil || res == nil {
		return resp
	}
	tools, _ := res["tools"].([]any)
	hide := p.hiddenTools(ctx, sess, principal, toolNames(tools))
	if len(hide) == 0 {
		return resp
	}
	kept := slices.DeleteFunc(slices.Clone(tools), func(t any) bool { return hide[toolName(t)] })
	res["tools"] = kept
	raw, err := encodeJSON(res)
	if err != nil {
		return resp
	}
	p.log.DebugContext(ctx, "tools/list filtered", "session", sess.ID, "hidden", len(tools)-len(kept))
	return resultResponse(resp.ID, raw)
}

// hiddenTools dry-runs every tool and returns those to hide.
func (p *Proxy) hiddenTools(ctx context.Context, sess *Session, principal string, names []string) map[string]bool {
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		sem  = make(chan struct{}, listConcurrency)
		hide = map[string]bool{}
	)
	for _, name := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if p.neverAllowed(ctx, sess, principal, name) {
				mu.Lock()
				hide[name] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return hide
}

// neverAllowed is the documented filtering rule.
func (p *Proxy) neverAllowed(ctx context.Context, sess *Session, principal, name string) bool {
	req := &pb.AuthorizeRequest{
		Agent:  &pb.Agent{Id: p.cfg.AgentID, Framework: "mcp", SessionId: sess.ID},
		Tool:   p.tool(name),
		Args:   &structpb.Struct{Fields: map[string]*structpb.Value{}},
		DryRun: true,
	}
	if principal != "" {
		req.Principal = &pb.Principal{Id: principal}
	}
	resp, err := p.authorize(ctx, req)
	if err != nil {
		p.log.WarnContext(ctx, "tools/list dry run failed; tool stays listed", "tool", req.Tool, "err", err)
		return false
	}
	return hiddenBy(resp)
}

// hiddenBy reports whether a dry-run answer is DENY for built-in reasons
// only.
func hiddenBy(resp *pb.AuthorizeResponse) bool {
	if resp.GetDecision() != pb.Decision_DECISION_DENY || len(resp.GetReasons()) == 0 {
		return false
	}
	for _, r := range resp.GetReasons() {
		if !slices.Contains(hiddenReasons, r.GetRuleId()) {
			return false
		}
	}
	return true
}

func toolNames(tools []any) []string {
	var names []string
	for _, t := range tools {
		if n := toolName(t); n != "" {
			names = append(names, n)
		}
	}
	return names
}

func toolName(t any) string {
	m, _ := t.(map[string]any)
	n, _ := m["name"].(string)
	return n
}

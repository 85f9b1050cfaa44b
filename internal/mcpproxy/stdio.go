package mcpproxy

import (
	"context"
	"fmt"
	"io"
	"os/exec"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// RunStdio launches the real MCP server as cmd, speaks MCP's stdio
// transport to the client on in/out, and relays between the two until the
// client closes in (nil) or the server exits (an error wrapping
// ErrUpstreamGone). cmd's stderr is left as the caller set it.
func (p *Proxy) RunStdio(ctx context.Context, cmd *exec.Cmd, in io.ReadCloser, out io.WriteCloser) error {
	server, err := (&mcp.CommandTransport{Command: cmd}).Connect(ctx)
	if err != nil {
		return fmt.Errorf("start MCP server %s: %w", cmd.Path, err)
	}
	client, err := (&mcp.IOTransport{Reader: in, Writer: out}).Connect(ctx)
	if err != nil {
		_ = server.Close()
		return fmt.Errorf("connect stdio client: %w", err)
	}
	sess := p.NewStdioSession()
	p.log.InfoContext(ctx, "mcp proxy relaying over stdio", "server", p.cfg.ServerName,
		"command", cmd.Path, "session", sess.ID)
	return p.Relay(ctx, sess, client, server)
}

package mcpproxy

import (
	"context"
	"crypto/rand"
	"log/slog"
	"sync"
	"time"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
)

// Proxy holds what both transports share: the configuration, the PDP
// client and the sessions' state. It is safe for concurrent use.
type Proxy struct {
	cfg      Config
	pdp      pb.AuthorizationServiceClient
	log      *slog.Logger
	sessions *sessions
	// bg tracks outcome reports sent off the response path.
	bg sync.WaitGroup
}

// New checks cfg and builds a Proxy that asks pdp. log may be nil.
func New(cfg Config, pdp pb.AuthorizationServiceClient, log *slog.Logger) (*Proxy, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	return &Proxy{cfg: cfg, pdp: pdp, log: log,
		sessions: newSessions(cfg.MaxSessions, cfg.HistoryItems, cfg.HistoryBytes)}, nil
}

// Close waits, up to timeout, for outcome reports still being sent.
func (p *Proxy) Close(timeout time.Duration) {
	done := make(chan struct{})
	go func() {
		p.bg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		p.log.Warn("outcome reports still pending at shutdown")
	}
}

// NewStdioSession makes the session of a stdio proxy: stdio has no MCP
// session id, so the proxy makes one per process.
func (p *Proxy) NewStdioSession() *Session {
	id := "stdio-" + rand.Text()
	return p.sessions.get(id, id)
}

// tool is the name the policies know a tool of this server by.
func (p *Proxy) tool(name string) string { return p.cfg.ServerName + "." + name }

// source is the inputs source of a result of tool name.
func (p *Proxy) source(name string) string { return "mcp:" + p.cfg.ServerName + "/" + name }

// pdpCtx bounds one PDP call.
func (p *Proxy) pdpCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, p.cfg.PDPTimeout)
}

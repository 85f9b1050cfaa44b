package mcpproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// ErrUpstreamGone is returned by Relay when the server side ends first.
var ErrUpstreamGone = errors.New("upstream MCP server is gone")

// Relay forwards JSON-RPC messages between an MCP client connection and an
// MCP server connection until either side ends. Everything passes as it
// came, except that tools/call requests are authorized first and their
// results scanned, and tools/list results are filtered when configured.
//
// Relay returns nil when the client ended the session, and an error
// wrapping ErrUpstreamGone when the server did; requests still waiting for
// the server are then answered with a JSON-RPC error first, so the client
// does not hang. It closes both connections before returning.
func (p *Proxy) Relay(ctx context.Context, sess *Session, client, server mcp.Connection) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &relay{p: p, sess: sess, client: client, server: server, ctx: ctx}
	clientDone, serverDone := make(chan error, 1), make(chan error, 1)
	go func() { clientDone <- r.fromClient() }()
	go func() { serverDone <- r.fromServer() }()
	var err error
	select {
	case cerr := <-clientDone:
		p.log.DebugContext(ctx, "mcp client closed the session", "err", cerr)
	case serr := <-serverDone:
		err = fmt.Errorf("%w: %v", ErrUpstreamGone, serr)
		r.failPending(err)
	case <-ctx.Done():
		err = ctx.Err()
	}
	cancel()
	r.closeBoth()
	r.wg.Wait()
	return err
}

// relay is one running Relay.
type relay struct {
	p              *Proxy
	sess           *Session
	client, server mcp.Connection
	ctx            context.Context
	wg             sync.WaitGroup
	closeOnce      sync.Once
}

func (r *relay) fromClient() error {
	for {
		msg, err := r.client.Read(r.ctx)
		if err != nil {
			return fmt.Errorf("read from client: %w", err)
		}
		switch m := msg.(type) {
		case *jsonrpc.Request:
			r.clientRequest(m)
		case *jsonrpc.Response:
			r.toServer(m)
		}
	}
}

// clientRequest routes one request or notification from the client.
func (r *relay) clientRequest(m *jsonrpc.Request) {
	switch {
	case m.Method == methodToolsCall && !m.IsCall():
		// A tools/call without an id would run with nobody asked; it has no
		// answer to refuse with, so it is dropped.
		r.p.log.WarnContext(r.ctx, "dropped a tools/call notification (no id)")
	case !m.IsCall():
		if m.Method == methodCancelled {
			if id, ok := cancelledID(m.Params); ok && r.sess.cancelHeld(id) {
				return // it never reached the server
			}
		}
		r.toServer(m)
	case m.Method == methodToolsCall:
		ctx, cancel := context.WithCancel(r.ctx)
		r.sess.hold(m.ID, cancel)
		r.wg.Add(1)
		go r.toolCall(ctx, m)
	default:
		r.sess.watch(m.ID, &pending{method: m.Method, principal: r.p.cfg.Principal})
		r.forward(m)
	}
}

// toolCall authorizes one tools/call and forwards or answers it.
func (r *relay) toolCall(ctx context.Context, m *jsonrpc.Request) {
	defer r.wg.Done()
	c, answer := r.p.AuthorizeCall(ctx, r.sess, r.p.cfg.Principal, m, r.progress)
	var watch *pending
	if c != nil {
		watch = &pending{method: m.Method, call: c}
	}
	if !r.sess.release(m.ID, watch) {
		return // cancelled by the client, or the server is gone and it was answered
	}
	if answer != nil {
		r.toClient(answer)
		return
	}
	r.forward(m)
}

// forward sends a watched request to the server, answering it with an
// error when that fails.
func (r *relay) forward(m *jsonrpc.Request) {
	if err := r.server.Write(r.ctx, m); err != nil {
		if p := r.sess.take(m.ID); p != nil {
			r.answerFailed(m.ID, p, fmt.Errorf("%w: %v", ErrUpstreamGone, err))
		}
	}
}

func (r *relay) fromServer() error {
	for {
		msg, err := r.server.Read(r.ctx)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return errors.New("the server closed its output")
			}
			return fmt.Errorf("read from server: %w", err)
		}
		switch m := msg.(type) {
		case *jsonrpc.Request:
			r.toClient(m)
		case *jsonrpc.Response:
			r.serverResponse(m)
		}
	}
}

// serverResponse passes a response on, rewriting it first when it answers
// a tools/call or (when filtering) a tools/list.
func (r *relay) serverResponse(m *jsonrpc.Response) {
	p := r.sess.take(m.ID)
	switch {
	case p != nil && p.call != nil:
		r.async(func() { r.toClient(r.p.FinishCall(r.ctx, p.call, m)) })
	case p != nil && p.method == methodToolsList && r.p.cfg.FilterTools:
		r.async(func() { r.toClient(r.p.FilterList(r.ctx, r.sess, p.principal, m)) })
	default:
		r.toClient(m)
	}
}

// async runs a rewrite off the read loop, so a slow PDP delays only the
// response it rewrites.
func (r *relay) async(f func()) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		f()
	}()
}

// failPending answers every request the server will now never answer.
func (r *relay) failPending(err error) {
	held, watched := r.sess.drain()
	for _, id := range held {
		r.toClient(errorResponse(id, codeUpstreamFailure, err.Error()))
	}
	for id, p := range watched {
		r.answerFailed(id, p, err)
	}
}

func (r *relay) answerFailed(id jsonrpc.ID, p *pending, err error) {
	if p.call != nil {
		r.p.reportOutcome(r.ctx, p.call, outcomeFailed, "tools/call "+p.call.tool+": "+err.Error(), nil)
	}
	r.toClient(errorResponse(id, codeUpstreamFailure, err.Error()))
}

func (r *relay) progress(ctx context.Context, n *jsonrpc.Request) {
	if err := r.client.Write(ctx, n); err != nil {
		r.p.log.DebugContext(ctx, "progress notification not sent", "err", err)
	}
}

// toClient writes to the client even while the relay shuts down (the
// answers to failed requests are written then).
func (r *relay) toClient(m jsonrpc.Message) {
	if err := r.client.Write(context.WithoutCancel(r.ctx), m); err != nil {
		r.p.log.DebugContext(r.ctx, "write to client failed", "err", err)
	}
}

func (r *relay) toServer(m jsonrpc.Message) {
	if err := r.server.Write(r.ctx, m); err != nil {
		r.p.log.DebugContext(r.ctx, "write to server failed", "err", err)
	}
}

func (r *relay) closeBoth() {
	r.closeOnce.Do(func() {
		if err := r.server.Close(); err != nil {
			r.p.log.DebugContext(r.ctx, "closing the server connection", "err", err)
		}
		if err := r.client.Close(); err != nil {
			r.p.log.DebugContext(r.ctx, "closing the client connection", "err", err)
		}
	})
}

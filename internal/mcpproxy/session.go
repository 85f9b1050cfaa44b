package mcpproxy

import (
	"container/list"
	"context"
	"sync"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
)

// Session is the proxy's state for one MCP session: the recent tool
// results that go into AuthorizeRequest.inputs, and the requests it is
// holding (being authorized) or watching (awaiting a response to rewrite).
type Session struct {
	key string
	// ID is the MCP session id (Mcp-Session-Id over HTTP; generated per
	// process for stdio). It becomes agent.session_id.
	ID string

	maxItems, maxBytes int

	mu      sync.Mutex
	history []*pb.Input
	held    map[jsonrpc.ID]context.CancelFunc
	pending map[jsonrpc.ID]*pending
	order   []jsonrpc.ID // pending ids, oldest first, to bound the map
}

// pending is a request forwarded upstream whose response the proxy waits
// for: to rewrite it (tools/call, tools/list) or, on stdio, to answer it
// with an error if the server dies.
type pending struct {
	method string
	call   *toolCall // tools/call only
	// principal the request was made for (tools/list filtering).
	principal string
}

// maxPending bounds the requests one session watches; the oldest are
// forgotten first (their responses then pass unrewritten only if the
// client stopped waiting long ago).
const maxPending = 4096

func newSession(key, id string, maxItems, maxBytes int) *Session {
	return &Session{key: key, ID: id, maxItems: maxItems, maxBytes: maxBytes,
		held: map[jsonrpc.ID]context.CancelFunc{}, pending: map[jsonrpc.ID]*pending{}}
}

// remember appends one tool result's text to the history, keeping at most
// maxItems results and maxBytes bytes, newest first to survive.
func (s *Session) remember(source, text string) {
	if s.maxItems < 0 || text == "" {
		return
	}
	text = truncateUTF8(text, s.maxBytes)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.history = append(s.history, &pb.Input{Source: source, Text: text})
	total := 0
	for i := len(s.history) - 1; i >= 0; i-- {
		total += len(s.history[i].Text)
		if len(s.history)-i > s.maxItems || total > s.maxBytes {
			s.history = append([]*pb.Input(nil), s.history[i+1:]...)
			return
		}
	}
}

// inputs is a copy of the history, oldest first.
func (s *Session) inputs() []*pb.Input {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*pb.Input, len(s.history))
	for i, in := range s.history {
		out[i] = &pb.Input{Source: in.Source, Text: in.Text}
	}
	return out
}

// hold records a tools/call being authorized, so a cancellation can stop it.
func (s *Session) hold(id jsonrpc.ID, cancel context.CancelFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held[id] = cancel
}

// release ends the hold on id and, when it was still held and p is not
// nil, starts watching for its response. It reports whether id was still
// held: false means it was cancelled or failed meanwhile.
func (s *Session) release(id jsonrpc.ID, p *pending) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	cancel, ok := s.held[id]
	if !ok {
		return false
	}
	delete(s.held, id)
	cancel()
	if p != nil {
		s.watchLocked(id, p)
	}
	return true
}

// cancelHeld cancels a held tools/call; it reports whether id was held.
func (s *Session) cancelHeld(id jsonrpc.ID) bool { return s.release(id, nil) }

// watch starts waiting for the response to id.
func (s *Session) watch(id jsonrpc.ID, p *pending) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.watchLocked(id, p)
}

func (s *Session) watchLocked(id jsonrpc.ID, p *pending) {
	if _, dup := s.pending[id]; !dup {
		s.order = append(s.order, id)
	}
	s.pending[id] = p
	for len(s.order) > maxPending {
		delete(s.pending, s.order[0])
		s.order = s.order[1:]
	}
}

// take stops watching id and returns what was recorded for it, or nil.
func (s *Session) take(id jsonrpc.ID) *pending {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pending[id]
	if !ok {
		return nil
	}
	delete(s.pending, id)
	for i, o := range s.order {
		if o == id {
			s.order = append(s.order[:i], s.order[i+1:]...)
			break
		}
	}
	return p
}

// drain forgets every held and pending request and returns their ids, so
// the caller can answer them when the server is gone.
func (s *Session) drain() (held []jsonrpc.ID, watched map[jsonrpc.ID]*pending) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, cancel := range s.held {
		cancel()
		held = append(held, id)
	}
	watched = s.pending
	s.held, s.pending, s.order = map[jsonrpc.ID]context.CancelFunc{}, map[jsonrpc.ID]*pending{}, nil
	return held, watched
}

// truncateUTF8 cuts s to at most n bytes without splitting a rune.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// sessions is a bounded table of Sessions, least recently used evicted.
type sessions struct {
	mu                 sync.Mutex
	max                int
	maxItems, maxBytes int
	byKey              map[string]*list.Element
	lru                *list.List // of *Session, most recent at the front
}

func newSessions(max, maxItems, maxBytes int) *sessions {
	return &sessions{max: max, maxItems: maxItems, maxBytes: maxBytes,
		byKey: map[string]*list.Element{}, lru: list.New()}
}

// get returns the session stored under key, creating it (with MCP session
// id id) when new.
func (t *sessions) get(key, id string) *Session {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.byKey[key]; ok {
		t.lru.MoveToFront(e)
		return e.Value.(*Session)
	}
	s := newSession(key, id, t.maxItems, t.maxBytes)
	t.byKey[key] = t.lru.PushFront(s)
	for t.lru.Len() > t.max {
		old := t.lru.Back()
		t.lru.Remove(old)
		delete(t.byKey, old.Value.(*Session).key)
	}
	return s
}

// drop forgets the session stored under key (the client ended it).
func (t *sessions) drop(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.byKey[key]; ok {
		t.lru.Remove(e)
		delete(t.byKey, key)
	}
}

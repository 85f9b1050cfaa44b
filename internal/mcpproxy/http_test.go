package mcpproxy

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
)

// headerRecorder remembers whether any upstream request carried a header.
type headerRecorder struct {
	mu   sync.Mutex
	seen []string
	next http.Handler
}

func (r *headerRecorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.seen = append(r.seen, req.Header.Get("X-Agentpdp-Principal"))
	r.mu.Unlock()
	r.next.ServeHTTP(w, req)
}

func (r *headerRecorder) leaked() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range r.seen {
		if v != "" {
			return true
		}
	}
	return len(r.seen) == 0
}

type addHeader struct{ k, v string }

func (a addHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(a.k, a.v)
	return http.DefaultTransport.RoundTrip(r)
}

func TestHTTPProxyBothResponseModes(t *testing.T) {
	for _, jsonMode := range []bool{false, true} {
		name := map[bool]string{false: "sse", true: "json"}[jsonMode]
		t.Run(name, func(t *testing.T) {
			f := &fakePDP{authorize: approveWrites, scan: scanFor, wait: approveSoon}
			ts := &toolServer{runs: map[string]int{}, texts: map[string]string{"read": "mail bob@example.com", "secret": "s", "write": "wrote"}}
			srv := ts.mcpServer()
			rec := &headerRecorder{next: mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv },
				&mcp.StreamableHTTPOptions{JSONResponse: jsonMode})}
			upstream := httptest.NewServer(rec)
			defer upstream.Close()
			cfg := testConfig()
			cfg.PrincipalHeader, cfg.FilterTools, cfg.ResultAction = "X-Agentpdp-Principal", true, ActionRedact
			p, err := New(cfg, serveFake(t, f), slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			h, err := p.NewHTTPHandler(upstream.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			proxy := httptest.NewServer(h)
			defer proxy.Close()
			client := &http.Client{Transport: addHeader{"X-Agentpdp-Principal", "bob"}}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			progress := make(chan string, 8)
			opts := &mcp.ClientOptions{ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
				progress <- r.Params.Message
			}}
			sess, err := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, opts).Connect(ctx,
				&mcp.StreamableClientTransport{Endpoint: proxy.URL, HTTPClient: client}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			tools, err := sess.ListTools(ctx, nil)
			if err != nil || len(tools.Tools) != 2 {
				t.Fatalf("tools/list = %v, %v; want read and write", tools, err)
			}
			params := &mcp.CallToolParams{Name: "write"}
			params.SetProgressToken("p1")
			if res, err := sess.CallTool(ctx, params); err != nil || resultText(res) != "wrote" {
				t.Fatalf("approved write = %v, %v", res, err)
			}
			if msg := <-progress; !strings.Contains(msg, "waiting for a human") {
				t.Errorf("progress while waiting = %q", msg)
			}
			res := callTool(t, sess, "read", nil)
			if resultText(res) != "mail [REDACTED:email]" {
				t.Fatalf("read = %q, want the email redacted", resultText(res))
			}
			if res := callTool(t, sess, "secret", nil); !res.IsError || ts.ran("secret") != 0 {
				t.Fatalf("secret = %q isError=%v ran=%d", resultText(res), res.IsError, ts.ran("secret"))
			}
			req := f.toolRequests("files.read")[0]
			if req.GetPrincipal().GetId() != "bob" || req.GetAgent().GetSessionId() != sess.ID() {
				t.Errorf("principal %q session %q, want bob and %q", req.GetPrincipal().GetId(), req.GetAgent().GetSessionId(), sess.ID())
			}
			if rec.leaked() {
				t.Error("the principal header reached the upstream server")
			}
		})
	}
}

func TestHTTPBatchedOrNotifiedToolsCallRefused(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		t.Error("a batched tools/call reached the upstream")
	}))
	defer upstream.Close()
	p, err := New(testConfig(), serveFake(t, &fakePDP{authorize: allowAll}), nil)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := p.NewHTTPHandler(upstream.URL, nil)
	for _, body := range []string{
		`[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read"}}]`,
		`{"jsonrpc":"2.0","method":"tools/call","params":{"name":"read"}}`,
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body)))
		if w.Code != http.StatusBadRequest {
			t.Fatalf("%s: status %d, want 400", body, w.Code)
		}
	}
}

func TestHTTPUpstreamDownIsBadGateway(t *testing.T) {
	p, err := New(testConfig(), serveFake(t, &fakePDP{authorize: allowAll}), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	h, _ := p.NewHTTPHandler("http://127.0.0.1:1/mcp", nil)
	body := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"read"}}`
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body)))
	if w.Code != http.StatusBadGateway || !strings.Contains(w.Body.String(), "upstream MCP server is gone") {
		t.Fatalf("status %d body %s", w.Code, w.Body)
	}
}

func TestSSEReader(t *testing.T) {
	in := ": comment\r\nevent: message\r\nid: 4\r\ndata: {\"a\":\ndata: 1}\r\n\r\n\ndata: x\n\ndata: cut"
	rd := newSSEReader(strings.NewReader(in), 1<<20)
	ev, err := rd.next()
	if err != nil || ev.name != "message" || ev.id != "4" || string(ev.data) != "{\"a\":\n1}" || len(ev.lines) != 5 {
		t.Fatalf("first event = %+v, %v", ev, err)
	}
	if ev, err := rd.next(); err != nil || string(ev.data) != "x" || !ev.isMessage() {
		t.Fatalf("second event = %+v, %v", ev, err)
	}
	if _, err := rd.next(); err != io.EOF {
		t.Fatalf("a cut-off event: %v, want io.EOF (dropped)", err)
	}
	big := newSSEReader(strings.NewReader("data: "+strings.Repeat("x", 100)+"\n\n"), 50)
	if _, err := big.next(); err != errEventTooLarge {
		t.Fatalf("oversized event: %v", err)
	}
}

func TestSSEWriterRewriteKeepsFields(t *testing.T) {
	rec := httptest.NewRecorder()
	ev := &sseEvent{lines: [][]byte{[]byte("event: message"), []byte("id: 9"), []byte("data: old")}}
	if err := newSSEWriter(rec).rewritten(ev, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if got, want := rec.Body.String(), "event: message\nid: 9\ndata: new\n\n"; got != want {
		t.Fatalf("got %q want %q", got, want)
	}
}

func TestRedact(t *testing.T) {
	m := func(kind string, s, e int32) *pb.PIIMatch { return &pb.PIIMatch{Kind: kind, Start: s, End: e} }
	for _, tc := range []struct {
		in   string
		pii  []*pb.PIIMatch
		want string
		n    int
	}{
		{"no pii", nil, "no pii", 0},
		{"a x@y.z b 555-1234", []*pb.PIIMatch{m("phone", 10, 18), m("email", 2, 7)}, "a [REDACTED:email] b [REDACTED:phone]", 2},
		{"overlap abcdef", []*pb.PIIMatch{m("a", 8, 12), m("b", 10, 14)}, "overlap [REDACTED:a]", 1},
		{"short", []*pb.PIIMatch{m("x", 3, 99), m("y", -1, 2), m("z", 2, 2)}, "short", 0},
	} {
		got, n := redact(tc.in, tc.pii)
		if got != tc.want || n != tc.n {
			t.Errorf("redact(%q) = %q, %d; want %q, %d", tc.in, got, n, tc.want, tc.n)
		}
	}
}

func TestHiddenBy(t *testing.T) {
	r := func(id string) *pb.Reason { return &pb.Reason{RuleId: id} }
	deny := pb.Decision_DECISION_DENY
	for _, tc := range []struct {
		resp *pb.AuthorizeResponse
		want bool
	}{
		{&pb.AuthorizeResponse{Decision: deny, Reasons: []*pb.Reason{r("default")}}, true},
		{&pb.AuthorizeResponse{Decision: deny, Reasons: []*pb.Reason{r("unknown_agent")}}, true},
		{&pb.AuthorizeResponse{Decision: deny, Reasons: []*pb.Reason{r("no-delete")}}, false},
		{&pb.AuthorizeResponse{Decision: deny, Reasons: []*pb.Reason{r("suspended")}}, false},
		{&pb.AuthorizeResponse{Decision: deny}, false},
		{&pb.AuthorizeResponse{Decision: pb.Decision_DECISION_ALLOW, Reasons: []*pb.Reason{r("default")}}, false},
	} {
		if got := hiddenBy(tc.resp); got != tc.want {
			t.Errorf("hiddenBy(%v) = %v, want %v", tc.resp, got, tc.want)
		}
	}
}

func TestHistoryIsBounded(t *testing.T) {
	s := newSession("k", "id", 2, 10)
	s.remember("a", "111")
	s.remember("b", "222")
	s.remember("c", "333")
	if in := s.inputs(); len(in) != 2 || in[0].GetText() != "222" || in[1].GetText() != "333" {
		t.Fatalf("inputs = %v, want the last two", in)
	}
	s.remember("d", "0123456789abc")
	if in := s.inputs(); len(in) != 1 || in[0].GetText() != "0123456789" {
		t.Fatalf("inputs = %v, want one result cut to 10 bytes", in)
	}
	none := newSession("k", "id", -1, 10)
	none.remember("a", "x")
	if len(none.inputs()) != 0 {
		t.Fatal("history kept with HistoryItems < 0")
	}
}

func TestSessionsTableIsBounded(t *testing.T) {
	tab := newSessions(2, 1, 10)
	a := tab.get("a", "a")
	tab.get("b", "b")
	tab.get("a", "a") // a is now the most recent
	tab.get("c", "c") // evicts b
	if tab.get("a", "a") != a {
		t.Fatal("a was evicted, want b")
	}
	if len(tab.byKey) != 2 {
		t.Fatalf("%d sessions kept, want 2", len(tab.byKey))
	}
}

func TestToolErrorShape(t *testing.T) {
	raw := toolError("Denied by policy: x", nil)
	if !bytes.Equal(raw, []byte(`{"content":[{"text":"Denied by policy: x","type":"text"}],"isError":true}`)) {
		t.Fatalf("toolError = %s", raw)
	}
}

func TestAmbiguousMessagesRefused(t *testing.T) {
	for _, tc := range []struct {
		raw     string
		deep    bool
		canon   []string
		wantErr bool
	}{
		{`{"name":"read","arguments":{"path":"a","Path":"b"}}`, true, paramsKeys, true},
		{`{"name":"read","Name":"delete"}`, true, paramsKeys, true},
		{`{"name":"read","name":"delete"}`, true, paramsKeys, true},
		{`{"Name":"delete"}`, true, paramsKeys, true},
		{`{"name":"read","ARGUMENTS":{}}`, true, paramsKeys, true},
		{`{"name":"read","arguments":{"a":[{"x":1,"X":2}]}}`, true, paramsKeys, true},
		{`{"name":"read","arguments":{"a":{"b":1},"c":{"b":2}}}`, true, paramsKeys, false},
		{`{"jsonrpc":"2.0","id":1,"Method":"tools/call"}`, false, envelopeKeys, true},
		{`[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"a","METHOD":"b"}]`, false, envelopeKeys, true},
		{`{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":1,"X":2}}`, false, envelopeKeys, false},
		{`{"jsonrpc":"2.0","id":1,"method":"ping"`, false, envelopeKeys, true},
	} {
		if err := checkKeys([]byte(tc.raw), tc.deep, tc.canon); (err != nil) != tc.wantErr {
			t.Errorf("checkKeys(%s) = %v, want error %v", tc.raw, err, tc.wantErr)
		}
	}
}

func TestHTTPAmbiguousEnvelopeNotForwarded(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		t.Error("an ambiguous message reached the upstream")
	}))
	defer upstream.Close()
	p, err := New(testConfig(), serveFake(t, &fakePDP{authorize: allowAll}), nil)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := p.NewHTTPHandler(upstream.URL, nil)
	body := `{"jsonrpc":"2.0","id":3,"method":"ping","Method":"tools/call","params":{"name":"delete"}}`
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body)))
	if w.Code != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", w.Code)
	}
}

// approveWrites is allowAll, except that files.write needs an approval.
func approveWrites(req *pb.AuthorizeRequest) (*pb.AuthorizeResponse, error) {
	if req.GetTool() == "files.write" && req.GetApprovalId() == "" && !req.GetDryRun() {
		return &pb.AuthorizeResponse{Decision: pb.Decision_DECISION_REQUIRE_APPROVAL, ApprovalId: "a1", DecisionId: "d0"}, nil
	}
	return allowAll(req)
}

// approveSoon is a WaitApproval whose human approves after a moment.
func approveSoon(ctx context.Context, req *pb.WaitApprovalRequest) (*pb.WaitApprovalResponse, error) {
	select {
	case <-time.After(50 * time.Millisecond):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &pb.WaitApprovalResponse{Approval: &pb.Approval{Id: req.GetApprovalId(),
		Status: pb.ApprovalStatus_APPROVAL_STATUS_APPROVED, Approver: "human"}}, nil
}

package mcpproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// Streamable HTTP headers and limits.
const (
	headerSessionID = "Mcp-Session-Id"
	maxRequestBody  = 16 << 20
	maxResponseBody = 64 << 20
)

// hopHeaders are not forwarded. Accept-Encoding is left to the upstream
// client, which then decompresses, so the proxy always reads plain bodies.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length", "Accept-Encoding"}

// HTTPHandler serves MCP's Streamable HTTP transport by relaying every
// request to an upstream endpoint: headers (session id, protocol version,
// authorization), status codes and bodies pass as they came, JSON and
// server-sent-event responses alike, except for the messages the proxy
// rewrites (see Relay).
type HTTPHandler struct {
	p        *Proxy
	upstream *url.URL
	client   *http.Client
}

// NewHTTPHandler relays to the MCP endpoint at upstream. client may be nil.
func (p *Proxy) NewHTTPHandler(upstream string, client *http.Client) (*HTTPHandler, error) {
	u, err := url.Parse(upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("mcpproxy: upstream %q: want an http(s) URL", upstream)
	}
	if client == nil {
		client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	return &HTTPHandler{p: p, upstream: u, client: client}, nil
}

func (h *HTTPHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sess, principal := h.session(r)
	switch r.Method {
	case http.MethodPost:
		h.post(w, r, sess, principal)
	case http.MethodDelete:
		resp := h.passThrough(w, r, sess, principal)
		if resp != nil && (resp.StatusCode < 300 || resp.StatusCode == http.StatusNotFound) {
			h.p.sessions.drop(sess.key)
		}
	default:
		h.passThrough(w, r, sess, principal)
	}
}

// session finds the proxy's state for the request's MCP session. Without a
// session id (before initialize, or a stateless server) the history is
// kept per principal.
func (h *HTTPHandler) session(r *http.Request) (*Session, string) {
	principal := h.p.cfg.Principal
	if hv := h.p.cfg.PrincipalHeader; hv != "" && r.Header.Get(hv) != "" {
		principal = r.Header.Get(hv)
	}
	id := r.Header.Get(headerSessionID)
	key := id
	if id == "" {
		key = "\x00principal:" + principal
	}
	return h.p.sessions.get(key, id), principal
}

// passThrough relays a request without a body the proxy needs to read.
func (h *HTTPHandler) passThrough(w http.ResponseWriter, r *http.Request, sess *Session, principal string) *http.Response {
	var body []byte
	if r.Body != nil && r.Method != http.MethodGet {
		var err error
		if body, err = readLimited(r.Body, maxRequestBody); err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return nil
		}
	}
	resp, err := h.send(r, body)
	if err != nil {
		h.p.log.WarnContext(r.Context(), "mcp upstream unreachable", "err", err)
		h.badGateway(w, err)
		return nil
	}
	h.relayResponse(&exchange{h: h, w: w, r: r, sess: sess, principal: principal}, resp)
	return resp
}

func (h *HTTPHandler) post(w http.ResponseWriter, r *http.Request, sess *Session, principal string) {
	body, err := readLimited(r.Body, maxRequestBody)
	if err != nil {
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	if err := checkKeys(body, false, envelopeKeys); err != nil {
		// A server reading such a message differently from the proxy
		// could run a tools/call the proxy never saw.
		http.Error(w, "agentpdp mcp-proxy: ambiguous JSON-RPC message: "+err.Error(), http.StatusBadRequest)
		return
	}
	msgs, batch := decodeBody(body)
	ex := &exchange{h: h, w: w, r: r, sess: sess, principal: principal}
	for _, m := range msgs {
		req, ok := m.(*jsonrpc.Request)
		if !ok {
			continue
		}
		switch {
		case req.Method == methodToolsCall && (batch || !req.IsCall()):
			http.Error(w, "agentpdp mcp-proxy: tools/call must be a single request with an id, not in a batch", http.StatusBadRequest)
			return
		case req.Method == methodToolsCall:
			h.postCall(ex, body, req)
			return
		case req.Method == methodCancelled && sess.cancelHeldFrom(req.Params) && !batch:
			w.WriteHeader(http.StatusAccepted) // the call never reached the server
			return
		case req.IsCall():
			if req.Method == methodToolsList && h.p.cfg.FilterTools {
				sess.watch(req.ID, &pending{method: req.Method, principal: principal})
			}
			ex.want = append(ex.want, req.ID)
		}
	}
	resp, err := h.send(r, body)
	if err != nil {
		h.p.log.WarnContext(r.Context(), "mcp upstream unreachable", "err", err)
		h.badGateway(w, err)
		return
	}
	h.relayResponse(ex, resp)
}

// postCall authorizes a tools/call POST, then answers it or relays it.
func (h *HTTPHandler) postCall(ex *exchange, body []byte, req *jsonrpc.Request) {
	ctx, cancel := context.WithCancel(ex.r.Context())
	defer cancel()
	ex.want = []jsonrpc.ID{req.ID}
	ex.sess.hold(req.ID, cancel)
	var progress progressFunc
	if acceptsSSE(ex.r) {
		progress = ex.progress
	}
	c, answer := h.p.AuthorizeCall(ctx, ex.sess, ex.principal, req, progress)
	var watch *pending
	if c != nil {
		watch = &pending{method: req.Method, call: c}
	}
	if !ex.sess.release(req.ID, watch) {
		answer = errorResponse(req.ID, codeUpstreamFailure, "the request was cancelled")
	}
	if answer != nil {
		ex.answer(answer)
		return
	}
	resp, err := h.send(ex.r, body)
	if err != nil {
		ex.failWanted(fmt.Errorf("%w: %v", ErrUpstreamGone, err))
		return
	}
	h.relayResponse(ex, resp)
}

// send makes the upstream request.
func (h *HTTPHandler) send(r *http.Request, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, h.target(r), rd)
	if err != nil {
		return nil, fmt.Errorf("build upstream request: %w", err)
	}
	copyHeaders(out.Header, r.Header, h.p.cfg.PrincipalHeader)
	resp, err := h.client.Do(out)
	if err != nil {
		return nil, fmt.Errorf("upstream %s %s: %w", r.Method, h.upstream.Redacted(), err)
	}
	return resp, nil
}

// target is the upstream URL, with the client's query when it has none.
func (h *HTTPHandler) target(r *http.Request) string {
	u := *h.upstream
	if u.RawQuery == "" {
		u.RawQuery = r.URL.RawQuery
	}
	return u.String()
}

// relayResponse passes an upstream response to the client, rewriting the
// messages the proxy watches for.
func (h *HTTPHandler) relayResponse(ex *exchange, resp *http.Response) {
	defer resp.Body.Close()
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if ex.sse != nil {
		h.relayIntoStarted(ex, resp, ct)
		return
	}
	copyHeaders(ex.w.Header(), resp.Header, "")
	switch ct {
	case "text/event-stream":
		ex.w.WriteHeader(resp.StatusCode)
		ex.sse = newSSEWriter(ex.w)
		ex.pipeSSE(resp.Body)
	case "application/json":
		ex.relayJSON(resp)
	default:
		ex.dropWanted()
		ex.w.WriteHeader(resp.StatusCode)
		if _, err := io.Copy(ex.w, resp.Body); err != nil {
			h.p.log.DebugContext(ex.r.Context(), "relaying upstream body", "err", err)
		}
	}
}

// relayIntoStarted continues an SSE response the proxy already began (it
// sent progress while a human decided).
func (h *HTTPHandler) relayIntoStarted(ex *exchange, resp *http.Response, ct string) {
	switch {
	case resp.StatusCode >= 300:
		b, _ := readLimited(resp.Body, 4<<10)
		ex.failWanted(fmt.Errorf("%w: upstream answered %s: %s", ErrUpstreamGone, resp.Status, bytes.TrimSpace(b)))
	case ct == "text/event-stream":
		ex.pipeSSE(resp.Body)
	default:
		body, err := readLimited(resp.Body, maxResponseBody)
		if err != nil {
			ex.failWanted(fmt.Errorf("%w: %v", ErrUpstreamGone, err))
			return
		}
		msgs, _ := decodeBody(body)
		for _, m := range msgs {
			if out := ex.rewrite(m); out != nil {
				m = out
			}
			ex.send(m)
		}
		ex.failWanted(fmt.Errorf("%w: upstream answered without a response", ErrUpstreamGone))
	}
}

// badGateway answers 502 with a JSON-RPC error body.
func (h *HTTPHandler) badGateway(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadGateway)
	raw, _ := jsonrpc.EncodeMessage(errorResponse(jsonrpc.ID{}, codeUpstreamFailure, err.Error()))
	_, _ = w.Write(raw)
}

// exchange is one client request in flight: where its answer goes and
// which of its calls still wait for a response.
type exchange struct {
	h         *HTTPHandler
	w         http.ResponseWriter
	r         *http.Request
	sess      *Session
	principal string
	want      []jsonrpc.ID
	sse       *sseWriter // set once the response is an event stream
}

// pipeSSE relays an upstream event stream, rewriting watched responses.
// If the stream breaks (the server died), the calls still waiting are
// answered with an error, so the client does not wait for them forever.
func (ex *exchange) pipeSSE(body io.Reader) {
	rd := newSSEReader(body, maxResponseBody)
	sawID := false
	for {
		ev, err := rd.next()
		if err != nil {
			if !errors.Is(err, io.EOF) || !sawID {
				ex.failWanted(fmt.Errorf("%w: the event stream ended: %v", ErrUpstreamGone, err))
			}
			return
		}
		sawID = sawID || ev.id != ""
		if err := ex.relayEvent(ev); err != nil {
			ex.h.p.log.DebugContext(ex.r.Context(), "client went away", "err", err)
			return
		}
	}
}

func (ex *exchange) relayEvent(ev *sseEvent) error {
	if !ev.isMessage() {
		return ex.sse.raw(ev)
	}
	msg, err := jsonrpc.DecodeMessage(ev.data)
	if err != nil {
		return ex.sse.raw(ev)
	}
	out := ex.rewrite(msg)
	if out == nil {
		return ex.sse.raw(ev)
	}
	raw, err := jsonrpc.EncodeMessage(out)
	if err != nil {
		return fmt.Errorf("encode rewritten message: %w", err)
	}
	return ex.sse.rewritten(ev, raw)
}

// relayJSON relays a JSON response body (one message or a batch).
func (ex *exchange) relayJSON(resp *http.Response) {
	body, err := readLimited(resp.Body, maxResponseBody)
	if err != nil {
		ex.failWanted(fmt.Errorf("%w: %v", ErrUpstreamGone, err))
		return
	}
	msgs, batch := decodeBody(body)
	changed := false
	raws := make([]json.RawMessage, len(msgs))
	for i, m := range msgs {
		out := ex.rewrite(m)
		if out == nil {
			out = m
		} else {
			changed = true
		}
		raws[i], _ = jsonrpc.EncodeMessage(out)
	}
	if changed && batch {
		body, _ = json.Marshal(raws)
	} else if changed {
		body = raws[0]
	}
	ex.dropWanted()
	ex.w.WriteHeader(resp.StatusCode)
	_, _ = ex.w.Write(body)
}

// rewrite returns the rewritten message when m answers a watched request,
// or nil to pass m as it came.
func (ex *exchange) rewrite(m jsonrpc.Message) jsonrpc.Message {
	resp, ok := m.(*jsonrpc.Response)
	if !ok {
		return nil
	}
	ex.answered(resp.ID)
	p := ex.sess.take(resp.ID)
	ctx := ex.r.Context()
	switch {
	case p == nil:
		return nil
	case p.call != nil:
		return ex.h.p.FinishCall(ctx, p.call, resp)
	case p.method == methodToolsList:
		return ex.h.p.FilterList(ctx, ex.sess, p.principal, resp)
	}
	return nil
}

func (ex *exchange) answered(id jsonrpc.ID) {
	for i, w := range ex.want {
		if w == id {
			ex.want = append(ex.want[:i], ex.want[i+1:]...)
			return
		}
	}
}

// answer sends the proxy's own answer to the request.
func (ex *exchange) answer(m jsonrpc.Message) {
	if ex.sse != nil {
		ex.send(m)
		return
	}
	raw, _ := jsonrpc.EncodeMessage(m)
	ex.w.Header().Set("Content-Type", "application/json")
	ex.w.Header().Set("Content-Length", fmt.Sprint(len(raw)))
	_, _ = ex.w.Write(raw)
}

// progress starts the event stream, if needed, and sends a notification.
func (ex *exchange) progress(_ context.Context, n *jsonrpc.Request) {
	if ex.sse == nil {
		ex.w.Header().Set("Content-Type", "text/event-stream")
		ex.w.Header().Set("Cache-Control", "no-cache")
		ex.w.WriteHeader(http.StatusOK)
		ex.sse = newSSEWriter(ex.w)
	}
	ex.send(n)
}

func (ex *exchange) send(m jsonrpc.Message) {
	raw, err := jsonrpc.EncodeMessage(m)
	if err == nil {
		err = ex.sse.message(raw)
	}
	if err != nil {
		ex.h.p.log.DebugContext(ex.r.Context(), "send to client", "err", err)
	}
}

// failWanted answers the calls still waiting with an error: into the
// event stream when there is one, else as a 502.
func (ex *exchange) failWanted(err error) {
	if len(ex.want) == 0 {
		return
	}
	ex.h.p.log.WarnContext(ex.r.Context(), "mcp upstream failed a request", "err", err)
	want := ex.want
	ex.want = nil
	for _, id := range want {
		if p := ex.sess.take(id); p != nil && p.call != nil {
			ex.h.p.reportOutcome(ex.r.Context(), p.call, outcomeFailed, "tools/call "+p.call.tool+": "+err.Error(), nil)
		}
	}
	if ex.sse == nil {
		ex.h.badGateway(ex.w, err)
		return
	}
	for _, id := range want {
		ex.send(errorResponse(id, codeUpstreamFailure, err.Error()))
	}
}

// dropWanted stops watching the calls of a response that cannot carry
// their answers (an error status, an empty body).
func (ex *exchange) dropWanted() {
	for _, id := range ex.want {
		if p := ex.sess.take(id); p != nil && p.call != nil {
			ex.h.p.reportOutcome(ex.r.Context(), p.call, outcomeFailed, "tools/call "+p.call.tool+": no result from upstream", nil)
		}
	}
	ex.want = nil
}

// cancelHeldFrom cancels the held call a notifications/cancelled names.
func (s *Session) cancelHeldFrom(params json.RawMessage) bool {
	id, ok := cancelledID(params)
	return ok && s.cancelHeld(id)
}

// decodeBody decodes a POST body: one message, or a batch.
func decodeBody(body []byte) (msgs []jsonrpc.Message, batch bool) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var raws []json.RawMessage
		if json.Unmarshal(trimmed, &raws) != nil {
			return nil, true
		}
		for _, raw := range raws {
			if m, err := jsonrpc.DecodeMessage(raw); err == nil {
				msgs = append(msgs, m)
			}
		}
		return msgs, true
	}
	if m, err := jsonrpc.DecodeMessage(trimmed); err == nil {
		return []jsonrpc.Message{m}, false
	}
	return nil, false
}

func readLimited(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("body over %d bytes", max)
	}
	return b, nil
}

// copyHeaders copies end-to-end headers, leaving out skip (the principal
// header, which is for the proxy only).
func copyHeaders(dst, src http.Header, skip string) {
	for k, vs := range src {
		if isHop(k) || (skip != "" && strings.EqualFold(k, skip)) {
			continue
		}
		dst[k] = append([]string(nil), vs...)
	}
}

func isHop(k string) bool {
	for _, h := range hopHeaders {
		if strings.EqualFold(k, h) {
			return true
		}
	}
	return false
}

func acceptsSSE(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		if strings.Contains(v, "text/event-stream") {
			return true
		}
	}
	return false
}

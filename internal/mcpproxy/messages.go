package mcpproxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
)

// MCP method names the proxy looks at.
const (
	methodToolsCall     = "tools/call"
	methodToolsList     = "tools/list"
	methodCancelled     = "notifications/cancelled"
	methodProgress      = "notifications/progress"
	metaKeyScan         = "agentpdp/scan"
	metaKeyDecision     = "agentpdp/decision"
	codeUpstreamFailure = jsonrpc.CodeInternalError
)

// callParams is what the proxy reads of a tools/call request.
type callParams struct {
	Name          string
	Arguments     json.RawMessage
	ProgressToken any
}

// parseCallParams reads tools/call params with exact key matching, the way
// MCP servers read them, after refusing what a server could read
// differently from the proxy (and so run another call than the one the PDP
// decided): an object anywhere in the params with keys that repeat or
// differ only in case, or "Name"/"ARGUMENTS" for "name"/"arguments".
func parseCallParams(raw json.RawMessage) (*callParams, error) {
	if err := checkKeys(raw, true, paramsKeys); err != nil {
		return nil, fmt.Errorf("tools/call params: %w", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("tools/call params: %w", err)
	}
	p := &callParams{Arguments: m["arguments"]}
	if err := json.Unmarshal(m["name"], &p.Name); err != nil || p.Name == "" {
		return nil, fmt.Errorf("tools/call params: name must be a non-empty string")
	}
	var meta map[string]any
	if len(m["_meta"]) > 0 && json.Unmarshal(m["_meta"], &meta) == nil {
		p.ProgressToken = meta["progressToken"]
	}
	return p, nil
}

// The keys of a JSON-RPC message and of tools/call params, which must
// appear exactly so if at all.
var (
	envelopeKeys = []string{"jsonrpc", "id", "method", "params", "result", "error"}
	paramsKeys   = []string{"name", "arguments", "_meta"}
)

// checkKeys refuses JSON with an object whose keys repeat or differ only
// in case, or whose top-level keys spell one of canon in another case. It
// checks the top-level objects (a batch's elements too), and every nested
// object when deep.
func checkKeys(raw []byte, deep bool, canon []string) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return walkJSON(dec, deep, canon)
}

func walkJSON(dec *json.Decoder, deep bool, canon []string) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	switch tok {
	case json.Delim('{'):
		return walkObject(dec, deep, canon)
	case json.Delim('['):
		for dec.More() {
			if err := walkJSON(dec, deep, canon); err != nil {
				return err
			}
		}
		_, err = dec.Token()
		return err
	}
	return nil
}

func walkObject(dec *json.Decoder, deep bool, canon []string) error {
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("invalid JSON: %w", err)
		}
		key, _ := tok.(string)
		if err := checkKey(key, seen, canon); err != nil {
			return err
		}
		if deep {
			err = walkJSON(dec, deep, nil)
		} else {
			var skip json.RawMessage
			err = dec.Decode(&skip)
		}
		if err != nil {
			return err
		}
	}
	_, err := dec.Token()
	return err
}

func checkKey(key string, seen map[string]bool, canon []string) error {
	folded := strings.ToLower(strings.ToUpper(key))
	if seen[folded] {
		return fmt.Errorf("key %q appears twice (keys are compared ignoring case)", key)
	}
	seen[folded] = true
	for _, c := range canon {
		if key != c && strings.EqualFold(key, c) {
			return fmt.Errorf("key %q: write it %q", key, c)
		}
	}
	return nil
}

// argsStruct converts the call's arguments to the Struct Authorize wants.
// Absent or null arguments are an empty object; anything but an object is
// an error (the call is then refused).
func argsStruct(raw json.RawMessage) (*structpb.Struct, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return &structpb.Struct{Fields: map[string]*structpb.Value{}}, nil
	}
	s := &structpb.Struct{}
	if err := protojson.Unmarshal(raw, s); err != nil {
		return nil, fmt.Errorf("arguments must be a JSON object: %w", err)
	}
	return s, nil
}

// toolError is the result a refused call gets: a tool result the model can
// read and adapt to, not a protocol error that would break the session.
func toolError(text string, meta map[string]any) json.RawMessage {
	res := map[string]any{
		"content": []any{map[string]any{"type": "text", "text": text}},
		"isError": true,
	}
	if len(meta) > 0 {
		res["_meta"] = meta
	}
	return mustJSON(res)
}

func resultResponse(id jsonrpc.ID, result json.RawMessage) *jsonrpc.Response {
	return &jsonrpc.Response{ID: id, Result: result}
}

func errorResponse(id jsonrpc.ID, code int64, msg string) *jsonrpc.Response {
	return &jsonrpc.Response{ID: id, Error: &jsonrpc.Error{Code: code, Message: msg}}
}

// progressNotification builds notifications/progress for a client token.
func progressNotification(token any, progress float64, msg string) *jsonrpc.Request {
	params := map[string]any{"progressToken": token, "progress": progress, "message": msg}
	return &jsonrpc.Request{Method: methodProgress, Params: mustJSON(params)}
}

// cancelledID reads the request id out of notifications/cancelled.
func cancelledID(raw json.RawMessage) (jsonrpc.ID, bool) {
	var p struct {
		RequestID any `json:"requestId"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return jsonrpc.ID{}, false
	}
	id, err := jsonrpc.MakeID(p.RequestID)
	return id, err == nil && id.IsValid()
}

// encodeJSON marshals without HTML escaping, so text passes as it came.
func encodeJSON(v any) (json.RawMessage, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// mustJSON is encodeJSON for values built here from maps, strings and
// numbers, which always encode.
func mustJSON(v any) json.RawMessage {
	b, err := encodeJSON(v)
	if err != nil {
		panic(fmt.Sprintf("mcpproxy: encoding %T: %v", v, err))
	}
	return b
}

// decodeJSON decodes keeping numbers as json.Number, so a rewritten result
// carries its numbers exactly as the server wrote them.
func decodeJSON(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return dec.Decode(v)
}

package mcpproxy

import (
	"bytes"
	"encoding/json"
	"fmt"

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
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments,omitempty"`
	Meta      struct {
		ProgressToken any `json:"progressToken,omitempty"`
	} `json:"_meta"`
}

func parseCallParams(raw json.RawMessage) (*callParams, error) {
	var p callParams
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("tools/call params: %w", err)
	}
	if p.Name == "" {
		return nil, fmt.Errorf("tools/call params: name is required")
	}
	return &p, nil
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

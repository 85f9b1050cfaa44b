package mcpproxy

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
)

// Bounds of one ScanContent call, inside the server's own limits (256
// texts; the default 4 MiB gRPC message). The server scans only the head
// of a longer text and says so (truncated); the proxy sends only that head.
const (
	scanMaxTexts     = 256
	scanMaxBatch     = 3 << 20
	scanMaxTextBytes = 1 << 20
)

// scan asks the PDP to scan texts, in as many calls as the bounds need. It
// returns one scan per text, in order.
func (p *Proxy) scan(ctx context.Context, texts []string) ([]*pb.ContentScan, error) {
	out := make([]*pb.ContentScan, 0, len(texts))
	for start := 0; start < len(texts); {
		batch, size := []string{}, 0
		for start+len(batch) < len(texts) && len(batch) < scanMaxTexts {
			t := truncateUTF8(texts[start+len(batch)], scanMaxTextBytes)
			if len(batch) > 0 && size+len(t) > scanMaxBatch {
				break
			}
			batch, size = append(batch, t), size+len(t)
		}
		scans, err := p.scanBatch(ctx, batch)
		if err != nil {
			return nil, err
		}
		for i, s := range scans {
			if len(texts[start+i]) > scanMaxTextBytes {
				s.Truncated = true
			}
		}
		out = append(out, scans...)
		start += len(batch)
	}
	return out, nil
}

func (p *Proxy) scanBatch(ctx context.Context, texts []string) ([]*pb.ContentScan, error) {
	ctx, cancel := p.pdpCtx(ctx)
	defer cancel()
	resp, err := p.pdp.ScanContent(ctx, &pb.ScanContentRequest{Texts: texts})
	if err != nil {
		return nil, fmt.Errorf("scan content: %w", err)
	}
	if len(resp.GetResults()) != len(texts) {
		return nil, fmt.Errorf("scan content: %d results for %d texts", len(resp.GetResults()), len(texts))
	}
	return resp.GetResults(), nil
}

// unscannedNote replaces the tail of a text longer than the scanner reads,
// in redact mode: what was not scanned is not passed on.
const unscannedNote = "[agentpdp: the rest of this text was not scanned and is withheld]"

// redactAll masks the PII each scan found in its text and returns how
// many spans it masked.
func redactAll(texts []textRef, scans []*pb.ContentScan) int {
	n := 0
	for i, t := range texts {
		s := t.get()
		if scans[i].GetTruncated() && len(s) > scanMaxTextBytes {
			s = truncateUTF8(s, scanMaxTextBytes) + unscannedNote
		}
		masked, k := redact(s, scans[i].GetPii())
		t.set(masked)
		n += k
	}
	return n
}

// redact replaces each PII span (byte offsets, end exclusive) with
// [REDACTED:kind]; overlapping spans merge. Spans outside s are ignored.
func redact(s string, pii []*pb.PIIMatch) (string, int) {
	spans := make([]*pb.PIIMatch, 0, len(pii))
	for _, m := range pii {
		if m.GetStart() >= 0 && m.GetStart() < m.GetEnd() && int(m.GetEnd()) <= len(s) {
			spans = append(spans, m)
		}
	}
	if len(spans) == 0 {
		return s, 0
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].GetStart() < spans[j].GetStart() })
	var b strings.Builder
	pos, n := 0, 0
	for _, m := range spans {
		start, end := int(m.GetStart()), int(m.GetEnd())
		if start < pos { // overlaps the previous span: extend it
			pos = max(pos, end)
			continue
		}
		b.WriteString(s[pos:start])
		b.WriteString("[REDACTED:" + m.GetKind() + "]")
		pos, n = end, n+1
	}
	b.WriteString(s[pos:])
	return b.String(), n
}

// toStruct converts outcome details; a value Struct cannot hold is dropped
// rather than failing the report.
func toStruct(m map[string]any) *structpb.Struct {
	if len(m) == 0 {
		return nil
	}
	s, err := structpb.NewStruct(m)
	if err != nil {
		return nil
	}
	return s
}

package main

import (
	"fmt"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
	"github.com/agentpdp/agentpdp/internal/content"
)

// contentScanner adapts the content detectors to what the CEL functions
// (eval.ContentScanner) and the decision layer (decision.Scanner) need.
type contentScanner struct{ d *content.Detector }

func newContentScanner() (*contentScanner, error) {
	d, err := content.New()
	if err != nil {
		return nil, fmt.Errorf("content detectors: %w", err)
	}
	return &contentScanner{d: d}, nil
}

func (c *contentScanner) InjectionScore(text string) float64 {
	score, _, _ := c.d.Injection(text)
	return score
}

func (c *contentScanner) PIIKinds(text string) []string {
	kinds := content.PIIKinds(c.d.PII(text))
	if kinds == nil {
		return []string{}
	}
	return kinds
}

func (c *contentScanner) ScanText(text string) *pb.ContentScan {
	return scanPB(c.d.Scan(text))
}

func (c *contentScanner) Mask(text string) string {
	return content.Mask(text, c.d.PII(text))
}

func (c *contentScanner) MaskFound(text string, pii []*pb.PIIMatch) string {
	ms := make([]content.PIIMatch, len(pii))
	for i, m := range pii {
		ms[i] = content.PIIMatch{Kind: m.Kind, Start: int(m.Start), End: int(m.End)}
	}
	return content.Mask(text, ms)
}

func scanPB(s content.Scan) *pb.ContentScan {
	out := &pb.ContentScan{InjectionScore: s.InjectionScore, Flagged: s.Flagged, Signals: s.Signals,
		Truncated: s.Truncated}
	for _, m := range s.PII {
		out.Pii = append(out.Pii, &pb.PIIMatch{Kind: m.Kind, Start: int32(m.Start), End: int32(m.End)})
	}
	return out
}

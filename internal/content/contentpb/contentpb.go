// Package contentpb puts the content detectors behind what the CEL
// functions (eval.ContentScanner), the decision (decision.Scanner) and the
// ScanContent RPC need, in the API's messages.
package contentpb

import (
	"fmt"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
	"github.com/agentpdp/agentpdp/internal/content"
)

// Scanner is the content detectors, loaded once; safe for concurrent use.
type Scanner struct{ d *content.Detector }

// New loads the detectors.
func New() (*Scanner, error) {
	d, err := content.New()
	if err != nil {
		return nil, fmt.Errorf("content detectors: %w", err)
	}
	return &Scanner{d: d}, nil
}

func (c *Scanner) InjectionScore(text string) float64 {
	score, _, _ := c.d.Injection(text)
	return score
}

func (c *Scanner) PIIKinds(text string) []string {
	kinds := content.PIIKinds(c.d.PII(text))
	if kinds == nil {
		return []string{}
	}
	return kinds
}

func (c *Scanner) ScanText(text string) *pb.ContentScan {
	return scanPB(c.d.Scan(text))
}

func (c *Scanner) Mask(text string) string {
	return c.d.MaskPII(text)
}

func (c *Scanner) MaskFound(text string, pii []*pb.PIIMatch) string {
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

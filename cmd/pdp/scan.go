package main

import (
	"bufio"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/agentpdp/agentpdp/internal/content"
)

// scanLine is one input of `pdp scan`; other fields (label, source...) are
// ignored, so a labelled corpus can be fed as it is.
type scanLine struct {
	Text *string `json:"text"`
}

type piiOut struct {
	Kind  string `json:"kind"`
	Start int    `json:"start"`
	End   int    `json:"end"`
}

type scanOut struct {
	InjectionScore float64  `json:"injection_score"`
	Flagged        bool     `json:"flagged"`
	Signals        []string `json:"signals"`
	PII            []piiOut `json:"pii"`
	Truncated      bool     `json:"truncated,omitempty"`
	Error          string   `json:"error,omitempty"`
}

func newScanCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "scan",
		Short: `Read JSON lines {"text": ...} on stdin; write one line of content findings per input, in order`,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := content.New()
			if err != nil {
				return err
			}
			in := bufio.NewScanner(cmd.InOrStdin())
			// A line holds at most the 1 MiB scanned plus JSON escaping.
			in.Buffer(make([]byte, 64<<10), 8*content.MaxScanBytes)
			out := bufio.NewWriter(cmd.OutOrStdout())
			defer out.Flush()
			enc := json.NewEncoder(out)
			for n := 1; in.Scan(); n++ {
				if err := enc.Encode(scanOne(d, in.Bytes(), n)); err != nil {
					return err
				}
			}
			return in.Err()
		},
	}
}

// scanOne never fails the stream: a bad line gets an error line, so the
// output stays aligned with the input.
func scanOne(d *content.Detector, line []byte, n int) scanOut {
	var l scanLine
	if err := json.Unmarshal(line, &l); err != nil || l.Text == nil {
		return scanOut{Signals: []string{}, PII: []piiOut{}, Error: fmt.Sprintf("line %d: want a JSON object with a \"text\" string", n)}
	}
	s := d.Scan(*l.Text)
	out := scanOut{InjectionScore: s.InjectionScore, Flagged: s.Flagged, Signals: s.Signals, PII: []piiOut{},
		Truncated: s.Truncated}
	if out.Signals == nil {
		out.Signals = []string{}
	}
	for _, m := range s.PII {
		out.PII = append(out.PII, piiOut{Kind: m.Kind, Start: m.Start, End: m.End})
	}
	return out
}

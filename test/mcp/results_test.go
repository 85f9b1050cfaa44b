package mcpe2e

import (
	"strings"
	"testing"
)

// TestResultActions checks --result-action against the real pdp. While
// pdp serve has no content scanner (ScanContent answers FailedPrecondition)
// it checks the fail-closed side instead: flag passes the result with the
// error noted, redact and block withhold it.
func TestResultActions(t *testing.T) {
	t.Parallel()
	if h.scanErr != nil && !h.scannerMissing() {
		t.Fatalf("ScanContent: %v", h.scanErr)
	}
	for _, action := range []string{"flag", "redact", "block"} {
		t.Run(action, func(t *testing.T) {
			p := startStdio(t, "alice-"+action, []string{"--result-action", action})
			if h.scannerMissing() {
				withoutScanner(t, p, action)
				return
			}
			withScanner(t, p, action)
		})
	}
}

func withoutScanner(t *testing.T, p *proxied, action string) {
	res := call(t, p, "read", map[string]any{"path": "contact.txt"})
	if action == "flag" {
		note, _ := res.Meta["agentpdp/scan"].(map[string]any)
		if res.IsError || text(res) != files["contact.txt"] || !strings.Contains(asString(note["error"]), "no content scanner") {
			t.Fatalf("flag without a scanner: %q isError=%v meta=%v", text(res), res.IsError, res.Meta)
		}
		return
	}
	if !res.IsError || !strings.Contains(text(res), "scan_unavailable") {
		t.Fatalf("%s without a scanner: %q isError=%v, want the result withheld", action, text(res), res.IsError)
	}
}

func withScanner(t *testing.T, p *proxied, action string) {
	switch action {
	case "flag":
		res := call(t, p, "read", map[string]any{"path": "evil.txt"})
		note, _ := res.Meta["agentpdp/scan"].(map[string]any)
		if res.IsError || text(res) != files["evil.txt"] || note["flagged"] != true {
			t.Fatalf("flag: %q isError=%v meta=%v, want the text kept and flagged", text(res), res.IsError, res.Meta)
		}
		// The injected text is now among the session's recent results, which
		// every later Authorize carries as inputs: the policy's
		// injected-input rule sees it.
		res = call(t, p, "read", map[string]any{"path": "notes.txt"})
		if !res.IsError || !strings.Contains(text(res), "injected-input") {
			t.Fatalf("a call after an injected result: %q isError=%v, want injected-input", text(res), res.IsError)
		}
	case "redact":
		res := call(t, p, "read", map[string]any{"path": "contact.txt"})
		if res.IsError || strings.Contains(text(res), "jane.doe@example.com") || !strings.Contains(text(res), "[REDACTED:") {
			t.Fatalf("redact: %q isError=%v, want the email masked", text(res), res.IsError)
		}
	case "block":
		res := call(t, p, "read", map[string]any{"path": "evil.txt"})
		if !res.IsError || !strings.Contains(text(res), "prompt_injection") {
			t.Fatalf("block: %q isError=%v, want the injection blocked", text(res), res.IsError)
		}
		if res := call(t, p, "read", map[string]any{"path": "notes.txt"}); res.IsError {
			t.Fatalf("block on a clean file: %q", text(res))
		}
	}
}

func asString(v any) string {
	s, _ := v.(string)
	return s
}

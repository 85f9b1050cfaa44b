package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
)

// TestMetricsEndpoint scrapes a real pdp serve after two decisions: the
// series the dashboard and alert rules in deploy/observability read are
// there, labelled as those files expect.
func TestMetricsEndpoint(t *testing.T) {
	addr := freeAddr(t)
	p := startPDP(t, "metrics", "", writePolicies(t), "--metrics-listen", addr)
	expect(t, "read", p.authorize(t, call{agent: "e2e-metrics", principal: "m", tool: "doc.read"}), pb.Decision_DECISION_ALLOW, "reads")
	expect(t, "delete", p.authorize(t, call{agent: "e2e-metrics", principal: "m", tool: "doc.delete"}), pb.Decision_DECISION_DENY, "never-delete")
	// The server counts a call once its status is sent, which can be just
	// after the client has its answer: scrape until the counts arrive.
	wants := []string{
		`agentpdp_decisions_total{agent="e2e-*",decision="ALLOW",mode="ENFORCE",policy_decision="ALLOW",tool="doc.read"} 1`,
		`agentpdp_decisions_total{agent="e2e-*",decision="DENY",mode="ENFORCE",policy_decision="DENY",tool="doc.delete"} 1`,
		`agentpdp_decision_duration_seconds_count{decision="ALLOW"} 1`,
		`rpc_server_call_duration_seconds_count{rpc_method="agentpdp.v1.AuthorizationService/Authorize",rpc_response_status_code="OK",rpc_system_name="grpc"} 2`,
		`agentpdp_policy_info{version="`,
	}
	eventually(t, 5*time.Second, "metrics served", func() error {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		body := string(b)
		for _, want := range wants {
			if !strings.Contains(body, want) {
				return fmt.Errorf("/metrics lacks %s; /metrics:\n%s", want, body)
			}
		}
		return nil
	})
}

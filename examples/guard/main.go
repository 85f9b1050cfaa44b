// Command guard shows the Go client end to end: it guards a toy sendEmail
// tool with the example email-agent policy and prints what the PDP let
// through. It starts nothing itself; run a PDP first:
//
//	go run ./cmd/pdp serve &            # the embedded example policies
//	go run ./examples/guard -addr 127.0.0.1:8181
//
// The policy sends mail only 09:00-17:00 New York time, Monday to Friday;
// outside those hours every send is denied with outside-business-hours.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	pdpclient "github.com/agentpdp/agentpdp/clients/go"
	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
)

// Email is the toy tool's arguments; the json names are what the policy
// sees as args.to, args.cc, args.attachments...
type Email struct {
	To          []string `json:"to"`
	Cc          []string `json:"cc,omitempty"`
	Subject     string   `json:"subject"`
	Body        string   `json:"body"`
	Attachments []string `json:"attachments,omitempty"`
}

// sendEmail is the tool being guarded: it only prints.
func sendEmail(_ context.Context, e Email) (string, error) {
	fmt.Printf("    (tool) sending %q to %s\n", e.Subject, strings.Join(e.To, ", "))
	return "message-id-42", nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8181", "the PDP's agent listener")
	principal := flag.String("principal", "user-1", "the user the agent acts for")
	wait := flag.Duration("wait-approval", 0, "how long a call needing approval waits for a human (0: do not wait)")
	timeout := flag.Duration("timeout", pdpclient.DefaultTimeout, "per-call timeout")
	flag.Parse()

	client, err := pdpclient.New(*addr, pdpclient.WithTimeout(*timeout))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer client.Close()

	send := pdpclient.Guard(client, pdpclient.ToolSpec{
		Agent: "email-agent", Tool: "gmail.send", Framework: "go", WaitApproval: *wait,
	}, sendEmail)

	ctx := pdpclient.WithPrincipal(context.Background(), &pb.Principal{Id: *principal})
	ctx = pdpclient.WithSession(ctx, fmt.Sprintf("guard-example-%d", time.Now().Unix()))

	calls := []struct {
		what  string
		email Email
	}{
		{"one customer", Email{To: []string{"alice@customer.com"}, Subject: "Re: your order", Body: "Shipped today."}},
		{"two recipients", Email{To: []string{"alice@customer.com", "bob@customer.com"}, Subject: "Re", Body: "Hi both"}},
		{"a competitor", Email{To: []string{"sales@competitor.com"}, Subject: "Our prices", Body: "..."}},
		{"an attachment", Email{To: []string{"alice@customer.com"}, Subject: "Invoice", Body: "Attached.",
			Attachments: []string{"invoice.pdf"}}},
	}
	allowed := 0
	for _, c := range calls {
		fmt.Printf("gmail.send to %s:\n", c.what)
		id, err := send(ctx, c.email)
		var denied *pdpclient.DeniedError
		var approval *pdpclient.ApprovalRequiredError
		switch {
		case err == nil:
			allowed++
			fmt.Printf("  ALLOWED, sent %s\n", id)
		case errors.As(err, &denied) && denied.Unavailable():
			fmt.Printf("  DENIED: the PDP is unreachable, failing closed (%s)\n", denied.Reasons[0].GetMessage())
		case errors.As(err, &denied):
			fmt.Printf("  DENIED by %s\n", describe(denied.Reasons))
		case errors.As(err, &approval):
			fmt.Printf("  NEEDS APPROVAL %s by %s\n", approval.ApprovalID, describe(approval.Reasons))
			if approval.TimedOut {
				fmt.Println("  nobody decided in time")
			} else if *wait == 0 {
				fmt.Println("  rerun with -wait-approval 2m and approve from another terminal:")
				fmt.Println("    pdp approvals list --addr ADMIN_ADDR; pdp approvals approve APPROVAL_ID --addr ADMIN_ADDR")
			}
		default:
			fmt.Printf("  ERROR: %v\n", err)
		}
	}
	fmt.Printf("%d of %d calls allowed\n", allowed, len(calls))
}

func describe(rs []*pb.Reason) string {
	var parts []string
	for _, r := range rs {
		if r.GetEffect() == pb.Effect_EFFECT_ALLOW {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s (%s)", r.GetRuleId(), r.GetMessage()))
	}
	if len(parts) == 0 {
		return "the policy"
	}
	return strings.Join(parts, ", ")
}

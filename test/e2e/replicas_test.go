package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
	"github.com/agentpdp/agentpdp/internal/testutil/redisserver"
)

const (
	allow   = pb.Decision_DECISION_ALLOW
	deny    = pb.Decision_DECISION_DENY
	approve = pb.Decision_DECISION_REQUIRE_APPROVAL
)

// cluster is two `pdp serve` replicas sharing one redis-server.
type cluster struct {
	redis *redisserver.Server
	a, b  *pdp
}

func newCluster(t *testing.T, extra ...string) *cluster {
	t.Helper()
	srv := redisserver.Start(t)
	dir := writePolicies(t)
	return &cluster{redis: srv,
		a: startPDP(t, "replica-a", srv.URL(), dir, extra...),
		b: startPDP(t, "replica-b", srv.URL(), dir, extra...)}
}

func rpcCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestReplicas runs the shared-state scenarios against one pair of
// replicas; each subtest has its own agent or principal, so they run in
// parallel. The Redis timeout is raised from its 50 ms default so that a
// loaded test machine does not turn a slow round trip into a DENY.
func TestReplicas(t *testing.T) {
	c := newCluster(t, "--redis-timeout", "500ms")

	t.Run("RateLimitSharedExactly", func(t *testing.T) {
		t.Parallel()
		const calls = 100
		var allowed, limited atomic.Int64
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		start := make(chan struct{})
		for i := 0; i < calls; i++ {
			p := c.a
			if i%2 == 1 {
				p = c.b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				sem <- struct{}{}
				defer func() { <-sem }()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				r, err := p.agent.Authorize(ctx, call{agent: "e2e-limits", principal: "rl-user", tool: "doc.read"}.request(t))
				switch {
				case err != nil:
					t.Errorf("%s: Authorize: %v", p.name, err)
				case r.Decision == allow:
					allowed.Add(1)
				case r.Decision == deny && reason(r, "rate_limited") != nil:
					limited.Add(1)
				default:
					t.Errorf("%s: unexpected answer %s", p.name, describe(r))
				}
			}()
		}
		close(start)
		wg.Wait()
		if allowed.Load() != readLimit || limited.Load() != calls-readLimit {
			t.Fatalf("two replicas admitted %d and limited %d of %d calls; want exactly %d admitted",
				allowed.Load(), limited.Load(), calls, readLimit)
		}
		// Either replica now refuses the next call.
		for _, p := range []*pdp{c.a, c.b} {
			expect(t, p.name+" after the limit", p.authorize(t, call{agent: "e2e-limits", principal: "rl-user", tool: "doc.read"}),
				deny, "rate_limited")
		}
	})

	t.Run("ApproveAndRetry", func(t *testing.T) {
		t.Parallel()
		ctx := rpcCtx(t)
		send := call{agent: "e2e-approve", principal: "u1", tool: "mail.send",
			args: map[string]any{"to": "bob@example.com", "body": "your refund"}}
		r := c.a.authorize(t, send)
		expect(t, "first call", r, approve, "send-needs-approval")
		if r.ApprovalId == "" || r.ApprovalExpiresAt == nil {
			t.Fatalf("REQUIRE_APPROVAL without approval id or expiry: %v", r)
		}
		id := r.ApprovalId
		send.approvalID = id

		// Retrying before anyone decided is refused.
		x := expect(t, "retry while pending", c.b.authorize(t, send), deny, "approval_invalid")
		if !strings.Contains(x.Message, "pending") {
			t.Errorf("pending retry message %q", x.Message)
		}
		// The other replica's operators see it pending.
		list, err := c.b.approvals.ListPending(ctx, &pb.ListPendingRequest{AgentId: "e2e-approve"})
		if err != nil {
			t.Fatalf("ListPending on replica B: %v", err)
		}
		if len(list.Approvals) != 1 || list.Approvals[0].Id != id {
			t.Fatalf("ListPending on replica B = %v, want %s", list.Approvals, id)
		}

		a, err := c.b.approvals.Decide(ctx, &pb.DecideRequest{ApprovalId: id, Approve: true, Approver: "alice", Note: "refund ok"})
		if err != nil {
			t.Fatalf("Decide on replica B: %v", err)
		}
		if a.Status != pb.ApprovalStatus_APPROVAL_STATUS_APPROVED || a.Approver != "alice" {
			t.Fatalf("Decide = %v", a)
		}
		r = c.a.authorize(t, send)
		expect(t, "retry after approval (replica A)", r, allow, "approved")
		if r.ApprovalId != id {
			t.Errorf("ALLOW carries approval id %q, want %q", r.ApprovalId, id)
		}
		x = expect(t, "second retry (replica B)", c.b.authorize(t, send), deny, "approval_invalid")
		if !strings.Contains(x.Message, "already used") {
			t.Errorf("second retry message %q, want it to say already used", x.Message)
		}
		got, err := c.a.approvals.Get(ctx, &pb.GetApprovalRequest{ApprovalId: id})
		if err != nil || got.Status != pb.ApprovalStatus_APPROVAL_STATUS_USED {
			t.Fatalf("Get on replica A = %v, %v; want USED", got, err)
		}
	})

	t.Run("Reject", func(t *testing.T) {
		t.Parallel()
		ctx := rpcCtx(t)
		send := call{agent: "e2e-reject", principal: "u1", tool: "mail.send", args: map[string]any{"to": "x@example.com"}}
		r := c.b.authorize(t, send)
		expect(t, "first call", r, approve, "")
		send.approvalID = r.ApprovalId
		if _, err := c.a.approvals.Decide(ctx, &pb.DecideRequest{ApprovalId: r.ApprovalId, Approve: false, Approver: "bob"}); err != nil {
			t.Fatalf("reject on replica A: %v", err)
		}
		x := expect(t, "retry after rejection", c.b.authorize(t, send), deny, "approval_invalid")
		if !strings.Contains(x.Message, "rejected") {
			t.Errorf("message %q", x.Message)
		}
		_, err := c.b.approvals.Decide(ctx, &pb.DecideRequest{ApprovalId: r.ApprovalId, Approve: true, Approver: "carol"})
		if status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("approving a rejected approval: %v, want FAILED_PRECONDITION", err)
		}
	})

	t.Run("ConcurrentDecideOnce", func(t *testing.T) {
		t.Parallel()
		r := c.a.authorize(t, call{agent: "e2e-race", principal: "u1", tool: "mail.send", args: map[string]any{"to": "x@example.com"}})
		expect(t, "first call", r, approve, "")
		const n = 20
		var ok, refused atomic.Int64
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			p := []*pdp{c.a, c.b}[i%2]
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_, err := p.approvals.Decide(ctx, &pb.DecideRequest{ApprovalId: r.ApprovalId, Approve: i%3 != 0,
					Approver: "op-" + strconv.Itoa(i)})
				switch status.Code(err) {
				case codes.OK:
					ok.Add(1)
				case codes.FailedPrecondition:
					refused.Add(1)
				default:
					t.Errorf("Decide on %s: %v", p.name, err)
				}
			}()
		}
		wg.Wait()
		if ok.Load() != 1 || refused.Load() != n-1 {
			t.Fatalf("%d decisions succeeded, %d refused; want exactly one", ok.Load(), refused.Load())
		}
	})

	t.Run("TamperedArgs", func(t *testing.T) {
		t.Parallel()
		ctx := rpcCtx(t)
		send := call{agent: "e2e-tamper", principal: "u1", tool: "mail.send", args: map[string]any{"to": "bob@example.com"}}
		r := c.a.authorize(t, send)
		expect(t, "first call", r, approve, "")
		if _, err := c.b.approvals.Decide(ctx, &pb.DecideRequest{ApprovalId: r.ApprovalId, Approve: true, Approver: "alice"}); err != nil {
			t.Fatal(err)
		}
		tampered := send
		tampered.approvalID = r.ApprovalId
		tampered.args = map[string]any{"to": "attacker@evil.example"}
		x := expect(t, "retry with other args", c.a.authorize(t, tampered), deny, "approval_invalid")
		if !strings.Contains(x.Message, "differs") {
			t.Errorf("message %q", x.Message)
		}
		// The mismatch spent nothing: the call as approved still goes through.
		send.approvalID = r.ApprovalId
		expect(t, "retry as approved", c.b.authorize(t, send), allow, "approved")
	})

	t.Run("Expiry", func(t *testing.T) {
		t.Parallel()
		ctx := rpcCtx(t)
		first := call{agent: "expiring-agent", principal: "u1", tool: "mail.send", args: map[string]any{"n": 1}}
		second := call{agent: "expiring-agent", principal: "u1", tool: "mail.send", args: map[string]any{"n": 2}}
		r1, r2 := c.a.authorize(t, first), c.b.authorize(t, second)
		expect(t, "first", r1, approve, "")
		expect(t, "second", r2, approve, "")
		if ttl := r1.ApprovalExpiresAt.AsTime().Sub(time.Now()); ttl > time.Second {
			t.Fatalf("approval expires in %s, want the policy's 1s", ttl)
		}
		if _, err := c.b.approvals.Decide(ctx, &pb.DecideRequest{ApprovalId: r1.ApprovalId, Approve: true, Approver: "alice"}); err != nil {
			t.Fatalf("approving in time: %v", err)
		}
		time.Sleep(time.Until(r2.ApprovalExpiresAt.AsTime().Add(150 * time.Millisecond)))
		_, err := c.b.approvals.Decide(ctx, &pb.DecideRequest{ApprovalId: r2.ApprovalId, Approve: true, Approver: "alice"})
		if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "expired") {
			t.Fatalf("approving an expired approval: %v, want FAILED_PRECONDITION expired", err)
		}
		first.approvalID = r1.ApprovalId
		x := expect(t, "retry after expiry", c.a.authorize(t, first), deny, "approval_invalid")
		if !strings.Contains(x.Message, "expired") {
			t.Errorf("message %q", x.Message)
		}
	})

	t.Run("SuspendOnOneReplicaHoldsOnTheOther", func(t *testing.T) {
		t.Parallel()
		ctx := rpcCtx(t)
		read := func(principal string) call { return call{agent: "e2e-susp", principal: principal, tool: "doc.read"} }
		expect(t, "before", c.b.authorize(t, read("p1")), allow, "reads")
		if _, err := c.a.admin.SuspendAgent(ctx, &pb.SuspendAgentRequest{AgentId: "e2e-susp", Reason: "incident 42", By: "oncall"}); err != nil {
			t.Fatalf("SuspendAgent on replica A: %v", err)
		}
		expect(t, "replica A right after suspending", c.a.authorize(t, read("p2")), deny, "suspended")
		took := eventually(t, time.Second, "replica B denies suspended", func() error {
			r := c.b.authorize(t, read("p3"))
			if r.Decision != deny || reason(r, "suspended") == nil {
				return fmt.Errorf("got %s", describe(r))
			}
			return nil
		})
		t.Logf("suspension held on replica B after %s", took)
		list, err := c.b.admin.ListSuspensions(ctx, &pb.ListSuspensionsRequest{AgentId: "e2e-susp"})
		if err != nil || len(list.Suspensions) != 1 || list.Suspensions[0].Reason != "incident 42" {
			t.Fatalf("ListSuspensions on replica B = %v, %v", list, err)
		}

		res, err := c.b.admin.ResumeAgent(ctx, &pb.ResumeAgentRequest{AgentId: "e2e-susp", By: "oncall"})
		if err != nil || !res.WasSuspended {
			t.Fatalf("ResumeAgent on replica B = %v, %v", res, err)
		}
		eventually(t, time.Second, "replica A allows again", func() error {
			if r := c.a.authorize(t, read("p4")); r.Decision != allow {
				return fmt.Errorf("got %s", describe(r))
			}
			return nil
		})

		// One principal only.
		if _, err := c.b.admin.SuspendAgent(ctx, &pb.SuspendAgentRequest{AgentId: "e2e-susp", PrincipalId: "p5", Reason: "abuse"}); err != nil {
			t.Fatal(err)
		}
		eventually(t, time.Second, "replica A denies the suspended principal", func() error {
			if r := c.a.authorize(t, read("p5")); r.Decision != deny || reason(r, "suspended") == nil {
				return fmt.Errorf("got %s", describe(r))
			}
			return nil
		})
		expect(t, "another principal", c.a.authorize(t, read("p6")), allow, "")
	})

	t.Run("AutoSuspension", func(t *testing.T) {
		t.Parallel()
		ctx := rpcCtx(t)
		del := call{agent: "flaky-agent", principal: "u1", tool: "doc.delete"}
		read := call{agent: "flaky-agent", principal: "u1", tool: "doc.read"}
		expect(t, "a read before", c.a.authorize(t, read), allow, "")
		for i, p := range []*pdp{c.a, c.b, c.a} {
			expect(t, fmt.Sprintf("denial %d on %s", i+1, p.name), p.authorize(t, del), deny, "never-delete")
		}
		for _, p := range []*pdp{c.a, c.b} {
			eventually(t, time.Second, p.name+" denies suspended after 3 denials", func() error {
				r := p.authorize(t, read)
				x := reason(r, "suspended")
				if r.Decision != deny || x == nil {
					return fmt.Errorf("got %s", describe(r))
				}
				if !strings.Contains(x.Message, "policy:flaky") {
					return fmt.Errorf("suspension message %q does not name the policy", x.Message)
				}
				return nil
			})
		}
		list, err := c.b.admin.ListSuspensions(ctx, &pb.ListSuspensionsRequest{AgentId: "flaky-agent"})
		if err != nil || len(list.Suspensions) != 1 || list.Suspensions[0].By != "policy:flaky" {
			t.Fatalf("ListSuspensions = %v, %v", list, err)
		}
	})

	t.Run("AgentPortRefusesAdminAPIs", func(t *testing.T) {
		t.Parallel()
		ctx := rpcCtx(t)
		_, err := pb.NewApprovalServiceClient(c.a.agentConn).Decide(ctx,
			&pb.DecideRequest{ApprovalId: "x", Approve: true, Approver: "mallory"})
		if status.Code(err) != codes.Unimplemented {
			t.Errorf("ApprovalService.Decide on the agent port: %v, want UNIMPLEMENTED", err)
		}
		_, err = pb.NewApprovalServiceClient(c.a.agentConn).ListPending(ctx, &pb.ListPendingRequest{})
		if status.Code(err) != codes.Unimplemented {
			t.Errorf("ApprovalService.ListPending on the agent port: %v, want UNIMPLEMENTED", err)
		}
		_, err = pb.NewAdminServiceClient(c.b.agentConn).SuspendAgent(ctx, &pb.SuspendAgentRequest{AgentId: "e2e-x"})
		if status.Code(err) != codes.Unimplemented {
			t.Errorf("AdminService.SuspendAgent on the agent port: %v, want UNIMPLEMENTED", err)
		}
		_, err = pb.NewAdminServiceClient(c.b.agentConn).ResumeAgent(ctx, &pb.ResumeAgentRequest{AgentId: "e2e-x"})
		if status.Code(err) != codes.Unimplemented {
			t.Errorf("AdminService.ResumeAgent on the agent port: %v, want UNIMPLEMENTED", err)
		}
	})

	t.Run("WaitApproval", func(t *testing.T) {
		t.Parallel()
		ctx := rpcCtx(t)
		r := c.a.authorize(t, call{agent: "e2e-wait", principal: "u1", tool: "mail.send", args: map[string]any{"n": 1}})
		expect(t, "first call", r, approve, "")
		type result struct {
			resp *pb.WaitApprovalResponse
			err  error
			at   time.Time
		}
		done := make(chan result, 1)
		go func() {
			resp, err := c.b.agent.WaitApproval(ctx, &pb.WaitApprovalRequest{ApprovalId: r.ApprovalId,
				Timeout: durationpb.New(20 * time.Second)})
			done <- result{resp, err, time.Now()}
		}()
		select {
		case res := <-done:
			t.Fatalf("WaitApproval returned before any decision: %v, %v", res.resp, res.err)
		case <-time.After(300 * time.Millisecond):
		}
		decided := time.Now()
		if _, err := c.a.approvals.Decide(ctx, &pb.DecideRequest{ApprovalId: r.ApprovalId, Approve: true, Approver: "alice"}); err != nil {
			t.Fatal(err)
		}
		select {
		case res := <-done:
			if res.err != nil {
				t.Fatalf("WaitApproval: %v", res.err)
			}
			if res.resp.TimedOut || res.resp.Approval.GetStatus() != pb.ApprovalStatus_APPROVAL_STATUS_APPROVED {
				t.Fatalf("WaitApproval = %v", res.resp)
			}
			t.Logf("WaitApproval on replica B returned %s after the decision on replica A", res.at.Sub(decided))
		case <-time.After(3 * time.Second):
			t.Fatal("WaitApproval did not return within 3s of the decision")
		}

		// Nobody decides: it times out with the approval still pending.
		r = c.b.authorize(t, call{agent: "e2e-wait", principal: "u1", tool: "mail.send", args: map[string]any{"n": 2}})
		w, err := c.a.agent.WaitApproval(ctx, &pb.WaitApprovalRequest{ApprovalId: r.ApprovalId, Timeout: durationpb.New(300 * time.Millisecond)})
		if err != nil || !w.TimedOut || w.Approval.GetStatus() != pb.ApprovalStatus_APPROVAL_STATUS_PENDING {
			t.Fatalf("WaitApproval with nobody deciding = %v, %v; want timed out, pending", w, err)
		}
	})
}

// TestRedisOutage stops Redis under load: every call is then DENY
// rate_limit_unavailable (fail closed), nothing crashes, and calls are
// allowed again once Redis is back.
func TestRedisOutage(t *testing.T) {
	c := newCluster(t)
	var n atomic.Int64
	read := func() call {
		// A principal per call: every call has its own counter, so each is
		// allowed whenever the limiter answers.
		return call{agent: "e2e-outage", principal: "o-" + strconv.FormatInt(n.Add(1), 10), tool: "doc.read"}
	}
	for _, p := range []*pdp{c.a, c.b} {
		expect(t, p.name+" with Redis up", p.authorize(t, read()), allow, "")
	}

	type answer struct {
		start time.Time
		who   string
		resp  *pb.AuthorizeResponse
		err   error
	}
	var mu sync.Mutex
	var answers []answer
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, p := range []*pdp{c.a, c.b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				r, err := p.agent.Authorize(ctx, read().request(t))
				cancel()
				mu.Lock()
				answers = append(answers, answer{start, p.name, r, err})
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	c.redis.Stop()
	stopped := time.Now()
	time.Sleep(700 * time.Millisecond)

	for _, p := range []*pdp{c.a, c.b} {
		if !p.running() {
			t.Fatalf("%s exited when Redis went away", p.name)
		}
		if !p.serving() {
			t.Fatalf("%s is not SERVING with Redis down", p.name)
		}
	}
	restarted := time.Now() // calls from here on may see Redis back
	c.redis.Restart()
	for _, p := range []*pdp{c.a, c.b} {
		took := eventually(t, 10*time.Second, p.name+" allows again after Redis restarted", func() error {
			if r := p.authorize(t, read()); r.Decision != allow {
				return fmt.Errorf("got %s", describe(r))
			}
			return nil
		})
		t.Logf("%s allowed again %s after the restart", p.name, took)
	}
	close(stop)
	wg.Wait()

	var before, during int
	for _, a := range answers {
		if a.err != nil {
			t.Fatalf("%s: Authorize failed at the transport: %v", a.who, a.err)
		}
		switch {
		case a.start.Before(stopped):
			before++
		case a.start.Before(restarted):
			during++
			if a.resp.Decision != deny || reason(a.resp, "rate_limit_unavailable") == nil {
				t.Fatalf("%s with Redis down: got %s, want DENY rate_limit_unavailable", a.who, describe(a.resp))
			}
		}
	}
	if during < 10 {
		t.Fatalf("only %d calls while Redis was down", during)
	}
	t.Logf("%d calls before the outage, %d during it (all DENY rate_limit_unavailable)", before, during)
	for _, p := range []*pdp{c.a, c.b} {
		if !p.running() {
			t.Fatalf("%s exited", p.name)
		}
	}
}

// TestBadRedisURL: pdp serve refuses to start on a Redis it cannot use and
// says which.
func TestBadRedisURL(t *testing.T) {
	dir := writePolicies(t)
	closed := "redis://" + freeAddr(t) + "/0"
	for _, tc := range []struct{ url, want string }{
		{closed, "connection refused"},
		{"http://127.0.0.1:6379", "invalid URL"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, pdpBin, "serve", "--listen", freeAddr(t), "--admin-listen", freeAddr(t),
				"--redis", tc.url, "--audit-dir", t.TempDir(), "--policies", dir)
			cmd.Env = cleanEnv()
			setProcAttr(cmd)
			start := time.Now()
			out, err := cmd.CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("pdp serve kept running with --redis %s:\n%s", tc.url, out)
			}
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() == 0 {
				t.Fatalf("pdp serve --redis %s: err %v, want a non-zero exit:\n%s", tc.url, err, out)
			}
			last := lastLine(string(out))
			if !strings.Contains(last, "redis at "+tc.url) || !strings.Contains(last, tc.want) {
				t.Fatalf("last line %q does not name the URL %s and %q", last, tc.url, tc.want)
			}
			t.Logf("exit %d after %s: %s", ee.ExitCode(), time.Since(start).Round(time.Millisecond), last)
		})
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

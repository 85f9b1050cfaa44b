package approval_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
	"github.com/agentpdp/agentpdp/internal/approval"
)

// pair is two handles on one store: for Redis two instances on two clients
// (two replicas); for memory the same instance twice.
type pair struct{ a, b approval.Store }

// storeFactory makes a fresh, empty store pair for one test.
type storeFactory func(t *testing.T) pair

func memoryPair(t *testing.T) pair {
	m := approval.NewMemory()
	t.Cleanup(func() { m.Close() })
	return pair{m, m}
}

func TestMemoryStore(t *testing.T) { runStoreSuite(t, memoryPair) }

// base is a wall-clock time (subscribers read with time.Now) on a whole
// millisecond (the Redis store keeps milliseconds).
func base() time.Time { return time.Now().Truncate(time.Millisecond) }

func newApproval(agent, principal, tool string, created time.Time, ttl time.Duration) *pb.Approval {
	args, _ := structpb.NewStruct(map[string]any{"to": []any{"a@example.com"}, "n": 1})
	return &pb.Approval{
		Id: uuid.Must(uuid.NewV7()).String(), Status: pb.ApprovalStatus_APPROVAL_STATUS_PENDING,
		AgentId: agent, PrincipalId: principal, Tool: tool, Args: args,
		Digest: approval.Digest(agent, principal, tool, args), Policy: "p",
		Reasons:    []*pb.Reason{{Policy: "p", RuleId: "needs-approval", Message: "check it"}},
		DecisionId: uuid.Must(uuid.NewV7()).String(),
		CreatedAt:  timestamppb.New(created), ExpiresAt: timestamppb.New(created.Add(ttl)),
	}
}

func mustCreate(t *testing.T, s approval.Store, a *pb.Approval) {
	t.Helper()
	if err := s.Create(context.Background(), a); err != nil {
		t.Fatalf("Create: %v", err)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v, want %v", what, err, want)
	}
}

func runStoreSuite(t *testing.T, newPair storeFactory) {
	ctx := context.Background()

	t.Run("CreateGetList", func(t *testing.T) {
		p := newPair(t)
		now := base()
		a1 := newApproval("mail", "u1", "gmail.send", now, time.Hour)
		a2 := newApproval("mail", "u2", "gmail.send", now.Add(time.Second), time.Hour)
		a3 := newApproval("files", "u1", "drive.delete", now.Add(2*time.Second), time.Hour)
		for _, a := range []*pb.Approval{a1, a2, a3} {
			mustCreate(t, p.a, a)
		}
		got, err := p.b.Get(ctx, a1.Id, now)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if got.Id != a1.Id || got.Status != pb.ApprovalStatus_APPROVAL_STATUS_PENDING || got.Digest != a1.Digest ||
			got.Tool != "gmail.send" || got.Args.Fields["to"].GetListValue().Values[0].GetStringValue() != "a@example.com" ||
			len(got.Reasons) != 1 || got.Reasons[0].RuleId != "needs-approval" || !got.ExpiresAt.AsTime().Equal(a1.ExpiresAt.AsTime()) {
			t.Fatalf("Get = %v, want %v", got, a1)
		}
		_, err = p.b.Get(ctx, "no-such-id", now)
		wantErr(t, "Get unknown", err, approval.ErrNotFound)

		ids := func(list []*pb.Approval) []string {
			var out []string
			for _, a := range list {
				out = append(out, a.Id)
			}
			return out
		}
		for _, tc := range []struct {
			f    approval.Filter
			want []string
		}{
			{approval.Filter{}, []string{a1.Id, a2.Id, a3.Id}},
			{approval.Filter{AgentID: "mail"}, []string{a1.Id, a2.Id}},
			{approval.Filter{PrincipalID: "u1"}, []string{a1.Id, a3.Id}},
			{approval.Filter{Tool: "drive.delete"}, []string{a3.Id}},
			{approval.Filter{AgentID: "mail", PrincipalID: "u2", Tool: "gmail.send"}, []string{a2.Id}},
			{approval.Filter{AgentID: "nobody"}, nil},
		} {
			list, err := p.b.ListPending(ctx, tc.f, now)
			if err != nil {
				t.Fatalf("ListPending(%+v): %v", tc.f, err)
			}
			if fmt.Sprint(ids(list)) != fmt.Sprint(tc.want) {
				t.Errorf("ListPending(%+v) = %v, want %v (oldest first)", tc.f, ids(list), tc.want)
			}
		}
		// Decided approvals leave the pending list.
		if _, err := p.a.Decide(ctx, a2.Id, true, "alice", "", now); err != nil {
			t.Fatal(err)
		}
		list, err := p.b.ListPending(ctx, approval.Filter{}, now)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(ids(list)) != fmt.Sprint([]string{a1.Id, a3.Id}) {
			t.Errorf("after deciding a2, ListPending = %v", ids(list))
		}
	})

	t.Run("DecideApprove", func(t *testing.T) {
		p := newPair(t)
		now := base()
		a := newApproval("mail", "u1", "gmail.send", now, time.Hour)
		mustCreate(t, p.a, a)
		when := now.Add(5 * time.Second)
		got, err := p.b.Decide(ctx, a.Id, true, "alice", "looks fine", when)
		if err != nil {
			t.Fatalf("Decide: %v", err)
		}
		if got.Status != pb.ApprovalStatus_APPROVAL_STATUS_APPROVED || got.Approver != "alice" || got.Note != "looks fine" ||
			!got.DecidedAt.AsTime().Equal(when) || got.Digest != a.Digest || got.AgentId != "mail" {
			t.Fatalf("Decide = %v", got)
		}
		again, err := p.a.Get(ctx, a.Id, when)
		if err != nil {
			t.Fatal(err)
		}
		if again.Status != pb.ApprovalStatus_APPROVAL_STATUS_APPROVED || again.Approver != "alice" {
			t.Fatalf("Get after Decide = %v", again)
		}
		_, err = p.a.Decide(ctx, a.Id, true, "bob", "", when)
		wantErr(t, "approving twice", err, approval.ErrNotPending)
		_, err = p.a.Decide(ctx, a.Id, false, "bob", "", when)
		wantErr(t, "rejecting an approved one", err, approval.ErrNotPending)
	})

	t.Run("DecideReject", func(t *testing.T) {
		p := newPair(t)
		now := base()
		a := newApproval("mail", "u1", "gmail.send", now, time.Hour)
		mustCreate(t, p.a, a)
		got, err := p.b.Decide(ctx, a.Id, false, "alice", "no", now)
		if err != nil {
			t.Fatalf("Decide: %v", err)
		}
		if got.Status != pb.ApprovalStatus_APPROVAL_STATUS_REJECTED || got.Approver != "alice" {
			t.Fatalf("Decide = %v", got)
		}
		_, err = p.a.Decide(ctx, a.Id, true, "bob", "", now)
		wantErr(t, "approving a rejected one", err, approval.ErrNotPending)
		_, err = p.a.Use(ctx, a.Id, a.Digest, now, false)
		wantErr(t, "using a rejected one", err, approval.ErrRejected)
	})

	t.Run("DecideErrors", func(t *testing.T) {
		p := newPair(t)
		now := base()
		_, err := p.a.Decide(ctx, "no-such-id", true, "alice", "", now)
		wantErr(t, "unknown id", err, approval.ErrNotFound)
		a := newApproval("mail", "u1", "gmail.send", now, time.Minute)
		mustCreate(t, p.a, a)
		_, err = p.b.Decide(ctx, a.Id, true, "alice", "", now.Add(time.Minute))
		wantErr(t, "deciding at expiry", err, approval.ErrExpired)
		_, err = p.b.Decide(ctx, a.Id, true, "alice", "", now.Add(time.Hour))
		wantErr(t, "deciding after expiry", err, approval.ErrExpired)
		// A failed decision changes nothing.
		got, err := p.a.Get(ctx, a.Id, now)
		if err != nil || got.Status != pb.ApprovalStatus_APPROVAL_STATUS_PENDING {
			t.Fatalf("Get = %v, %v; want still pending", got, err)
		}
	})

	t.Run("UseOnce", func(t *testing.T) {
		p := newPair(t)
		now := base()
		a := newApproval("mail", "u1", "gmail.send", now, time.Hour)
		mustCreate(t, p.a, a)
		_, err := p.b.Use(ctx, a.Id, a.Digest, now, true)
		wantErr(t, "using a pending one", err, approval.ErrNotApproved)
		_, err = p.b.Use(ctx, "no-such-id", a.Digest, now, false)
		wantErr(t, "using an unknown one", err, approval.ErrNotFound)
		if _, err := p.a.Decide(ctx, a.Id, true, "alice", "ok", now); err != nil {
			t.Fatal(err)
		}
		// A dry run checks without spending, as often as asked.
		for i := 0; i < 2; i++ {
			got, err := p.b.Use(ctx, a.Id, a.Digest, now, true)
			if err != nil {
				t.Fatalf("dry Use: %v", err)
			}
			if got.Status != pb.ApprovalStatus_APPROVAL_STATUS_APPROVED || got.Approver != "alice" {
				t.Fatalf("dry Use = %v", got)
			}
		}
		got, err := p.b.Use(ctx, a.Id, a.Digest, now, false)
		if err != nil {
			t.Fatalf("Use: %v", err)
		}
		if got.Status != pb.ApprovalStatus_APPROVAL_STATUS_USED || got.Id != a.Id {
			t.Fatalf("Use = %v", got)
		}
		_, err = p.a.Use(ctx, a.Id, a.Digest, now, false)
		wantErr(t, "using twice", err, approval.ErrUsed)
		_, err = p.a.Use(ctx, a.Id, a.Digest, now, true)
		wantErr(t, "dry use after use", err, approval.ErrUsed)
		g, err := p.a.Get(ctx, a.Id, now.Add(2*time.Hour))
		if err != nil || g.Status != pb.ApprovalStatus_APPROVAL_STATUS_USED {
			t.Fatalf("Get after use = %v, %v; want USED (even past expiry)", g, err)
		}
		_, err = p.a.Decide(ctx, a.Id, true, "bob", "", now)
		wantErr(t, "deciding a used one", err, approval.ErrNotPending)
	})

	t.Run("TamperedDigest", func(t *testing.T) {
		p := newPair(t)
		now := base()
		a := newApproval("mail", "u1", "gmail.send", now, time.Hour)
		mustCreate(t, p.a, a)
		if _, err := p.a.Decide(ctx, a.Id, true, "alice", "", now); err != nil {
			t.Fatal(err)
		}
		other, _ := structpb.NewStruct(map[string]any{"to": []any{"attacker@evil.example"}, "n": 1})
		tampered := approval.Digest("mail", "u1", "gmail.send", other)
		for _, dry := range []bool{true, false} {
			_, err := p.b.Use(ctx, a.Id, tampered, now, dry)
			wantErr(t, fmt.Sprintf("tampered args (dry %v)", dry), err, approval.ErrDigestMismatch)
		}
		// The mismatch spent nothing: the real call still goes through.
		if _, err := p.b.Use(ctx, a.Id, a.Digest, now, false); err != nil {
			t.Fatalf("Use with the right digest after a mismatch: %v", err)
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		p := newPair(t)
		now := base()
		pending := newApproval("mail", "u1", "gmail.send", now, 10*time.Second)
		approved := newApproval("mail", "u2", "gmail.send", now, 10*time.Second)
		mustCreate(t, p.a, pending)
		mustCreate(t, p.a, approved)
		if _, err := p.a.Decide(ctx, approved.Id, true, "alice", "", now.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		before, after := now.Add(10*time.Second-time.Millisecond), now.Add(10*time.Second)
		for _, tc := range []struct {
			id   string
			at   time.Time
			want pb.ApprovalStatus
		}{
			{pending.Id, before, pb.ApprovalStatus_APPROVAL_STATUS_PENDING},
			{pending.Id, after, pb.ApprovalStatus_APPROVAL_STATUS_EXPIRED},
			{approved.Id, before, pb.ApprovalStatus_APPROVAL_STATUS_APPROVED},
			{approved.Id, after, pb.ApprovalStatus_APPROVAL_STATUS_EXPIRED},
		} {
			got, err := p.b.Get(ctx, tc.id, tc.at)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tc.want {
				t.Errorf("Get(%s) at +%s = %s, want %s", tc.id, tc.at.Sub(now), got.Status, tc.want)
			}
		}
		list, err := p.b.ListPending(ctx, approval.Filter{}, before)
		if err != nil || len(list) != 1 || list[0].Id != pending.Id {
			t.Fatalf("ListPending before expiry = %v, %v", list, err)
		}
		list, err = p.b.ListPending(ctx, approval.Filter{}, after)
		if err != nil || len(list) != 0 {
			t.Fatalf("ListPending after expiry = %v, %v; want none", list, err)
		}
		_, err = p.b.Use(ctx, approved.Id, approved.Digest, after, true)
		wantErr(t, "using an expired approval", err, approval.ErrExpired)
		_, err = p.b.Decide(ctx, pending.Id, true, "alice", "", after)
		wantErr(t, "deciding an expired approval", err, approval.ErrExpired)
		// Just before expiry it still works.
		if _, err := p.b.Use(ctx, approved.Id, approved.Digest, before, false); err != nil {
			t.Fatalf("Use just before expiry: %v", err)
		}
	})

	t.Run("ConcurrentDecideOnce", func(t *testing.T) {
		p := newPair(t)
		now := base()
		a := newApproval("mail", "u1", "gmail.send", now, time.Hour)
		mustCreate(t, p.a, a)
		const n = 20
		var wg sync.WaitGroup
		errs := make([]error, n)
		results := make([]*pb.Approval, n)
		start := make(chan struct{})
		for i := 0; i < n; i++ {
			s := p.a
			if i%2 == 1 {
				s = p.b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				results[i], errs[i] = s.Decide(ctx, a.Id, i%3 != 0, fmt.Sprintf("approver-%d", i), "", now)
			}()
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("Decide succeeded twice: by %d and %d", winner, i)
				}
				winner = i
			case !errors.Is(err, approval.ErrNotPending):
				t.Fatalf("Decide %d: %v, want ErrNotPending", i, err)
			}
		}
		if winner < 0 {
			t.Fatal("no Decide succeeded")
		}
		got, err := p.b.Get(ctx, a.Id, now)
		if err != nil {
			t.Fatal(err)
		}
		if got.Approver != fmt.Sprintf("approver-%d", winner) || got.Status != results[winner].Status {
			t.Fatalf("stored %v, but the winner was %d (%v)", got, winner, results[winner])
		}
	})

	t.Run("ConcurrentUseOnce", func(t *testing.T) {
		p := newPair(t)
		now := base()
		a := newApproval("mail", "u1", "gmail.send", now, time.Hour)
		mustCreate(t, p.a, a)
		if _, err := p.a.Decide(ctx, a.Id, true, "alice", "", now); err != nil {
			t.Fatal(err)
		}
		const n = 20
		var wg sync.WaitGroup
		errs := make([]error, n)
		start := make(chan struct{})
		for i := 0; i < n; i++ {
			s := p.a
			if i%2 == 1 {
				s = p.b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, errs[i] = s.Use(ctx, a.Id, a.Digest, now, false)
			}()
		}
		close(start)
		wg.Wait()
		ok := 0
		for i, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, approval.ErrUsed):
				t.Fatalf("Use %d: %v, want ErrUsed", i, err)
			}
		}
		if ok != 1 {
			t.Fatalf("%d Use calls succeeded, want exactly 1", ok)
		}
	})

	t.Run("Subscribe", func(t *testing.T) {
		p := newPair(t)
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		events := p.b.Subscribe(sctx)
		now := base()
		a := newApproval("mail", "u1", "gmail.send", now, time.Hour)
		mustCreate(t, p.a, a)
		next := func(want pb.ApprovalEvent_Kind) *pb.Approval {
			t.Helper()
			timeout := time.After(5 * time.Second)
			for {
				select {
				case ev, ok := <-events:
					if !ok {
						t.Fatal("event channel closed")
					}
					if ev.Approval.GetId() != a.Id {
						continue
					}
					if ev.Kind != want {
						t.Fatalf("event %s, want %s", ev.Kind, want)
					}
					return ev.Approval
				case <-timeout:
					t.Fatalf("no %s event within 5s", want)
				}
			}
		}
		if got := next(pb.ApprovalEvent_KIND_CREATED); got.AgentId != "mail" || got.Digest != a.Digest {
			t.Fatalf("created event carries %v", got)
		}
		if _, err := p.a.Decide(ctx, a.Id, true, "alice", "", now); err != nil {
			t.Fatal(err)
		}
		if got := next(pb.ApprovalEvent_KIND_DECIDED); got.Status != pb.ApprovalStatus_APPROVAL_STATUS_APPROVED || got.Approver != "alice" {
			t.Fatalf("decided event carries %v", got)
		}
		if _, err := p.a.Use(ctx, a.Id, a.Digest, now, false); err != nil {
			t.Fatal(err)
		}
		if got := next(pb.ApprovalEvent_KIND_USED); got.Status != pb.ApprovalStatus_APPROVAL_STATUS_USED {
			t.Fatalf("used event carries %v", got)
		}
		// Ending the context closes the channel.
		cancel()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case _, ok := <-events:
				if !ok {
					return
				}
			case <-deadline:
				t.Fatal("event channel not closed after the context ended")
			}
		}
	})
}

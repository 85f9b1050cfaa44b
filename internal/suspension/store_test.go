package suspension_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
	"github.com/agentpdp/agentpdp/internal/suspension"
)

// pair is two handles on one store: two instances on two clients for
// Redis (two replicas), the same instance twice for memory.
type pair struct{ a, b suspension.Store }

func memoryPair(t *testing.T) pair {
	m := suspension.NewMemory()
	t.Cleanup(func() { m.Close() })
	return pair{m, m}
}

func TestMemoryStore(t *testing.T) { runStoreSuite(t, memoryPair) }

func sus(agent, principal, reason string, now time.Time, ttl time.Duration) *pb.Suspension {
	s := &pb.Suspension{AgentId: agent, PrincipalId: principal, Reason: reason, By: "test",
		CreatedAt: timestamppb.New(now)}
	if ttl != 0 {
		s.ExpiresAt = timestamppb.New(now.Add(ttl))
	}
	return s
}

func mustSuspend(t *testing.T, s suspension.Store, x *pb.Suspension) {
	t.Helper()
	if err := s.Suspend(context.Background(), x); err != nil {
		t.Fatalf("Suspend: %v", err)
	}
}

// eventually waits up to 1 s (the propagation promise) for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	// Generous: pub/sub delivery on a loaded CI machine can take a while.
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func listed(t *testing.T, s suspension.Store, agent string, now time.Time) string {
	t.Helper()
	list, err := s.List(context.Background(), agent, now)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	out := ""
	for _, x := range list {
		out += fmt.Sprintf("%s/%s:%s ", x.AgentId, x.PrincipalId, x.Reason)
	}
	return out
}

func runStoreSuite(t *testing.T, newPair func(t *testing.T) pair) {
	ctx := context.Background()

	t.Run("SuspendResumeList", func(t *testing.T) {
		p := newPair(t)
		now := time.Now()
		mustSuspend(t, p.a, sus("mail", "", "runaway", now, 0))
		mustSuspend(t, p.a, sus("mail", "u1", "complaint", now, 0))
		mustSuspend(t, p.a, sus("files", "u2", "audit", now, 0))
		if got, want := listed(t, p.b, "", now), "files/u2:audit mail/:runaway mail/u1:complaint "; got != want {
			t.Fatalf("List all = %q, want %q", got, want)
		}
		if got, want := listed(t, p.b, "mail", now), "mail/:runaway mail/u1:complaint "; got != want {
			t.Fatalf("List mail = %q, want %q", got, want)
		}
		if got := listed(t, p.b, "nobody", now); got != "" {
			t.Fatalf("List nobody = %q", got)
		}
		// Suspending again replaces the suspension.
		mustSuspend(t, p.a, sus("mail", "u1", "second complaint", now, 0))
		if got, want := listed(t, p.b, "mail", now), "mail/:runaway mail/u1:second complaint "; got != want {
			t.Fatalf("List after re-suspend = %q, want %q", got, want)
		}
		was, err := p.b.Resume(ctx, "mail", "u1")
		if err != nil || !was {
			t.Fatalf("Resume = %v, %v; want true", was, err)
		}
		was, err = p.b.Resume(ctx, "mail", "u1")
		if err != nil || was {
			t.Fatalf("second Resume = %v, %v; want false", was, err)
		}
		was, err = p.b.Resume(ctx, "nobody", "")
		if err != nil || was {
			t.Fatalf("Resume of an unknown agent = %v, %v; want false", was, err)
		}
		if got, want := listed(t, p.a, "", now), "files/u2:audit mail/:runaway "; got != want {
			t.Fatalf("List after resume = %q, want %q", got, want)
		}
	})

	t.Run("AgentWideAndPerPrincipal", func(t *testing.T) {
		p := newPair(t)
		now := time.Now()
		mustSuspend(t, p.a, sus("mail", "u1", "u1 only", now, 0))
		for _, s := range []suspension.Store{p.a, p.b} {
			eventually(t, "per-principal suspension", func() bool { return s.Check("mail", "u1", time.Now()) != nil })
		}
		for _, s := range []suspension.Store{p.a, p.b} {
			if got := s.Check("mail", "u2", now); got != nil {
				t.Fatalf("u2 suspended by u1's suspension: %v", got)
			}
			if got := s.Check("mail", "", now); got != nil {
				t.Fatalf("no principal suspended by u1's suspension: %v", got)
			}
			if got := s.Check("files", "u1", now); got != nil {
				t.Fatalf("another agent suspended: %v", got)
			}
		}
		mustSuspend(t, p.a, sus("mail", "", "everyone", now, 0))
		for _, pr := range []string{"u1", "u2", ""} {
			eventually(t, "agent-wide suspension for "+pr, func() bool {
				got := p.b.Check("mail", pr, time.Now())
				return got != nil && got.Reason == "everyone"
			})
		}
		if _, err := p.a.Resume(ctx, "mail", ""); err != nil {
			t.Fatal(err)
		}
		eventually(t, "agent-wide resume", func() bool {
			return p.b.Check("mail", "u2", time.Now()) == nil
		})
		if got := p.b.Check("mail", "u1", time.Now()); got == nil || got.Reason != "u1 only" {
			t.Fatalf("resuming agent-wide lifted u1's own suspension: %v", got)
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		p := newPair(t)
		now := time.Now()
		mustSuspend(t, p.a, sus("mail", "", "short", now, 10*time.Second))
		eventually(t, "suspension", func() bool { return p.b.Check("mail", "u1", now) != nil })
		if got := p.b.Check("mail", "u1", now.Add(10*time.Second-time.Millisecond)); got == nil {
			t.Fatal("not suspended just before expiry")
		}
		if got := p.b.Check("mail", "u1", now.Add(10*time.Second)); got != nil {
			t.Fatalf("suspended at expiry: %v", got)
		}
		if got := listed(t, p.b, "mail", now.Add(11*time.Second)); got != "" {
			t.Fatalf("List after expiry = %q", got)
		}
		if got := listed(t, p.b, "mail", now); got == "" {
			t.Fatal("List before expiry is empty")
		}
	})

	t.Run("SeenAcrossInstancesWithinOneSecond", func(t *testing.T) {
		p := newPair(t)
		start := time.Now()
		mustSuspend(t, p.a, sus("mail", "", "kill switch", time.Now(), 0))
		eventually(t, "B sees A's suspension", func() bool { return p.b.Check("mail", "u1", time.Now()) != nil })
		t.Logf("suspension seen by B after %s", time.Since(start))
		start = time.Now()
		if _, err := p.a.Resume(ctx, "mail", ""); err != nil {
			t.Fatal(err)
		}
		eventually(t, "B sees A's resume", func() bool { return p.b.Check("mail", "u1", time.Now()) == nil })
		t.Logf("resume seen by B after %s", time.Since(start))
	})

	t.Run("ReadYourWrites", func(t *testing.T) {
		p := newPair(t)
		for i := 0; i < 50; i++ {
			agent := fmt.Sprintf("agent-%d", i)
			mustSuspend(t, p.a, sus(agent, "", "x", time.Now(), 0))
			if p.a.Check(agent, "u", time.Now()) == nil {
				t.Fatalf("%s: the suspending store does not see its own suspension", agent)
			}
			if _, err := p.a.Resume(ctx, agent, ""); err != nil {
				t.Fatal(err)
			}
			if got := p.a.Check(agent, "u", time.Now()); got != nil {
				t.Fatalf("%s: the resuming store still sees the suspension", agent)
			}
			time.Sleep(time.Duration(i%7) * time.Millisecond)
		}
	})
}

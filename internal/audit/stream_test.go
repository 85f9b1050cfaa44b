package audit

import (
	"context"
	"errors"
	"io"
	"strconv"
	"testing"
	"time"

	agentpdpv1 "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
	"github.com/agentpdp/agentpdp/internal/testutil/loopback"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// serveAudit runs the AuditService on a real loopback TCP listener.
func serveAudit(t *testing.T, b *Broadcaster) agentpdpv1.AuditServiceClient {
	t.Helper()
	srv := grpc.NewServer()
	agentpdpv1.RegisterAuditServiceServer(srv, NewStreamServer(b))
	return agentpdpv1.NewAuditServiceClient(loopback.Serve(t, srv))
}

func waitSubscribers(t *testing.T, b *Broadcaster, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for b.Subscribers() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d subscribers, want %d", b.Subscribers(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestStreamDecisionsFilters(t *testing.T) {
	dir := t.TempDir()
	b := NewBroadcaster()
	o := testOptions(dir)
	o.Sinks = []SinkConfig{{Name: "stream", Sink: b}}
	l := openLog(t, o)
	client := serveAudit(t, b)

	subs := []struct {
		name string
		req  *agentpdpv1.StreamDecisionsRequest
		want []string // decision ids, or type for other records
	}{
		{"email agent denials", &agentpdpv1.StreamDecisionsRequest{
			AgentIds: []string{"email-agent"}, Decisions: []agentpdpv1.Decision{agentpdpv1.Decision_DECISION_DENY},
		}, []string{"d-2"}},
		{"crm glob with other records", &agentpdpv1.StreamDecisionsRequest{
			AgentIds: []string{"crm-*"}, IncludeOther: true,
		}, []string{"d-3", "suspension"}},
		{"all decisions", &agentpdpv1.StreamDecisionsRequest{}, []string{"d-1", "d-2", "d-3", "d-4"}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	streams := make([]grpc.ServerStreamingClient[agentpdpv1.AuditEvent], len(subs))
	for i, s := range subs {
		st, err := client.StreamDecisions(ctx, s.req)
		if err != nil {
			t.Fatal(err)
		}
		streams[i] = st
	}
	waitSubscribers(t, b, len(subs))

	records := []*Record{
		decisionRecord(1, "email-agent", "ALLOW"),
		decisionRecord(2, "email-agent", "DENY"),
		decisionRecord(3, "crm-agent", "DENY"),
		{Type: TypeOutcome, DecisionID: "d-1", Agent: &Agent{ID: "email-agent"}, Outcome: &Outcome{Status: "ok"}},
		{Type: TypeSuspension, Suspension: &Suspension{Event: "suspended", AgentID: "crm-agent", By: "ops"}},
		decisionRecord(4, "email-agent", "REQUIRE_APPROVAL"),
	}
	for _, r := range records {
		if err := l.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	closeLog(t, l) // the stream ends when the trail closes
	fileLines := allLines(t, dir)

	for i, s := range subs {
		t.Run(s.name, func(t *testing.T) {
			var got []string
			for {
				ev, err := streams[i].Recv()
				if err != nil {
					if status.Code(err) != codes.Unavailable && !errors.Is(err, io.EOF) {
						t.Fatalf("Recv: %v", err)
					}
					break
				}
				checkEvent(t, ev, fileLines)
				id := ev.GetDecisionId()
				if ev.GetType() != TypeDecision {
					id = ev.GetType()
				}
				got = append(got, id)
			}
			if len(got) != len(s.want) {
				t.Fatalf("got %v, want %v", got, s.want)
			}
			for j := range got {
				if got[j] != s.want[j] {
					t.Errorf("got %v, want %v", got, s.want)
				}
			}
			if d := streams[i].Trailer().Get(DroppedTrailer); len(d) != 1 || d[0] != "0" {
				t.Errorf("dropped trailer = %v", d)
			}
		})
	}
}

// checkEvent: the record is the exact file line, and it verifies on its own.
func checkEvent(t *testing.T, ev *agentpdpv1.AuditEvent, fileLines []string) {
	t.Helper()
	if ev.GetSeq() == 0 || int(ev.GetSeq()) > len(fileLines) || fileLines[ev.GetSeq()-1] != string(ev.GetRecord()) {
		t.Errorf("event seq %d record differs from the file line", ev.GetSeq())
		return
	}
	body, hx, ok := splitLine(ev.GetRecord())
	if !ok || hashHex(body) != hx {
		t.Errorf("event seq %d does not verify", ev.GetSeq())
	}
	if ev.GetChainId() != "test-1" {
		t.Errorf("chain = %q", ev.GetChainId())
	}
	if ev.GetType() == TypeDecision && ev.GetDecision() == agentpdpv1.Decision_DECISION_UNSPECIFIED {
		t.Errorf("seq %d: decision not mapped", ev.GetSeq())
	}
}

func TestSlowSubscriberDropsWithoutBlockingOthers(t *testing.T) {
	b := NewBroadcaster()
	slow := b.Subscribe(2, nil)
	fast := b.Subscribe(200, nil)
	const n = 100
	batch := make([]Entry, n)
	for i := range batch {
		batch[i] = Entry{Record: &Record{Type: TypeDecision, Seq: uint64(i + 1)}}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = b.Write(context.Background(), batch)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Write blocked on a slow subscriber")
	}
	if got := len(fast.C()); got != n {
		t.Errorf("fast subscriber got %d, want %d", got, n)
	}
	if slow.Dropped() != n-2 || b.Dropped() != n-2 {
		t.Errorf("slow dropped %d (total %d), want %d", slow.Dropped(), b.Dropped(), n-2)
	}
	slow.Close()
	slow.Close() // idempotent
	if b.Subscribers() != 1 {
		t.Errorf("subscribers = %d", b.Subscribers())
	}
	_ = b.Close(context.Background())
	if _, ok := <-b.Subscribe(1, nil).C(); ok {
		t.Error("subscribing to a closed broadcaster gave an open channel")
	}
}

func TestStreamDroppedTrailer(t *testing.T) {
	b := NewBroadcaster()
	client := serveAudit(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := client.StreamDecisions(ctx, &agentpdpv1.StreamDecisionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	waitSubscribers(t, b, 1)
	// More than the subscriber buffer in one go, before the client reads.
	const n = DefaultSubscriberBuffer * 4
	batch := make([]Entry, n)
	for i := range batch {
		batch[i] = Entry{Record: &Record{Type: TypeDecision, Seq: uint64(i + 1), Decision: "ALLOW"}, Line: []byte("{}")}
	}
	_ = b.Write(ctx, batch)
	_ = b.Close(ctx)
	got := 0
	for {
		if _, err := st.Recv(); err != nil {
			break
		}
		got++
	}
	var md metadata.MD = st.Trailer()
	dropped, _ := strconv.Atoi(firstOr(md.Get(DroppedTrailer), "-1"))
	if got+dropped != n || dropped <= 0 {
		t.Errorf("received %d, dropped %d, want a sum of %d with drops", got, dropped, n)
	}
}

func firstOr(v []string, d string) string {
	if len(v) == 0 {
		return d
	}
	return v[0]
}

func TestDecisionEnum(t *testing.T) {
	tests := []struct {
		in   string
		want agentpdpv1.Decision
	}{
		{"ALLOW", agentpdpv1.Decision_DECISION_ALLOW},
		{"deny", agentpdpv1.Decision_DECISION_DENY},
		{"DECISION_REQUIRE_APPROVAL", agentpdpv1.Decision_DECISION_REQUIRE_APPROVAL},
		{"", agentpdpv1.Decision_DECISION_UNSPECIFIED},
		{"maybe", agentpdpv1.Decision_DECISION_UNSPECIFIED},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := decisionEnum(tc.in); got != tc.want {
				t.Errorf("decisionEnum(%q) = %v", tc.in, got)
			}
		})
	}
}

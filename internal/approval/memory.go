package approval

import (
	"context"
	"sort"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
)

// Memory keeps approvals in this process.
type Memory struct {
	mu   sync.Mutex
	byID map[string]*pb.Approval
	bus  *bus
}

// NewMemory returns an empty in-process store.
func NewMemory() *Memory {
	return &Memory{byID: map[string]*pb.Approval{}, bus: newBus()}
}

func (m *Memory) Create(_ context.Context, a *pb.Approval) error {
	stored := proto.Clone(a).(*pb.Approval)
	m.mu.Lock()
	m.byID[a.Id] = stored
	m.mu.Unlock()
	m.bus.publish(Event{Kind: pb.ApprovalEvent_KIND_CREATED, Approval: proto.Clone(stored).(*pb.Approval)})
	return nil
}

func (m *Memory) Get(_ context.Context, id string, now time.Time) (*pb.Approval, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.byID[id]
	if !ok {
		return nil, ErrNotFound
	}
	out := proto.Clone(a).(*pb.Approval)
	out.Status = effectiveStatus(a, now)
	return out, nil
}

func (m *Memory) ListPending(_ context.Context, f Filter, now time.Time) ([]*pb.Approval, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*pb.Approval
	for _, a := range m.byID {
		if effectiveStatus(a, now) == pb.ApprovalStatus_APPROVAL_STATUS_PENDING && f.match(a) {
			out = append(out, proto.Clone(a).(*pb.Approval))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.AsTime().Before(out[j].CreatedAt.AsTime()) })
	return out, nil
}

func (m *Memory) Decide(_ context.Context, id string, approve bool, approver, note string, now time.Time) (*pb.Approval, error) {
	m.mu.Lock()
	a, ok := m.byID[id]
	if !ok {
		m.mu.Unlock()
		return nil, ErrNotFound
	}
	if err := decideError(a, now); err != nil {
		m.mu.Unlock()
		return nil, err
	}
	a.Status = pb.ApprovalStatus_APPROVAL_STATUS_REJECTED
	if approve {
		a.Status = pb.ApprovalStatus_APPROVAL_STATUS_APPROVED
	}
	a.Approver, a.Note, a.DecidedAt = approver, note, timestamppb.New(now)
	out := proto.Clone(a).(*pb.Approval)
	m.mu.Unlock()
	m.bus.publish(Event{Kind: pb.ApprovalEvent_KIND_DECIDED, Approval: out})
	return out, nil
}

func (m *Memory) Use(_ context.Context, id, digest string, now time.Time, dryRun bool) (*pb.Approval, error) {
	m.mu.Lock()
	a, ok := m.byID[id]
	if !ok {
		m.mu.Unlock()
		return nil, ErrNotFound
	}
	if err := useError(a, digest, now); err != nil {
		m.mu.Unlock()
		return nil, err
	}
	if !dryRun {
		a.Status = pb.ApprovalStatus_APPROVAL_STATUS_USED
	}
	out := proto.Clone(a).(*pb.Approval)
	m.mu.Unlock()
	if !dryRun {
		m.bus.publish(Event{Kind: pb.ApprovalEvent_KIND_USED, Approval: out})
	}
	return out, nil
}

func (m *Memory) Subscribe(ctx context.Context) <-chan Event { return m.bus.subscribe(ctx) }

func (m *Memory) Close() error { return nil }

// bus fans events out to subscribers without ever blocking the publisher.
type bus struct {
	mu   sync.Mutex
	subs map[chan Event]struct{}
}

func newBus() *bus { return &bus{subs: map[chan Event]struct{}{}} }

func (b *bus) subscribe(ctx context.Context) <-chan Event {
	ch := make(chan Event, 64)
	b.mu.Lock()
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	go func() {
		<-ctx.Done()
		b.mu.Lock()
		delete(b.subs, ch)
		close(ch)
		b.mu.Unlock()
	}()
	return ch
}

func (b *bus) publish(ev Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- ev:
		default: // a slow subscriber misses it; WaitApproval polls too
		}
	}
}

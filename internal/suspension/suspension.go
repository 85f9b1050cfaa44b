// Package suspension is the kill switch: agents (or one agent for one
// principal) that are refused every call until resumed or expired.
package suspension

import (
	"context"
	"sort"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
)

// Store keeps suspensions. Check sits on every decision, so it must answer
// from local state; a shared store refreshes that state in the background.
type Store interface {
	Suspend(ctx context.Context, s *pb.Suspension) error
	// Resume lifts the suspension of agentID (for principalID, or the
	// agent-wide one when principalID is empty).
	Resume(ctx context.Context, agentID, principalID string) (bool, error)
	List(ctx context.Context, agentID string, now time.Time) ([]*pb.Suspension, error)
	// Check returns the suspension that applies to the call, or nil.
	Check(agentID, principalID string, now time.Time) *pb.Suspension
	Close() error
}

type key struct{ agent, principal string }

// table is an immutable-by-convention snapshot of suspensions, keyed for
// Check. Memory mutates its own under a lock; Redis swaps whole snapshots.
type table map[key]*pb.Suspension

func (t table) check(agentID, principalID string, now time.Time) *pb.Suspension {
	if s := t[key{agentID, ""}]; active(s, now) {
		return s
	}
	if principalID != "" {
		if s := t[key{agentID, principalID}]; active(s, now) {
			return s
		}
	}
	return nil
}

func (t table) list(agentID string, now time.Time) []*pb.Suspension {
	var out []*pb.Suspension
	for k, s := range t {
		if (agentID == "" || k.agent == agentID) && active(s, now) {
			out = append(out, proto.Clone(s).(*pb.Suspension))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].AgentId != out[j].AgentId {
			return out[i].AgentId < out[j].AgentId
		}
		return out[i].PrincipalId < out[j].PrincipalId
	})
	return out
}

func active(s *pb.Suspension, now time.Time) bool {
	return s != nil && (s.ExpiresAt == nil || now.Before(s.ExpiresAt.AsTime()))
}

// Memory keeps suspensions in this process.
type Memory struct {
	mu sync.RWMutex
	t  table
}

// NewMemory returns an empty in-process store.
func NewMemory() *Memory { return &Memory{t: table{}} }

func (m *Memory) Suspend(_ context.Context, s *pb.Suspension) error {
	m.mu.Lock()
	m.t[key{s.AgentId, s.PrincipalId}] = proto.Clone(s).(*pb.Suspension)
	m.mu.Unlock()
	return nil
}

func (m *Memory) Resume(_ context.Context, agentID, principalID string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := key{agentID, principalID}
	_, ok := m.t[k]
	delete(m.t, k)
	return ok, nil
}

func (m *Memory) List(_ context.Context, agentID string, now time.Time) ([]*pb.Suspension, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.t.list(agentID, now), nil
}

func (m *Memory) Check(agentID, principalID string, now time.Time) *pb.Suspension {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.t.check(agentID, principalID, now)
}

func (m *Memory) Close() error { return nil }

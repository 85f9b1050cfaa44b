// Package approval keeps the approvals that REQUIRE_APPROVAL decisions
// create: pending until a human decides, bound to a digest of the call, and
// usable once. In memory by default, in Redis when replicas share them.
package approval

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
)

// Errors callers branch on; each names what is wrong with the approval.
var (
	ErrNotFound       = errors.New("approval not found")
	ErrExpired        = errors.New("approval expired")
	ErrNotPending     = errors.New("approval already decided")
	ErrRejected       = errors.New("approval was rejected")
	ErrNotApproved    = errors.New("approval is still pending")
	ErrUsed           = errors.New("approval already used")
	ErrDigestMismatch = errors.New("the call differs from the one approved (agent, principal, tool or args changed)")
)

// Filter selects approvals for ListPending.
type Filter struct {
	AgentID     string
	PrincipalID string
	Tool        string
}

func (f Filter) match(a *pb.Approval) bool {
	return (f.AgentID == "" || f.AgentID == a.AgentId) &&
		(f.PrincipalID == "" || f.PrincipalID == a.PrincipalId) &&
		(f.Tool == "" || f.Tool == a.Tool)
}

// Event is a change to an approval, for WatchApprovals.
type Event struct {
	Kind     pb.ApprovalEvent_Kind
	Approval *pb.Approval
}

// Store keeps approvals. Every state change is atomic: two replicas deciding
// or using one approval at once resolve exactly once.
type Store interface {
	Create(ctx context.Context, a *pb.Approval) error
	Get(ctx context.Context, id string, now time.Time) (*pb.Approval, error)
	ListPending(ctx context.Context, f Filter, now time.Time) ([]*pb.Approval, error)
	// Decide moves a pending, unexpired approval to approved or rejected.
	Decide(ctx context.Context, id string, approve bool, approver, note string, now time.Time) (*pb.Approval, error)
	// Use spends an approved, unexpired approval whose digest matches.
	// With dryRun it checks without spending.
	Use(ctx context.Context, id, digest string, now time.Time, dryRun bool) (*pb.Approval, error)
	// Subscribe delivers events until ctx ends. Slow subscribers miss events
	// rather than slow the store; WaitApproval polls as a backstop.
	Subscribe(ctx context.Context) <-chan Event
	Close() error
}

// Digest binds an approval to one call: SHA-256 over the JSON of agent,
// principal, tool and args (encoding/json sorts map keys, so it is
// canonical for the same values).
func Digest(agentID, principalID, tool string, args *structpb.Struct) string {
	var m map[string]any
	if args != nil {
		m = args.AsMap()
	}
	b, _ := json.Marshal([]any{agentID, principalID, tool, m})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// effectiveStatus reports EXPIRED for a pending or approved approval past
// its expiry; stores persist the expiry, not a sweeper's verdict.
func effectiveStatus(a *pb.Approval, now time.Time) pb.ApprovalStatus {
	switch a.Status {
	case pb.ApprovalStatus_APPROVAL_STATUS_PENDING, pb.ApprovalStatus_APPROVAL_STATUS_APPROVED:
		if a.ExpiresAt != nil && !now.Before(a.ExpiresAt.AsTime()) {
			return pb.ApprovalStatus_APPROVAL_STATUS_EXPIRED
		}
	}
	return a.Status
}

// useError explains why an approval cannot be used now.
func useError(a *pb.Approval, digest string, now time.Time) error {
	switch effectiveStatus(a, now) {
	case pb.ApprovalStatus_APPROVAL_STATUS_APPROVED:
		if a.Digest != digest {
			return ErrDigestMismatch
		}
		return nil
	case pb.ApprovalStatus_APPROVAL_STATUS_PENDING:
		return ErrNotApproved
	case pb.ApprovalStatus_APPROVAL_STATUS_REJECTED:
		return ErrRejected
	case pb.ApprovalStatus_APPROVAL_STATUS_USED:
		return ErrUsed
	}
	return ErrExpired
}

// decideError explains why an approval cannot be decided now.
func decideError(a *pb.Approval, now time.Time) error {
	switch effectiveStatus(a, now) {
	case pb.ApprovalStatus_APPROVAL_STATUS_PENDING:
		return nil
	case pb.ApprovalStatus_APPROVAL_STATUS_EXPIRED:
		return ErrExpired
	}
	return ErrNotPending
}

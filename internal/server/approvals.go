package server

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
	"github.com/agentpdp/agentpdp/internal/approval"
	"github.com/agentpdp/agentpdp/internal/audit"
	"github.com/agentpdp/agentpdp/internal/decision"
)

// MaxWait caps WaitApproval; callers loop for longer waits.
const MaxWait = 5 * time.Minute

// waitPoll is how often WaitApproval re-reads the store between events, so
// a decision made on another replica is seen even if its event is missed.
const waitPoll = 250 * time.Millisecond

// ApprovalService serves ApprovalService on the admin listener and
// WaitApproval on both.
type ApprovalService struct {
	pb.UnimplementedApprovalServiceServer
	store approval.Store
	audit decision.AuditLog
	now   func() time.Time
	log   *slog.Logger
}

// NewApprovalService wraps a store; audit may be nil.
func NewApprovalService(store approval.Store, auditLog decision.AuditLog, log *slog.Logger) *ApprovalService {
	return &ApprovalService{store: store, audit: auditLog, now: time.Now, log: log}
}

func (s *ApprovalService) ListPending(ctx context.Context, req *pb.ListPendingRequest) (*pb.ListPendingResponse, error) {
	list, err := s.store.ListPending(ctx, approval.Filter{AgentID: req.GetAgentId(),
		PrincipalID: req.GetPrincipalId(), Tool: req.GetTool()}, s.now())
	if err != nil {
		return nil, approvalStatus(err)
	}
	return &pb.ListPendingResponse{Approvals: list}, nil
}

func (s *ApprovalService) Get(ctx context.Context, req *pb.GetApprovalRequest) (*pb.Approval, error) {
	if req.GetApprovalId() == "" {
		return nil, status.Error(codes.InvalidArgument, "approval_id: required")
	}
	a, err := s.store.Get(ctx, req.GetApprovalId(), s.now())
	if err != nil {
		return nil, approvalStatus(err)
	}
	return a, nil
}

func (s *ApprovalService) Decide(ctx context.Context, req *pb.DecideRequest) (*pb.Approval, error) {
	if req.GetApprovalId() == "" {
		return nil, status.Error(codes.InvalidArgument, "approval_id: required")
	}
	if req.GetApprover() == "" {
		return nil, status.Error(codes.InvalidArgument, "approver: required, so the trail says who decided")
	}
	a, err := s.store.Decide(ctx, req.GetApprovalId(), req.GetApprove(), req.GetApprover(), req.GetNote(), s.now())
	if err != nil {
		return nil, approvalStatus(err)
	}
	s.log.InfoContext(ctx, "approval decided", "approval_id", a.Id, "status", a.Status.String(),
		"approver", a.Approver, "agent", a.AgentId, "tool", a.Tool)
	if s.audit != nil {
		rec := &audit.Record{Type: audit.TypeApproval, Time: s.now().UTC(), DecisionID: a.DecisionId,
			Agent: &audit.Agent{ID: a.AgentId}, Tool: a.Tool, Policy: a.Policy,
			Approval: &audit.Approval{ID: a.Id, Event: "decided", Status: a.Status.String(),
				Approver: a.Approver, Note: a.Note, Digest: a.Digest}}
		if a.PrincipalId != "" {
			rec.Principal = &audit.Principal{ID: a.PrincipalId}
		}
		if err := s.audit.Append(ctx, rec); err != nil {
			s.log.ErrorContext(ctx, "audit of approval decision failed", "approval_id", a.Id, "err", err)
		}
	}
	return a, nil
}

func (s *ApprovalService) WatchApprovals(req *pb.WatchApprovalsRequest, stream pb.ApprovalService_WatchApprovalsServer) error {
	ctx := stream.Context()
	events := s.store.Subscribe(ctx)
	if req.GetIncludePending() {
		list, err := s.store.ListPending(ctx, approval.Filter{AgentID: req.GetAgentId()}, s.now())
		if err != nil {
			return approvalStatus(err)
		}
		for _, a := range list {
			if err := stream.Send(&pb.ApprovalEvent{Kind: pb.ApprovalEvent_KIND_CREATED, Approval: a}); err != nil {
				return err
			}
		}
	}
	for ev := range events {
		if req.GetAgentId() != "" && ev.Approval.AgentId != req.GetAgentId() {
			continue
		}
		if err := stream.Send(&pb.ApprovalEvent{Kind: ev.Kind, Approval: ev.Approval}); err != nil {
			return err
		}
	}
	return nil
}

func (s *ApprovalService) WaitApproval(ctx context.Context, req *pb.WaitApprovalRequest) (*pb.WaitApprovalResponse, error) {
	id := req.GetApprovalId()
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "approval_id: required")
	}
	wait := min(max(req.GetTimeout().AsDuration(), 0), MaxWait)
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	events := s.store.Subscribe(ctx)
	tick := time.NewTicker(waitPoll)
	defer tick.Stop()
	for {
		a, err := s.store.Get(ctx, id, s.now())
		if err != nil && ctx.Err() == nil {
			return nil, approvalStatus(err)
		}
		if err == nil && a.Status != pb.ApprovalStatus_APPROVAL_STATUS_PENDING {
			return &pb.WaitApprovalResponse{Approval: a}, nil
		}
		select {
		case <-ctx.Done():
			if a == nil {
				return nil, status.FromContextError(ctx.Err()).Err()
			}
			return &pb.WaitApprovalResponse{Approval: a, TimedOut: true}, nil
		case <-events:
		case <-tick.C:
		}
	}
}

func approvalStatus(err error) error {
	switch {
	case errors.Is(err, approval.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, approval.ErrExpired), errors.Is(err, approval.ErrNotPending),
		errors.Is(err, approval.ErrUsed), errors.Is(err, approval.ErrRejected), errors.Is(err, approval.ErrNotApproved),
		errors.Is(err, approval.ErrDigestMismatch):
		return status.Error(codes.FailedPrecondition, err.Error())
	}
	return status.Error(codes.Unavailable, err.Error())
}

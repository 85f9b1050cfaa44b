package server

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
	"github.com/agentpdp/agentpdp/internal/decision"
	"github.com/agentpdp/agentpdp/internal/suspension"
)

// AdminService is the kill switch's API, on the admin listener.
type AdminService struct {
	pb.UnimplementedAdminServiceServer
	store suspension.Store
	audit decision.AuditLog
	now   func() time.Time
	log   *slog.Logger
}

// NewAdminService wraps a store; audit may be nil.
func NewAdminService(store suspension.Store, auditLog decision.AuditLog, log *slog.Logger) *AdminService {
	return &AdminService{store: store, audit: auditLog, now: time.Now, log: log}
}

func (s *AdminService) SuspendAgent(ctx context.Context, req *pb.SuspendAgentRequest) (*pb.Suspension, error) {
	if req.GetAgentId() == "" {
		return nil, status.Error(codes.InvalidArgument, "agent_id: required")
	}
	if req.GetTtl().AsDuration() < 0 {
		return nil, status.Error(codes.InvalidArgument, "ttl: must not be negative")
	}
	now := s.now()
	sus := &pb.Suspension{AgentId: req.GetAgentId(), PrincipalId: req.GetPrincipalId(), Reason: req.GetReason(),
		By: req.GetBy(), CreatedAt: timestamppb.New(now)}
	if sus.By == "" {
		sus.By = "operator"
	}
	if ttl := req.GetTtl().AsDuration(); ttl > 0 {
		sus.ExpiresAt = timestamppb.New(now.Add(ttl))
	}
	if err := s.store.Suspend(ctx, sus); err != nil {
		return nil, status.Errorf(codes.Unavailable, "suspend: %v", err)
	}
	s.log.WarnContext(ctx, "agent suspended", "agent", sus.AgentId, "principal", sus.PrincipalId,
		"by", sus.By, "reason", sus.Reason)
	s.record(ctx, "suspended", sus)
	return sus, nil
}

func (s *AdminService) ResumeAgent(ctx context.Context, req *pb.ResumeAgentRequest) (*pb.ResumeAgentResponse, error) {
	if req.GetAgentId() == "" {
		return nil, status.Error(codes.InvalidArgument, "agent_id: required")
	}
	was, err := s.store.Resume(ctx, req.GetAgentId(), req.GetPrincipalId())
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "resume: %v", err)
	}
	if was {
		s.log.InfoContext(ctx, "agent resumed", "agent", req.GetAgentId(), "principal", req.GetPrincipalId(), "by", req.GetBy())
		s.record(ctx, "resumed", &pb.Suspension{AgentId: req.GetAgentId(), PrincipalId: req.GetPrincipalId(), By: req.GetBy()})
	}
	return &pb.ResumeAgentResponse{WasSuspended: was}, nil
}

func (s *AdminService) ListSuspensions(ctx context.Context, req *pb.ListSuspensionsRequest) (*pb.ListSuspensionsResponse, error) {
	list, err := s.store.List(ctx, req.GetAgentId(), s.now())
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "list: %v", err)
	}
	return &pb.ListSuspensionsResponse{Suspensions: list}, nil
}

func (s *AdminService) record(ctx context.Context, event string, sus *pb.Suspension) {
	if s.audit == nil {
		return
	}
	if err := s.audit.Append(ctx, decision.SuspensionRecord(event, sus, s.now())); err != nil {
		s.log.ErrorContext(ctx, "audit of suspension failed", "err", err)
	}
}

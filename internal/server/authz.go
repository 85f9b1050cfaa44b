package server

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
	"github.com/agentpdp/agentpdp/internal/audit"
	"github.com/agentpdp/agentpdp/internal/decision"
)

// MaxScanTexts bounds one ScanContent call.
const MaxScanTexts = 256

type authzService struct {
	pb.UnimplementedAuthorizationServiceServer
	cfg Config
	log *slog.Logger
}

func (s *authzService) Authorize(ctx context.Context, req *pb.AuthorizeRequest) (*pb.AuthorizeResponse, error) {
	if err := decision.Validate(req); err != nil {
		return nil, invalid(err)
	}
	return s.cfg.Decider.Decide(ctx, req), nil
}

func (s *authzService) ReportOutcome(ctx context.Context, req *pb.ReportOutcomeRequest) (*pb.ReportOutcomeResponse, error) {
	if _, err := uuid.Parse(req.GetDecisionId()); err != nil {
		return nil, status.Error(codes.InvalidArgument, "decision_id: must be the UUID of a decision")
	}
	if req.GetStatus() == pb.OutcomeStatus_OUTCOME_STATUS_UNSPECIFIED {
		return nil, status.Error(codes.InvalidArgument, "status: required")
	}
	if len(req.GetSummary()) > 64<<10 {
		return nil, status.Error(codes.InvalidArgument, "summary: over 64 KiB")
	}
	if s.cfg.Audit == nil {
		return nil, status.Error(codes.FailedPrecondition, "no audit trail is configured")
	}
	id, _ := uuid.NewV7()
	rec := &audit.Record{
		Type: audit.TypeOutcome, Time: time.Now().UTC(), DecisionID: req.GetDecisionId(),
		Outcome: &audit.Outcome{Status: outcomeName(req.GetStatus()), Summary: req.GetSummary(),
			Details: req.GetDetails().AsMap()},
	}
	if req.GetAgentId() != "" {
		rec.Agent = &audit.Agent{ID: req.GetAgentId()}
	}
	if err := s.cfg.Audit.Append(ctx, rec); err != nil {
		return nil, status.Errorf(codes.Unavailable, "audit trail: %v", err)
	}
	return &pb.ReportOutcomeResponse{OutcomeId: id.String()}, nil
}

func outcomeName(st pb.OutcomeStatus) string {
	switch st {
	case pb.OutcomeStatus_OUTCOME_STATUS_SUCCEEDED:
		return "succeeded"
	case pb.OutcomeStatus_OUTCOME_STATUS_FAILED:
		return "failed"
	case pb.OutcomeStatus_OUTCOME_STATUS_SKIPPED:
		return "skipped"
	}
	return "unspecified"
}

func (s *authzService) ScanContent(ctx context.Context, req *pb.ScanContentRequest) (*pb.ScanContentResponse, error) {
	if s.cfg.Content == nil {
		return nil, status.Error(codes.FailedPrecondition, "no content scanner is configured")
	}
	if len(req.GetTexts()) > MaxScanTexts {
		return nil, status.Errorf(codes.InvalidArgument, "texts: %d texts, over the limit of %d", len(req.GetTexts()), MaxScanTexts)
	}
	out := &pb.ScanContentResponse{}
	for _, t := range req.GetTexts() {
		out.Results = append(out.Results, s.cfg.Content.ScanText(t))
	}
	return out, nil
}

func (s *authzService) WaitApproval(ctx context.Context, req *pb.WaitApprovalRequest) (*pb.WaitApprovalResponse, error) {
	if s.cfg.AgentWait == nil {
		return nil, status.Error(codes.Unimplemented, "approvals are not configured")
	}
	return s.cfg.AgentWait(ctx, req)
}

func invalid(err error) error {
	var ie *decision.InvalidError
	if errors.As(err, &ie) {
		return status.Error(codes.InvalidArgument, ie.Error())
	}
	return status.Error(codes.InvalidArgument, err.Error())
}

package server

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
	"github.com/agentpdp/agentpdp/internal/decision"
)

// recoverUnary turns a panic into a DENY for Authorize (fail closed, with a
// reason the agent can show) and INTERNAL elsewhere, and logs it.
func recoverUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				log.ErrorContext(ctx, "panic in RPC", "method", info.FullMethod, "panic", fmt.Sprint(r),
					"stack", string(debug.Stack()))
				if _, ok := req.(*pb.AuthorizeRequest); ok {
					resp, err = internalDeny(), nil
					return
				}
				resp, err = nil, status.Error(codes.Internal, "internal error")
			}
		}()
		return h(ctx, req)
	}
}

func internalDeny() *pb.AuthorizeResponse {
	return &pb.AuthorizeResponse{
		Decision:       pb.Decision_DECISION_DENY,
		PolicyDecision: pb.Decision_DECISION_DENY,
		Mode:           pb.Mode_MODE_ENFORCE,
		Reasons: []*pb.Reason{{RuleId: decision.ReasonInternal, Effect: pb.Effect_EFFECT_DENY,
			Message: "internal error while deciding; denied (fail closed)"}},
	}
}

func recoverStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
		defer func() {
			if r := recover(); r != nil {
				log.Error("panic in stream", "method", info.FullMethod, "panic", fmt.Sprint(r),
					"stack", string(debug.Stack()))
				err = status.Error(codes.Internal, "internal error")
			}
		}()
		return h(srv, ss)
	}
}

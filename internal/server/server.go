// Package server wires the gRPC services onto two listeners: what agents
// call (--listen) and what operators call (--admin-listen). It validates,
// converts and delegates; no policy logic lives here.
package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"runtime"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
	"github.com/agentpdp/agentpdp/internal/decision"
)

// MaxMessageBytes bounds one request: 1 MiB of args plus inputs and headroom.
const MaxMessageBytes = 8 << 20

// Config wires the services. Decider is required; the rest is optional and
// its RPCs answer FAILED_PRECONDITION or UNIMPLEMENTED without it.
type Config struct {
	Decider *decision.Decider
	Audit   decision.AuditLog
	Content decision.Scanner
	Logger  *slog.Logger

	// Admin-side services, registered on the admin listener only.
	Approvals pb.ApprovalServiceServer
	Admin     pb.AdminServiceServer
	AuditFeed pb.AuditServiceServer
	// AgentWait serves AuthorizationService.WaitApproval.
	AgentWait func(context.Context, *pb.WaitApprovalRequest) (*pb.WaitApprovalResponse, error)

	// ServerOptions are added to both servers (tracing stats handlers...).
	ServerOptions []grpc.ServerOption
}

// Server is the two gRPC servers.
type Server struct {
	agent  *grpc.Server
	admin  *grpc.Server
	health []*health.Server
	log    *slog.Logger
}

// New builds both servers and registers every service.
func New(cfg Config) (*Server, error) {
	if cfg.Decider == nil {
		return nil, errors.New("server: a Decider is required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{log: log}
	opts := append([]grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxMessageBytes),
		grpc.ForceServerCodecV2(utf8Codec{}),
		grpc.ChainUnaryInterceptor(recoverUnary(log), rejectBadUTF8),
		grpc.ChainStreamInterceptor(recoverStream(log)),
	}, cfg.ServerOptions...)

	// Decisions are short and CPU-bound: a few long-lived workers whose
	// stacks have already grown to CEL's depth serve them with less
	// goroutine churn than a goroutine per call (grpc-go starts one anyway
	// when all workers are busy, so nothing queues behind a slow call).
	agentOpts := append([]grpc.ServerOption{grpc.NumStreamWorkers(uint32(4 * runtime.GOMAXPROCS(0)))}, opts...)
	s.agent = grpc.NewServer(agentOpts...)
	pb.RegisterAuthorizationServiceServer(s.agent, &authzService{cfg: cfg, log: log})
	s.admin = grpc.NewServer(opts...)
	if cfg.Approvals != nil {
		pb.RegisterApprovalServiceServer(s.admin, cfg.Approvals)
	}
	if cfg.Admin != nil {
		pb.RegisterAdminServiceServer(s.admin, cfg.Admin)
	}
	if cfg.AuditFeed != nil {
		pb.RegisterAuditServiceServer(s.admin, cfg.AuditFeed)
	}
	for _, g := range []*grpc.Server{s.agent, s.admin} {
		h := health.NewServer()
		healthpb.RegisterHealthServer(g, h)
		reflection.Register(g)
		s.health = append(s.health, h)
	}
	return s, nil
}

// Serve serves agents on agentLis and operators on adminLis (nil: no admin
// API) until ctx ends, then drains in-flight calls for up to grace.
func (s *Server) Serve(ctx context.Context, agentLis, adminLis net.Listener, grace time.Duration) error {
	errc := make(chan error, 2)
	go func() { errc <- s.agent.Serve(agentLis) }()
	if adminLis != nil {
		go func() { errc <- s.admin.Serve(adminLis) }()
	}
	select {
	case err := <-errc:
		s.stop(grace)
		return err
	case <-ctx.Done():
	}
	s.stop(grace)
	return nil
}

func (s *Server) stop(grace time.Duration) {
	for _, h := range s.health {
		h.Shutdown()
	}
	done := make(chan struct{})
	go func() {
		s.agent.GracefulStop()
		s.admin.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(grace):
		s.log.Warn("graceful stop timed out; closing connections", "grace", grace)
		s.agent.Stop()
		s.admin.Stop()
	}
}

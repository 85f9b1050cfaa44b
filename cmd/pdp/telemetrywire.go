package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/agentpdp/agentpdp/internal/approval"
	"github.com/agentpdp/agentpdp/internal/policystore"
	"github.com/agentpdp/agentpdp/internal/ratelimit"
	"github.com/agentpdp/agentpdp/internal/telemetry"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// gaugesFor reads the state the metrics report at scrape time.
func gaugesFor(store func() *policystore.Store, st *sharedState, trail func() *auditTrail) telemetry.Gauges {
	g := telemetry.Gauges{
		PolicyVersion: func() string {
			if s := store(); s != nil {
				return s.Current().Version
			}
			return ""
		},
		AuditQueueDepth: func() int64 {
			if t := trail(); t != nil {
				return int64(t.trail.Stats().QueueDepth)
			}
			return 0
		},
		AuditDropped: func() int64 {
			t := trail()
			if t == nil {
				return 0
			}
			s := t.trail.Stats()
			n := s.Refused + s.Lost
			for _, sk := range s.Sinks {
				n += sk.Dropped
			}
			return int64(n)
		},
		ApprovalsPending: func(ctx context.Context) int64 {
			list, err := st.approvals.ListPending(ctx, approval.Filter{}, time.Now())
			if err != nil {
				return 0
			}
			return int64(len(list))
		},
		Suspensions: func(ctx context.Context) int64 {
			list, err := st.suspensions.List(ctx, "", time.Now())
			if err != nil {
				return 0
			}
			return int64(len(list))
		},
	}
	// st is filled after the metrics are created, so read it at scrape time.
	g.LimiterErrors = func() int64 {
		if sr, ok := st.limiter.(ratelimit.StatsReporter); ok {
			return int64(sr.Stats().Errors)
		}
		return 0
	}
	return g
}

// serveMetrics serves /metrics on addr until ctx ends.
func serveMetrics(ctx context.Context, addr string, h http.Handler, log *slog.Logger) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	go func() {
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	log.Info("metrics serving", "listen", lis.Addr().String(), "path", "/metrics")
	return nil
}

package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
	"github.com/agentpdp/agentpdp/internal/audit"
	"github.com/agentpdp/agentpdp/internal/audit/redisstream"
	"github.com/agentpdp/agentpdp/internal/decision"
)

// auditTrail is the audit log as pdp serve wires it: the hash-chained files
// plus any extra sinks, and the gRPC feed for collectors.
type auditTrail struct {
	trail *audit.Log
	log   decision.AuditLog
	feed  pb.AuditServiceServer
}

func (a *auditTrail) close(ctx context.Context) error { return a.trail.Close(ctx) }

func openAudit(_ context.Context, o *serveOptions, st *sharedState, log *slog.Logger) (*auditTrail, error) {
	durability, err := audit.ParseDurability(o.auditDurability)
	if err != nil {
		return nil, err
	}
	feed := audit.NewBroadcaster()
	sinks := []audit.SinkConfig{{Name: "stream", Sink: feed}}
	for _, name := range o.auditSinks {
		switch name {
		case "stdout":
			sinks = append(sinks, audit.SinkConfig{Name: "stdout", Sink: audit.NewWriterSink(os.Stdout)})
		case "redis":
			if st.redis == nil {
				return nil, fmt.Errorf("audit-sinks: the redis sink needs --redis")
			}
			sinks = append(sinks, audit.SinkConfig{Name: "redis",
				Sink: redisstream.New(st.redis, redisstream.Options{Key: o.auditStream})})
		default:
			return nil, fmt.Errorf("audit-sinks: unknown sink %q (stdout, redis)", name)
		}
	}
	trail, err := audit.Open(audit.Options{Dir: o.auditDir, ChainID: o.replicaID, Durability: durability,
		MaxFileSize: o.auditMaxBytes, Sinks: sinks, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	log.Info("audit trail open", "dir", o.auditDir, "chain", trail.ChainID(), "durability", string(durability))
	return &auditTrail{trail: trail, log: trail, feed: audit.NewStreamServer(feed)}, nil
}

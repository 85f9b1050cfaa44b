// Package redisstream is the audit sink that appends chained records to a
// Redis Stream, one XADD per record, pipelined per batch.
package redisstream

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/agentpdp/agentpdp/internal/audit"
	"github.com/redis/go-redis/v9"
)

// Defaults for zero Options fields.
const (
	DefaultKey     = "agentpdp:audit"
	DefaultMaxLen  = 1_000_000
	DefaultTimeout = 5 * time.Second
)

// Options configure the sink.
type Options struct {
	// Key is the stream key; replicas share it, entries carry chain_id.
	Key string
	// MaxLen caps the stream approximately (XADD MAXLEN ~ N): Redis is a
	// feed for collectors, the files are the record of truth.
	MaxLen int64
	// Timeout bounds one batch's round trip.
	Timeout time.Duration
}

// Sink writes records to a Redis Stream. Each entry has the fields
// record (the exact hashed line), chain_id, seq, type and, for decisions,
// decision_id.
type Sink struct {
	c    redis.UniversalClient
	opts Options
}

var _ audit.Sink = (*Sink)(nil)

// New returns a sink on c; c stays the caller's to close.
func New(c redis.UniversalClient, opts Options) *Sink {
	if opts.Key == "" {
		opts.Key = DefaultKey
	}
	if opts.MaxLen == 0 {
		opts.MaxLen = DefaultMaxLen
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	return &Sink{c: c, opts: opts}
}

// Write adds the batch in one pipelined round trip.
func (s *Sink) Write(ctx context.Context, batch []audit.Entry) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, e := range batch {
			p.XAdd(ctx, &redis.XAddArgs{
				Stream: s.opts.Key,
				MaxLen: s.opts.MaxLen,
				Approx: true,
				Values: fields(e),
			})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("xadd %d records to %s: %w", len(batch), s.opts.Key, err)
	}
	return nil
}

// fields is a flat list, not a map, so field order is stable.
func fields(e audit.Entry) []any {
	r := e.Record
	f := []any{
		"chain_id", r.ChainID,
		"seq", strconv.FormatUint(r.Seq, 10),
		"type", r.Type,
	}
	if r.DecisionID != "" {
		f = append(f, "decision_id", r.DecisionID)
	}
	return append(f, "record", e.Line)
}

// Close does nothing: the client belongs to the caller.
func (s *Sink) Close(context.Context) error { return nil }

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"

	"github.com/agentpdp/agentpdp/internal/approval"
	"github.com/agentpdp/agentpdp/internal/ratelimit"
	"github.com/agentpdp/agentpdp/internal/redisconn"
	"github.com/agentpdp/agentpdp/internal/suspension"
)

// sharedState is what replicas share through Redis when --redis is set,
// and what lives in this process otherwise.
type sharedState struct {
	redis       redis.UniversalClient // nil without --redis
	limiter     ratelimit.Limiter
	approvals   approval.Store
	suspensions suspension.Store
}

// openState fills st, which the metrics already hold.
func openState(ctx context.Context, o *serveOptions, log *slog.Logger, st *sharedState) error {
	if o.redisURL == "" {
		st.limiter = ratelimit.NewMemory(ratelimit.MemoryOptions{})
		st.approvals = approval.NewMemory()
		st.suspensions = suspension.NewMemory()
		return nil
	}
	redis.SetLogger(redisLogger{log})
	client, err := redisconn.Open(ctx, o.redisURL, redisconn.Options{
		DialTimeout: o.redisTimeout, ReadTimeout: o.redisTimeout, WriteTimeout: o.redisTimeout,
	})
	if err != nil {
		return err
	}
	st.redis = client
	st.limiter = ratelimit.NewRedis(client, ratelimit.RedisOptions{Timeout: o.redisTimeout})
	st.approvals = approval.NewRedis(client, log)
	if st.suspensions, err = suspension.NewRedis(ctx, client, log); err != nil {
		client.Close()
		return err
	}
	log.Info("limits, approvals and suspensions shared in redis")
	return nil
}

func (s *sharedState) close(context.Context) error {
	err := errors.Join(s.limiter.Close(), s.approvals.Close(), s.suspensions.Close())
	if s.redis != nil {
		if cerr := s.redis.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// redisLogger sends go-redis's own messages (dial failures during an
// outage) through the service's structured log instead of bare stderr.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, "redis client", "detail", fmt.Sprintf(format, v...))
}

package main

import (
	"context"
	"log/slog"

	"github.com/redis/go-redis/v9"

	"github.com/agentpdp/agentpdp/internal/ratelimit"
	"github.com/agentpdp/agentpdp/internal/redisconn"
)

// sharedState is what replicas share through Redis when --redis is set,
// and what lives in this process otherwise.
type sharedState struct {
	redis   redis.UniversalClient // nil without --redis
	limiter ratelimit.Limiter
}

func openState(ctx context.Context, o *serveOptions, log *slog.Logger) (*sharedState, error) {
	st := &sharedState{}
	if o.redisURL == "" {
		st.limiter = ratelimit.NewMemory(ratelimit.MemoryOptions{})
		return st, nil
	}
	client, err := redisconn.Open(ctx, o.redisURL, redisconn.Options{
		DialTimeout: o.redisTimeout, ReadTimeout: o.redisTimeout, WriteTimeout: o.redisTimeout,
	})
	if err != nil {
		return nil, err
	}
	st.redis = client
	st.limiter = ratelimit.NewRedis(client, ratelimit.RedisOptions{Timeout: o.redisTimeout})
	log.Info("shared state in redis", "limits", true)
	return st, nil
}

func (s *sharedState) close(context.Context) error {
	err := s.limiter.Close()
	if s.redis != nil {
		if cerr := s.redis.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

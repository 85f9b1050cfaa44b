// Package redisconn opens the one Redis client that a PDP process shares
// between its Redis-backed parts: the rate limiter, the approvals and
// suspension store, and the audit stream sink.
//
// It parses a redis:// or rediss:// URL, applies short timeouts suited to a
// component that sits on every decision's path (50 ms by default), and pings
// the server once so that a wrong address fails at start with a clear error
// rather than on the first decision.
package redisconn

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultTimeout is the default dial, read and write timeout.
const DefaultTimeout = 50 * time.Millisecond

// DefaultPingTimeout bounds the ping Open sends before returning.
const DefaultPingTimeout = 2 * time.Second

// Options tune the client. A zero field keeps the value given in the URL's
// query (e.g. redis://host:6379/0?read_timeout=100ms&pool_size=20), and
// failing that the default written beside it. A field set here wins over the
// URL.
type Options struct {
	// DialTimeout, ReadTimeout and WriteTimeout default to DefaultTimeout
	// (50 ms). Context deadlines are honoured as well (the client is built
	// with ContextTimeoutEnabled), so a caller's shorter deadline wins.
	DialTimeout  time.Duration
	ReadTimeout  time.Duration
	WriteTimeout time.Duration

	// PoolSize is the number of pooled connections; 0 keeps go-redis's
	// default of 10 per GOMAXPROCS.
	PoolSize int

	// MaxRetries is how often a command failing on a network error is
	// retried within its deadline; 0 keeps go-redis's default (3), -1
	// disables retries.
	MaxRetries int

	// ClientName is sent with CLIENT SETNAME on every connection, so the
	// PDP's connections are recognisable in CLIENT LIST. Default "agentpdp".
	ClientName string

	// PingTimeout bounds the startup ping; default DefaultPingTimeout. A
	// negative value skips the ping.
	PingTimeout time.Duration
}

// Open parses rawURL (redis://[user:password@]host[:port][/db][?opts] or
// rediss:// for TLS), builds a client and pings the server. On failure it
// returns an error of the form "redis at URL: CAUSE" with any password in
// the URL redacted, e.g.
//
//	redis at redis://127.0.0.1:6390: dial tcp 127.0.0.1:6390: connect: connection refused
//
// The returned client reconnects by itself; close it when done. It is a
// redis.UniversalClient so that a Cluster client can be returned later
// without changing callers.
func Open(ctx context.Context, rawURL string, opts Options) (redis.UniversalClient, error) {
	shown := redact(rawURL)
	ro, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis at %s: invalid URL: %w", shown, err)
	}
	apply(ro, opts)

	client := redis.NewClient(ro)
	if opts.PingTimeout < 0 {
		return client, nil
	}
	pt := opts.PingTimeout
	if pt == 0 {
		pt = DefaultPingTimeout
	}
	pctx, cancel := context.WithTimeout(ctx, pt)
	defer cancel()
	if err := client.Ping(pctx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("redis at %s: %w", shown, err)
	}
	return client, nil
}

// apply merges opts and the defaults into the options parsed from the URL.
func apply(ro *redis.Options, opts Options) {
	pick := func(explicit, fromURL time.Duration) time.Duration {
		switch {
		case explicit != 0:
			return explicit
		case fromURL != 0:
			return fromURL
		default:
			return DefaultTimeout
		}
	}
	ro.DialTimeout = pick(opts.DialTimeout, ro.DialTimeout)
	ro.ReadTimeout = pick(opts.ReadTimeout, ro.ReadTimeout)
	ro.WriteTimeout = pick(opts.WriteTimeout, ro.WriteTimeout)
	if opts.PoolSize != 0 {
		ro.PoolSize = opts.PoolSize
	}
	if opts.MaxRetries != 0 {
		ro.MaxRetries = opts.MaxRetries
	}
	// go-redis re-dials a refused connection 5 times, 100 ms apart, inside
	// one command attempt: useless within a 50 ms budget, and it makes a
	// wrong address take seconds to report. Command retries (MaxRetries)
	// still re-dial.
	if ro.DialerRetries == 0 {
		ro.DialerRetries = 1
	}
	switch {
	case opts.ClientName != "":
		ro.ClientName = opts.ClientName
	case ro.ClientName == "":
		ro.ClientName = "agentpdp"
	}
	ro.ContextTimeoutEnabled = true
}

// redact hides the password of a URL for error messages. A string that does
// not parse as a URL is not shown at all, since it may hold a secret.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// Package ratelimit charges sliding-window rate limits: in memory for one
// process (NewMemory, the default), or in Redis so that many replicas share
// one set of limits (NewRedis).
//
// Both implementations keep an exact sliding log: a request is admitted when
// the costs charged to its counter during the last Window, plus its own
// Cost, do not exceed Limit. See docs/RATELIMIT.md.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// ErrUnavailable wraps backend failures (Redis down or slow), so the caller
// can fail closed with reason rate_limit_unavailable, or open when configured.
// The limiter itself never decides to fail open: on ErrUnavailable no request
// was admitted by it. Test with errors.Is(err, ErrUnavailable); the wrapped
// cause (e.g. context.DeadlineExceeded) is reachable with errors.Is too.
var ErrUnavailable = errors.New("rate limiter unavailable")

// ErrInvalidRequest is wrapped by the error Charge returns for a request it
// cannot evaluate (a Window under a microsecond, or the same counter twice
// in one call). It points at a policy bug, not at the backend.
var ErrInvalidRequest = errors.New("invalid rate limit request")

// Request is one limit to charge. A decision sends all the limits that apply
// to one call together, and they all belong to one policy.
type Request struct {
	// Policy and ID name the limit; Key is its evaluated key (e.g. a principal
	// id). The counter is per (Policy, ID, Key). Any bytes are allowed in
	// each; one call must not name the same counter twice.
	Policy string
	ID     string
	Key    string
	// Limit is the most the counter may hold within Window; 0 or less denies
	// every call. Window must be at least a microsecond.
	Limit  int64
	Window time.Duration
	// Cost is what this call spends, at least 1 (a smaller value counts as 1).
	Cost int64
}

// Result is the state of one limit after the call, in the order of the
// requests.
type Result struct {
	// Allowed says whether this request fits its own limit. The call was
	// charged only if every request in it was Allowed.
	Allowed bool
	Limit   int64
	// Remaining is what the counter can still take in the current window
	// after this call (never negative).
	Remaining int64
	// Reset is when the oldest charge still in the window leaves it, which
	// is when Remaining next grows. For an empty window it is now + Window.
	Reset time.Time
	// Charged is what this call spent: Cost when every request was allowed
	// and charging was asked for, else 0.
	Charged int64
}

// Limiter charges limits atomically: either every request in one call is
// within its limit and all are charged, or none is charged.
type Limiter interface {
	// Charge checks reqs and, when charge is true and all fit, spends them.
	// With charge false (dry runs) it only reports. It returns one Result
	// per request. Errors wrap ErrUnavailable (backend down or too slow) or
	// ErrInvalidRequest.
	Charge(ctx context.Context, reqs []Request, charge bool) ([]Result, error)
	Close() error
}

// Stats are running totals a limiter exposes for metrics.
type Stats struct {
	// Calls counts Charge calls.
	Calls uint64
	// Errors counts Charge calls that returned an error.
	Errors uint64
	// CacheHits counts Charge calls answered from the local over-limit
	// cache without a Redis round trip (always 0 in memory).
	CacheHits uint64
	// RoundTrips counts the pipelines sent to Redis (Redis limiter only);
	// Calls - CacheHits over RoundTrips is the batching achieved.
	RoundTrips uint64
}

// StatsReporter is implemented by the limiters of this package:
//
//	if s, ok := lim.(ratelimit.StatsReporter); ok { st := s.Stats() ... }
type StatsReporter interface {
	Stats() Stats
}

// counterKey names one counter.
type counterKey struct {
	Policy, ID, Key string
}

func (r *Request) counter() counterKey { return counterKey{r.Policy, r.ID, r.Key} }

// maxLimit keeps limits and costs exact in Redis's Lua numbers (doubles).
const maxLimit = 1 << 53

// normalize clamps Cost and Limit into range and checks the window. It does
// not modify the caller's slice.
func normalize(r Request) (Request, error) {
	if r.Window < time.Microsecond {
		return r, fmt.Errorf("%w: limit %s/%s: window %s is under 1µs", ErrInvalidRequest, r.Policy, r.ID, r.Window)
	}
	if r.Cost < 1 {
		r.Cost = 1
	}
	if r.Cost > maxLimit {
		r.Cost = maxLimit
	}
	if r.Limit < 0 {
		r.Limit = 0
	}
	if r.Limit > maxLimit {
		r.Limit = maxLimit
	}
	return r, nil
}

// gate is what every limiter does before it looks at a counter: count
// the call, refuse once closed, and check and normalise the requests.
type gate struct {
	name          string // in errors: "in-memory limiter"
	closed        atomic.Bool
	calls, errors atomic.Uint64
}

// enter appends reqs, normalised, to dst. Its errors wrap ErrUnavailable
// (closed) or ErrInvalidRequest, and are counted.
func (g *gate) enter(reqs []Request, dst []Request) ([]Request, error) {
	g.calls.Add(1)
	if g.closed.Load() {
		return nil, g.fail(fmt.Errorf("%w: %s closed", ErrUnavailable, g.name))
	}
	if err := checkDuplicates(reqs); err != nil {
		return nil, g.fail(err)
	}
	for _, r := range reqs {
		nr, err := normalize(r)
		if err != nil {
			return nil, g.fail(err)
		}
		dst = append(dst, nr)
	}
	return dst, nil
}

// fail counts err and returns it.
func (g *gate) fail(err error) error {
	g.errors.Add(1)
	return err
}

// checkDuplicates refuses a call naming one counter twice: the two costs
// would have to share one log under possibly different windows.
func checkDuplicates(reqs []Request) error {
	for i := 1; i < len(reqs); i++ {
		for j := 0; j < i; j++ {
			if reqs[i].Policy == reqs[j].Policy && reqs[i].ID == reqs[j].ID && reqs[i].Key == reqs[j].Key {
				return fmt.Errorf("%w: limit %s/%s key %q appears twice in one call", ErrInvalidRequest, reqs[i].Policy, reqs[i].ID, reqs[i].Key)
			}
		}
	}
	return nil
}

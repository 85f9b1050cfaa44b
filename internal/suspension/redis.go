package suspension

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
)

// Redis layout, shared by every replica on the same server:
//
//	agentpdp:suspensions          hash: field agent + "\x00" + principal
//	                              (principal empty: agent-wide), value the
//	                              proto-marshalled pb.Suspension
//	agentpdp:suspensions:events   Pub/Sub channel; any message means
//	                              "the hash changed, reload it"
//
// Check answers from a local snapshot of the hash, never from Redis: a
// background goroutine reloads it every RefreshInterval and at once when
// an event arrives, so a suspension made on any replica holds on every
// replica within RefreshInterval (or a Pub/Sub round trip when events
// flow). While Redis is unreachable the last snapshot keeps answering.
// Writes through a store update its own snapshot immediately as well.
const (
	HashKey       = "agentpdp:suspensions"
	EventsChannel = "agentpdp:suspensions:events"
)

// RefreshInterval is how often the snapshot is reloaded without an event.
const RefreshInterval = 250 * time.Millisecond

// refreshTimeout bounds one reload.
const refreshTimeout = time.Second

// pruneGrace is how long past its expiry a suspension stays in Redis before
// a replica removes it, so that replicas whose clocks run a little behind
// see it expire by themselves (active() already ignores it).
const pruneGrace = time.Minute

// failLogEvery is how often a continuing outage is logged again.
const failLogEvery = 30 * time.Second

// pruneScript deletes a field only if it still holds the value read, so it
// never removes a suspension another replica has just renewed.
var pruneScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
`)

func field(agentID, principalID string) string { return agentID + "\x00" + principalID }

// Redis keeps suspensions in Redis and answers Check from a snapshot.
type Redis struct {
	client redis.UniversalClient
	log    *slog.Logger
	snap   atomic.Pointer[table]

	// mu orders snapshot installs: writes bumps on every local change, and
	// a reload that began before a local change does not install its
	// (older) result, so a store always sees its own writes.
	mu     sync.Mutex
	writes uint64
	raw    map[string]string // the hash as last installed

	kick   chan struct{} // asks for a reload now
	cancel context.CancelFunc
	ps     *redis.PubSub
	wg     sync.WaitGroup
	once   sync.Once

	failing   bool
	lastFailL time.Time
}

// NewRedis loads the first snapshot (failing if Redis does not answer),
// then keeps it fresh in the background until Close. The client is the
// caller's: Close does not close it.
func NewRedis(ctx context.Context, client redis.UniversalClient, log *slog.Logger) (Store, error) {
	if log == nil {
		log = slog.Default()
	}
	r := &Redis{client: client, log: log, kick: make(chan struct{}, 1)}
	empty := table{}
	r.snap.Store(&empty)
	if err := r.reload(ctx); err != nil {
		return nil, err
	}
	bg, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.ps = client.Subscribe(bg, EventsChannel)
	r.wg.Add(2)
	go r.listen(r.ps.Channel())
	go r.loop(bg)
	return r, nil
}

func wrap(op string, err error) error {
	return fmt.Errorf("suspension store: %s: redis: %w", op, err)
}

func (r *Redis) Suspend(ctx context.Context, s *pb.Suspension) error {
	if s.GetAgentId() == "" {
		return errors.New("suspension store: suspend: empty agent id")
	}
	data, err := proto.Marshal(s)
	if err != nil {
		return fmt.Errorf("suspension store: suspend: %w", err)
	}
	f := field(s.AgentId, s.PrincipalId)
	if _, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, HashKey, f, data)
		p.Publish(ctx, EventsChannel, "suspend")
		return nil
	}); err != nil {
		return wrap("suspend", err)
	}
	r.applyLocal(func(t table, raw map[string]string) {
		t[key{s.AgentId, s.PrincipalId}] = proto.Clone(s).(*pb.Suspension)
		raw[f] = string(data)
	})
	return nil
}

func (r *Redis) Resume(ctx context.Context, agentID, principalID string) (bool, error) {
	f := field(agentID, principalID)
	var del *redis.IntCmd
	if _, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		del = p.HDel(ctx, HashKey, f)
		p.Publish(ctx, EventsChannel, "resume")
		return nil
	}); err != nil {
		return false, wrap("resume", err)
	}
	r.applyLocal(func(t table, raw map[string]string) {
		delete(t, key{agentID, principalID})
		delete(raw, f)
	})
	return del.Val() > 0, nil
}

// List reads Redis, so operators see the shared state, not this replica's
// snapshot.
func (r *Redis) List(ctx context.Context, agentID string, now time.Time) ([]*pb.Suspension, error) {
	m, err := r.client.HGetAll(ctx, HashKey).Result()
	if err != nil {
		return nil, wrap("list", err)
	}
	return r.decode(m).list(agentID, now), nil
}

// Check answers from the local snapshot: no round trip.
func (r *Redis) Check(agentID, principalID string, now time.Time) *pb.Suspension {
	return r.snap.Load().check(agentID, principalID, now)
}

// Close stops the background goroutines. It does not close the client.
func (r *Redis) Close() error {
	var err error
	r.once.Do(func() {
		r.cancel()
		err = r.ps.Close()
		r.wg.Wait()
	})
	return err
}

// applyLocal changes a copy of the snapshot and installs it.
func (r *Redis) applyLocal(change func(table, map[string]string)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := maps.Clone(*r.snap.Load())
	raw := maps.Clone(r.raw)
	if raw == nil {
		raw = map[string]string{}
	}
	change(t, raw)
	r.writes++
	r.raw = raw
	r.snap.Store(&t)
}

// reload reads the whole hash and installs it as the snapshot.
func (r *Redis) reload(ctx context.Context) error {
	r.mu.Lock()
	start := r.writes
	r.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	m, err := r.client.HGetAll(ctx, HashKey).Result()
	if err != nil {
		return wrap("load", err)
	}

	r.mu.Lock()
	switch {
	case r.writes != start:
		// A local write raced this read; the read may predate it.
		r.mu.Unlock()
		r.trigger()
		return nil
	case r.raw != nil && maps.Equal(r.raw, m):
		r.mu.Unlock()
	default:
		t := r.decode(m)
		r.raw = m
		r.snap.Store(&t)
		r.mu.Unlock()
	}
	r.prune(ctx, m)
	return nil
}

// decode builds a table from the hash, skipping unreadable entries.
func (r *Redis) decode(m map[string]string) table {
	t := make(table, len(m))
	for f, v := range m {
		agent, principal, ok := strings.Cut(f, "\x00")
		if !ok {
			r.log.Warn("suspension store: malformed field", "field", f)
			continue
		}
		s := &pb.Suspension{}
		if err := proto.Unmarshal([]byte(v), s); err != nil {
			r.log.Warn("suspension store: unreadable suspension", "agent", agent, "principal", principal, "err", err)
			continue
		}
		t[key{agent, principal}] = s
	}
	return t
}

// prune removes suspensions that expired more than pruneGrace ago.
func (r *Redis) prune(ctx context.Context, m map[string]string) {
	now := time.Now()
	for k, s := range *r.snap.Load() {
		if s.ExpiresAt == nil || now.Before(s.ExpiresAt.AsTime().Add(pruneGrace)) {
			continue
		}
		f := field(k.agent, k.principal)
		v, ok := m[f]
		if !ok {
			continue
		}
		if err := pruneScript.Run(ctx, r.client, []string{HashKey}, f, v).Err(); err != nil {
			r.log.Debug("suspension store: pruning an expired suspension failed", "err", err)
			return
		}
	}
}

func (r *Redis) trigger() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// listen turns every event into a reload request.
func (r *Redis) listen(msgs <-chan *redis.Message) {
	defer r.wg.Done()
	for range msgs {
		r.trigger()
	}
}

// loop reloads the snapshot every RefreshInterval and on request.
func (r *Redis) loop(ctx context.Context) {
	defer r.wg.Done()
	tick := time.NewTicker(RefreshInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-r.kick:
		}
		err := r.reload(ctx)
		if ctx.Err() != nil {
			return
		}
		r.noteResult(err)
	}
}

// noteResult logs the start of an outage, every failLogEvery while it
// lasts, and its end.
func (r *Redis) noteResult(err error) {
	now := time.Now()
	switch {
	case err != nil && (!r.failing || now.Sub(r.lastFailL) >= failLogEvery):
		r.log.Error("suspensions could not be refreshed from redis; checking against the last snapshot", "err", err)
		r.failing, r.lastFailL = true, now
	case err == nil && r.failing:
		r.log.Info("suspensions refreshed from redis again")
		r.failing = false
	}
}

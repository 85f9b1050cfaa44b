package approval

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
)

// Redis layout. Every approval is one hash; the pending index and the
// events channel are shared by all replicas on the same Redis.
//
//	agentpdp:approval:{<id>}     hash: status, digest, expires_ms, approver,
//	                             note, decided_ms, used_ms, data
//	agentpdp:approvals:pending   sorted set of ids, scored by expires_ms
//	agentpdp:approvals:events    Pub/Sub channel, payload "<kind>:<id>"
//
// data is the proto-marshalled pb.Approval as created; the other fields are
// the mutable state, merged over it when read. status is the number of the
// pb.ApprovalStatus; times are Unix milliseconds (expires_ms 0: never).
//
// Decide and Use each run one Lua script on the approval's hash alone, so
// they are atomic: of concurrent calls on any number of replicas exactly one
// decides (or spends) the approval. Scripts touch a single key (the hash
// tag keeps them Cluster-safe); the pending index is maintained beside them
// and is only an index: ListPending re-checks every entry against its hash
// and drops stale ones.
//
// Expiry inside the scripts is judged by the now the caller passes (in
// milliseconds), not by Redis's clock: the decider takes one clock reading
// per decision and the check and the spend of an approval must agree with
// it. The memory store compares full-precision times; this one compares
// milliseconds (both truncated), the same way in Go and in Lua.
//
// An approval's hash expires Retention after the approval does (Retention
// after it is created if it has no expiry), so nothing grows without bound.
const (
	keyPrefix     = "agentpdp:approval:"
	PendingKey    = "agentpdp:approvals:pending"
	EventsChannel = "agentpdp:approvals:events"
)

// Retention is how long an approval's record outlives its expiry, so that
// late retries get "expired" or "already used" rather than "not found".
const Retention = 24 * time.Hour

// Key is the Redis key of approval id's hash.
func Key(id string) string { return keyPrefix + "{" + id + "}" }

// subscribeWait bounds how long the first Subscribe waits for Redis to
// confirm the subscription, so events published right after it arrive.
const subscribeWait = 2 * time.Second

// eventFetchTimeout bounds the read of an approval an event names.
const eventFetchTimeout = time.Second

// effective mirrors effectiveStatus for the millisecond fields, exactly as
// the scripts compute it.
const luaEffective = `
local function effective(st, exp, now)
  if (st == 1 or st == 2) and exp > 0 and now >= exp then return 4 end
  return st
end
`

// decideScript: KEYS[1] the approval; ARGV now_ms, new status, approver,
// note, events channel, event payload. Returns {code} or {"ok", HGETALL...}.
var decideScript = redis.NewScript(luaEffective + `
local f = redis.call('HMGET', KEYS[1], 'status', 'expires_ms')
if not f[1] then return {'not_found'} end
local now = tonumber(ARGV[1])
local eff = effective(tonumber(f[1]), tonumber(f[2]) or 0, now)
if eff == 4 then return {'expired'} end
if eff ~= 1 then return {'not_pending'} end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'approver', ARGV[3], 'note', ARGV[4], 'decided_ms', ARGV[1])
redis.call('PUBLISH', ARGV[5], ARGV[6])
local out = redis.call('HGETALL', KEYS[1])
table.insert(out, 1, 'ok')
return out
`)

// useScript: KEYS[1] the approval; ARGV now_ms, digest, dry ("1" or "0"),
// events channel, event payload. Returns {code} or {"ok", HGETALL...}.
var useScript = redis.NewScript(luaEffective + `
local f = redis.call('HMGET', KEYS[1], 'status', 'expires_ms', 'digest')
if not f[1] then return {'not_found'} end
local now = tonumber(ARGV[1])
local eff = effective(tonumber(f[1]), tonumber(f[2]) or 0, now)
if eff == 2 then
  if f[3] ~= ARGV[2] then return {'digest_mismatch'} end
  if ARGV[3] ~= '1' then
    redis.call('HSET', KEYS[1], 'status', 5, 'used_ms', ARGV[1])
    redis.call('PUBLISH', ARGV[4], ARGV[5])
  end
  local out = redis.call('HGETALL', KEYS[1])
  table.insert(out, 1, 'ok')
  return out
end
if eff == 1 then return {'not_approved'} end
if eff == 3 then return {'rejected'} end
if eff == 5 then return {'used'} end
return {'expired'}
`)

var scriptErrors = map[string]error{
	"not_found":       ErrNotFound,
	"expired":         ErrExpired,
	"not_pending":     ErrNotPending,
	"not_approved":    ErrNotApproved,
	"rejected":        ErrRejected,
	"used":            ErrUsed,
	"digest_mismatch": ErrDigestMismatch,
}

// Redis keeps approvals in Redis, shared by every replica on the same
// server. Redis failures come back as errors wrapping the client's error
// (never as one of the sentinel errors), which the decider turns into DENY.
type Redis struct {
	client redis.UniversalClient
	log    *slog.Logger
	bus    *bus

	ctx    context.Context // ends on Close
	cancel context.CancelFunc

	startOnce sync.Once
	mu        sync.Mutex
	ps        *redis.PubSub // nil until the first Subscribe
	done      chan struct{} // closed when the event dispatcher returns
	closeOnce sync.Once
}

// NewRedis returns a store shared by every replica on client. The client
// is the caller's: Close does not close it.
func NewRedis(client redis.UniversalClient, log *slog.Logger) Store {
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Redis{client: client, log: log, bus: newBus(), ctx: ctx, cancel: cancel}
}

func wrap(op string, err error) error {
	return fmt.Errorf("approval store: %s: redis: %w", op, err)
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func eventPayload(kind pb.ApprovalEvent_Kind, id string) string {
	return strconv.Itoa(int(kind)) + ":" + id
}

func (r *Redis) Create(ctx context.Context, a *pb.Approval) error {
	if a.GetId() == "" {
		return errors.New("approval store: create: empty id")
	}
	data, err := proto.Marshal(a)
	if err != nil {
		return fmt.Errorf("approval store: create: %w", err)
	}
	var expMs int64
	score := math.Inf(1)
	ttl := Retention
	if a.ExpiresAt != nil {
		exp := a.ExpiresAt.AsTime()
		expMs = ms(exp)
		score = float64(expMs)
		// Relative to this process's clock, so an approval whose expiry is
		// already past (or a clock far from Redis's) still keeps its record
		// for Retention.
		ttl = max(time.Until(exp), 0) + Retention
	}
	var decidedMs int64
	if a.DecidedAt != nil {
		decidedMs = ms(a.DecidedAt.AsTime())
	}
	key := Key(a.Id)
	_, err = r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key,
			"status", int(a.Status), "digest", a.Digest, "expires_ms", expMs,
			"approver", a.Approver, "note", a.Note, "decided_ms", decidedMs, "data", data)
		p.PExpire(ctx, key, ttl)
		if a.Status == pb.ApprovalStatus_APPROVAL_STATUS_PENDING {
			p.ZAdd(ctx, PendingKey, redis.Z{Score: score, Member: a.Id})
		}
		p.Publish(ctx, EventsChannel, eventPayload(pb.ApprovalEvent_KIND_CREATED, a.Id))
		return nil
	})
	if err != nil {
		return wrap("create", err)
	}
	return nil
}

func (r *Redis) Get(ctx context.Context, id string, now time.Time) (*pb.Approval, error) {
	m, err := r.client.HGetAll(ctx, Key(id)).Result()
	if err != nil {
		return nil, wrap("get", err)
	}
	if len(m) == 0 {
		return nil, ErrNotFound
	}
	a, err := fromHash(m)
	if err != nil {
		return nil, fmt.Errorf("approval store: get %s: %w", id, err)
	}
	a.Status = effectiveMs(a.Status, m, now)
	return a, nil
}

func (r *Redis) ListPending(ctx context.Context, f Filter, now time.Time) ([]*pb.Approval, error) {
	nowMs := ms(now)
	// Index entries whose records have expired are gone for good.
	if err := r.client.ZRemRangeByScore(ctx, PendingKey, "-inf",
		"("+strconv.FormatInt(nowMs-Retention.Milliseconds(), 10)).Err(); err != nil {
		return nil, wrap("list pending", err)
	}
	ids, err := r.client.ZRangeByScore(ctx, PendingKey, &redis.ZRangeBy{
		Min: "(" + strconv.FormatInt(nowMs, 10), Max: "+inf"}).Result()
	if err != nil {
		return nil, wrap("list pending", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	if _, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGetAll(ctx, Key(id))
		}
		return nil
	}); err != nil {
		return nil, wrap("list pending", err)
	}
	var out []*pb.Approval
	var stale []any
	for i, c := range cmds {
		m := c.Val()
		if len(m) == 0 {
			stale = append(stale, ids[i])
			continue
		}
		a, err := fromHash(m)
		if err != nil {
			r.log.WarnContext(ctx, "approval store: unreadable approval", "approval_id", ids[i], "err", err)
			continue
		}
		if a.Status != pb.ApprovalStatus_APPROVAL_STATUS_PENDING {
			stale = append(stale, ids[i]) // decided; its ZREM was lost
			continue
		}
		if effectiveMs(a.Status, m, now) == pb.ApprovalStatus_APPROVAL_STATUS_PENDING && f.match(a) {
			out = append(out, a)
		}
	}
	if len(stale) > 0 {
		if err := r.client.ZRem(ctx, PendingKey, stale...).Err(); err != nil {
			r.log.DebugContext(ctx, "approval store: pruning the pending index failed", "err", err)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.AsTime().Before(out[j].CreatedAt.AsTime()) })
	return out, nil
}

func (r *Redis) Decide(ctx context.Context, id string, approve bool, approver, note string, now time.Time) (*pb.Approval, error) {
	st := pb.ApprovalStatus_APPROVAL_STATUS_REJECTED
	if approve {
		st = pb.ApprovalStatus_APPROVAL_STATUS_APPROVED
	}
	res, err := decideScript.Run(ctx, r.client, []string{Key(id)}, ms(now), int(st), approver, note,
		EventsChannel, eventPayload(pb.ApprovalEvent_KIND_DECIDED, id)).Slice()
	if err != nil {
		return nil, wrap("decide", err)
	}
	a, err := scriptResult(res, now)
	if err != nil {
		return nil, err
	}
	// The hash is the truth; the index entry only speeds ListPending up,
	// which drops it anyway if this fails.
	if err := r.client.ZRem(ctx, PendingKey, id).Err(); err != nil {
		r.log.WarnContext(ctx, "approval store: removing a decided approval from the pending index failed",
			"approval_id", id, "err", err)
	}
	return a, nil
}

func (r *Redis) Use(ctx context.Context, id, digest string, now time.Time, dryRun bool) (*pb.Approval, error) {
	dry := "0"
	if dryRun {
		dry = "1"
	}
	res, err := useScript.Run(ctx, r.client, []string{Key(id)}, ms(now), digest, dry,
		EventsChannel, eventPayload(pb.ApprovalEvent_KIND_USED, id)).Slice()
	if err != nil {
		return nil, wrap("use", err)
	}
	return scriptResult(res, now)
}

// scriptResult turns a script's reply into the approval or the sentinel
// error its code names.
func scriptResult(res []any, now time.Time) (*pb.Approval, error) {
	if len(res) == 0 {
		return nil, errors.New("approval store: empty script reply")
	}
	code, _ := res[0].(string)
	if code != "ok" {
		if err, ok := scriptErrors[code]; ok {
			return nil, err
		}
		return nil, fmt.Errorf("approval store: unexpected script reply %q", code)
	}
	m := make(map[string]string, (len(res)-1)/2)
	for i := 1; i+1 < len(res); i += 2 {
		k, _ := res[i].(string)
		v, _ := res[i+1].(string)
		m[k] = v
	}
	a, err := fromHash(m)
	if err != nil {
		return nil, fmt.Errorf("approval store: %w", err)
	}
	a.Status = effectiveMs(a.Status, m, now)
	return a, nil
}

// fromHash merges the mutable fields over the approval as created. The
// status is the stored one; callers apply effectiveMs.
func fromHash(m map[string]string) (*pb.Approval, error) {
	a := &pb.Approval{}
	if err := proto.Unmarshal([]byte(m["data"]), a); err != nil {
		return nil, fmt.Errorf("decode approval: %w", err)
	}
	st, err := strconv.Atoi(m["status"])
	if err != nil {
		return nil, fmt.Errorf("decode approval status %q: %w", m["status"], err)
	}
	a.Status = pb.ApprovalStatus(st)
	if v, ok := m["digest"]; ok {
		a.Digest = v
	}
	if v, ok := m["approver"]; ok {
		a.Approver = v
	}
	if v, ok := m["note"]; ok {
		a.Note = v
	}
	if d, _ := strconv.ParseInt(m["decided_ms"], 10, 64); d > 0 {
		a.DecidedAt = timestamppb.New(time.UnixMilli(d))
	}
	return a, nil
}

// effectiveMs is effectiveStatus computed on the stored milliseconds, as
// the scripts compute it.
func effectiveMs(st pb.ApprovalStatus, m map[string]string, now time.Time) pb.ApprovalStatus {
	exp, _ := strconv.ParseInt(m["expires_ms"], 10, 64)
	switch st {
	case pb.ApprovalStatus_APPROVAL_STATUS_PENDING, pb.ApprovalStatus_APPROVAL_STATUS_APPROVED:
		if exp > 0 && ms(now) >= exp {
			return pb.ApprovalStatus_APPROVAL_STATUS_EXPIRED
		}
	}
	return st
}

// Subscribe delivers the events of every replica: each store subscribes
// once to the events channel (on the first Subscribe, which waits briefly
// for Redis to confirm it), reads the approval each event names and fans
// it out to local subscribers without blocking. go-redis reconnects and
// resubscribes after a Redis outage; events published meanwhile are lost,
// which WaitApproval's polling covers.
func (r *Redis) Subscribe(ctx context.Context) <-chan Event {
	ch := r.bus.subscribe(ctx)
	r.startOnce.Do(r.startEvents)
	return ch
}

func (r *Redis) startEvents() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx.Err() != nil {
		return // closed
	}
	ps := r.client.Subscribe(r.ctx, EventsChannel)
	wctx, cancel := context.WithTimeout(r.ctx, subscribeWait)
	_, err := ps.Receive(wctx)
	cancel()
	if err != nil {
		r.log.Warn("approval events: subscribing failed; retrying in the background", "channel", EventsChannel, "err", err)
	}
	r.ps = ps
	r.done = make(chan struct{})
	go r.dispatch(ps.Channel(), r.done)
}

func (r *Redis) dispatch(msgs <-chan *redis.Message, done chan struct{}) {
	defer close(done)
	for msg := range msgs {
		kind, id, ok := parseEvent(msg.Payload)
		if !ok {
			r.log.Warn("approval events: malformed event", "payload", msg.Payload)
			continue
		}
		if !r.bus.hasSubscribers() {
			continue
		}
		ctx, cancel := context.WithTimeout(r.ctx, eventFetchTimeout)
		a, err := r.Get(ctx, id, time.Now())
		cancel()
		if err != nil {
			if r.ctx.Err() == nil {
				r.log.Warn("approval events: reading the approval of an event failed", "approval_id", id, "err", err)
			}
			continue
		}
		r.bus.publish(Event{Kind: kind, Approval: a})
	}
}

func parseEvent(p string) (pb.ApprovalEvent_Kind, string, bool) {
	k, id, ok := strings.Cut(p, ":")
	if !ok || id == "" {
		return 0, "", false
	}
	n, err := strconv.Atoi(k)
	if err != nil {
		return 0, "", false
	}
	return pb.ApprovalEvent_Kind(n), id, true
}

func (b *bus) hasSubscribers() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs) > 0
}

// Close stops the event subscription. It does not close the client.
func (r *Redis) Close() error {
	var err error
	r.closeOnce.Do(func() {
		r.cancel()
		r.mu.Lock()
		ps, done := r.ps, r.done
		r.mu.Unlock()
		if ps != nil {
			err = ps.Close()
			<-done
		}
	})
	return err
}

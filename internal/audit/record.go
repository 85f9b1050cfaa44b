// Package audit turns decisions into a tamper-evident trail: hash-chained
// records written off the request path to one or more sinks.
package audit

import (
	"context"
	"time"
)

// Record types.
const (
	TypeDecision   = "decision"
	TypeOutcome    = "outcome"
	TypeApproval   = "approval"
	TypeSuspension = "suspension"
)

// Record is one entry of the trail. Field order is the encoding order, so it
// is part of the documented canonical form (docs/AUDIT.md): append fields,
// never reorder them.
type Record struct {
	Type       string    `json:"type"`
	ChainID    string    `json:"chain_id,omitempty"`
	Seq        uint64    `json:"seq,omitempty"`
	Time       time.Time `json:"time"`
	DecisionID string    `json:"decision_id,omitempty"`

	Agent     *Agent         `json:"agent,omitempty"`
	Principal *Principal     `json:"principal,omitempty"`
	Tool      string         `json:"tool,omitempty"`
	Args      map[string]any `json:"args,omitempty"`
	Resource  *Resource      `json:"resource,omitempty"`
	Inputs    []Input        `json:"inputs,omitempty"`

	Decision       string      `json:"decision,omitempty"`
	PolicyDecision string      `json:"policy_decision,omitempty"`
	Mode           string      `json:"mode,omitempty"`
	DryRun         bool        `json:"dry_run,omitempty"`
	Warning        string      `json:"warning,omitempty"`
	Policy         string      `json:"policy,omitempty"`
	PolicyVersion  string      `json:"policy_version,omitempty"`
	Reasons        []Reason    `json:"reasons,omitempty"`
	RateLimits     []RateLimit `json:"rate_limits,omitempty"`
	Content        *Content    `json:"content,omitempty"`
	ApprovalID     string      `json:"approval_id,omitempty"`
	LatencyNS      int64       `json:"latency_ns,omitempty"`
	TraceID        string      `json:"trace_id,omitempty"`

	// Set on outcome, approval and suspension records.
	Outcome    *Outcome    `json:"outcome,omitempty"`
	Approval   *Approval   `json:"approval,omitempty"`
	Suspension *Suspension `json:"suspension,omitempty"`

	PrevHash string `json:"prev_hash,omitempty"`
	Hash     string `json:"hash,omitempty"`

	// ArgsFrom, when set and Args is not, is what the record holds as
	// args, encoded in Args' place straight from the request (see
	// ProtoArgs). Not a field of the encoding.
	ArgsFrom *ProtoArgs `json:"-"`
}

type Agent struct {
	ID        string         `json:"id"`
	Framework string         `json:"framework,omitempty"`
	SessionID string         `json:"session_id,omitempty"`
	Attrs     map[string]any `json:"attributes,omitempty"`
}

type Principal struct {
	ID    string         `json:"id,omitempty"`
	Roles []string       `json:"roles,omitempty"`
	Attrs map[string]any `json:"attributes,omitempty"`
}

type Resource struct {
	Kind  string         `json:"kind,omitempty"`
	ID    string         `json:"id,omitempty"`
	Attrs map[string]any `json:"attributes,omitempty"`
}

// Input is untrusted input as audited: its text PII-masked.
type Input struct {
	Source string `json:"source,omitempty"`
	Text   string `json:"text,omitempty"`
}

type Reason struct {
	Policy  string            `json:"policy,omitempty"`
	RuleID  string            `json:"rule_id"`
	Effect  string            `json:"effect"`
	Message string            `json:"message,omitempty"`
	Tags    map[string]string `json:"tags,omitempty"`
}

type RateLimit struct {
	ID        string    `json:"id"`
	Limit     int64     `json:"limit"`
	Remaining int64     `json:"remaining"`
	Reset     time.Time `json:"reset"`
	Exceeded  bool      `json:"exceeded,omitempty"`
	Cost      int64     `json:"cost,omitempty"`
}

type Content struct {
	InjectionScore float64  `json:"injection_score"`
	Signals        []string `json:"signals,omitempty"`
	PIIKinds       []string `json:"pii_kinds,omitempty"`
}

type Outcome struct {
	Status  string         `json:"status"`
	Summary string         `json:"summary,omitempty"`
	Details map[string]any `json:"details,omitempty"`
}

type Approval struct {
	ID       string `json:"id"`
	Event    string `json:"event"`
	Status   string `json:"status"`
	Approver string `json:"approver,omitempty"`
	Note     string `json:"note,omitempty"`
	Digest   string `json:"digest,omitempty"`
}

type Suspension struct {
	Event       string    `json:"event"`
	AgentID     string    `json:"agent_id"`
	PrincipalID string    `json:"principal_id,omitempty"`
	Reason      string    `json:"reason,omitempty"`
	By          string    `json:"by,omitempty"`
	ExpiresAt   time.Time `json:"expires_at,omitzero"`
}

// Entry is one record after the writer chained it: Record has ChainID, Seq,
// PrevHash and Hash set, and Line is the exact canonical line hashed into the
// chain (including its hash, without the newline). Both are read-only.
type Entry struct {
	Record *Record
	Line   []byte
}

// Sink receives chained records after the file trail has them. Each sink is
// fed from its own bounded queue by its own goroutine, so Write never runs
// on the decision path; a slow sink only loses (and counts) its own copies.
// Write gets records in chain order, in batches; Close is called once after
// the last Write.
type Sink interface {
	Write(ctx context.Context, batch []Entry) error
	Close(ctx context.Context) error
}

// ArgsMap returns the record's args as they are encoded: Args, or ArgsFrom
// converted.
func (r *Record) ArgsMap() map[string]any {
	if r.Args != nil {
		return r.Args
	}
	return r.ArgsFrom.Map()
}

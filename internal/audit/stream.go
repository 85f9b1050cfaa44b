package audit

import (
	"path"
	"strconv"
	"strings"

	agentpdpv1 "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// DroppedTrailer is the trailer key telling a subscriber how many events it
// missed because it read too slowly.
const DroppedTrailer = "agentpdp-audit-dropped"

// StreamServer implements AuditService: each StreamDecisions call is one
// broadcaster subscription, converted to AuditEvents.
type StreamServer struct {
	agentpdpv1.UnimplementedAuditServiceServer
	b      *Broadcaster
	buffer int
}

var _ agentpdpv1.AuditServiceServer = (*StreamServer)(nil)

// NewStreamServer serves b's records. Register it on the admin listener with
// agentpdpv1.RegisterAuditServiceServer.
func NewStreamServer(b *Broadcaster) *StreamServer {
	return &StreamServer{b: b, buffer: DefaultSubscriberBuffer}
}

// StreamDecisions sends every record the filter accepts from now on, until
// the client cancels or the trail closes. Record bytes are the exact hashed
// line, so a collector can verify the chain itself.
func (s *StreamServer) StreamDecisions(req *agentpdpv1.StreamDecisionsRequest, stream grpc.ServerStreamingServer[agentpdpv1.AuditEvent]) error {
	sub := s.b.Subscribe(s.buffer, newFilter(req).match)
	defer sub.Close()
	defer func() {
		stream.SetTrailer(metadata.Pairs(DroppedTrailer, strconv.FormatUint(sub.Dropped(), 10)))
	}()
	ctx := stream.Context()
	for {
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case e, ok := <-sub.C():
			if !ok {
				return status.Error(codes.Unavailable, "audit trail closed")
			}
			if err := stream.Send(event(&e)); err != nil {
				return err
			}
		}
	}
}

// filter is a StreamDecisionsRequest made cheap to apply per record.
type filter struct {
	agents       []string
	decisions    map[agentpdpv1.Decision]bool
	includeOther bool
}

func newFilter(req *agentpdpv1.StreamDecisionsRequest) *filter {
	f := &filter{agents: req.GetAgentIds(), includeOther: req.GetIncludeOther()}
	if ds := req.GetDecisions(); len(ds) > 0 {
		f.decisions = map[agentpdpv1.Decision]bool{}
		for _, d := range ds {
			f.decisions[d] = true
		}
	}
	return f
}

// match: decision records pass the agent and decision filters; other records
// (outcome, approval, suspension) only with include_other, and the agent
// filter still applies to them.
func (f *filter) match(e *Entry) bool {
	r := e.Record
	if r.Type != TypeDecision && !f.includeOther {
		return false
	}
	if len(f.agents) > 0 && !matchAgent(f.agents, agentID(r)) {
		return false
	}
	if f.decisions != nil && r.Type == TypeDecision && !f.decisions[decisionEnum(r.Decision)] {
		return false
	}
	return true
}

// matchAgent accepts exact ids and globs ("support-*"), as policies do.
func matchAgent(patterns []string, id string) bool {
	if id == "" {
		return false
	}
	for _, p := range patterns {
		if p == id {
			return true
		}
		if ok, _ := path.Match(p, id); ok {
			return true
		}
	}
	return false
}

func agentID(r *Record) string {
	if r.Agent != nil && r.Agent.ID != "" {
		return r.Agent.ID
	}
	if r.Suspension != nil {
		return r.Suspension.AgentID
	}
	return ""
}

// decisionEnum maps "ALLOW", "allow" or "DECISION_ALLOW" to the enum.
func decisionEnum(s string) agentpdpv1.Decision {
	s = strings.TrimPrefix(strings.ToUpper(s), "DECISION_")
	if v, ok := agentpdpv1.Decision_value["DECISION_"+s]; ok {
		return agentpdpv1.Decision(v)
	}
	return agentpdpv1.Decision_DECISION_UNSPECIFIED
}

func event(e *Entry) *agentpdpv1.AuditEvent {
	r := e.Record
	return &agentpdpv1.AuditEvent{
		ChainId:    r.ChainID,
		Seq:        r.Seq,
		Type:       r.Type,
		DecisionId: r.DecisionID,
		AgentId:    agentID(r),
		Decision:   decisionEnum(r.Decision),
		Record:     e.Line,
	}
}

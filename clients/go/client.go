// Package pdpclient is the Go client of agentpdp, the policy decision point
// for AI agents' tool calls.
//
// A Client holds one gRPC connection, safe for concurrent use, and fails
// closed: when the PDP cannot be reached in time, Authorize answers DENY with
// the reason rule_id "pdp_unavailable" rather than an error a caller might
// ignore, unless the agent was named in WithFailOpen. Guard wraps a tool
// function so it runs only on ALLOW.
//
//	c, err := pdpclient.New("127.0.0.1:8181")
//	...
//	send := pdpclient.Guard(c, pdpclient.ToolSpec{Agent: "email-agent", Tool: "gmail.send"}, sendEmail)
//	_, err = send(ctx, Email{To: []string{"alice@customer.com"}})
//	var denied *pdpclient.DeniedError
//	if errors.As(err, &denied) { ... denied.Reasons ... }
package pdpclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
)

// Built-in reasons the client itself adds to a decision it makes without the PDP.
const (
	// ReasonUnavailable: the PDP could not be reached or did not answer in
	// time. The decision is DENY unless the agent is fail-open.
	ReasonUnavailable = "pdp_unavailable"
	// ReasonInvalidRequest: the PDP refused the request as malformed (or the
	// client could not build it); the decision is DENY and Authorize also
	// returns the error, since only the caller can fix it.
	ReasonInvalidRequest = "invalid_request"
	// ReasonApprovalRejected: a human rejected the approval a Guard waited for.
	ReasonApprovalRejected = "approval_rejected"
	// ReasonApprovalExpired: the approval a Guard waited for expired.
	ReasonApprovalExpired = "approval_expired"
)

// Defaults.
const (
	DefaultTimeout        = 250 * time.Millisecond
	DefaultAttempts       = 3
	DefaultBackoff        = 10 * time.Millisecond
	DefaultReportTimeout  = 2 * time.Second
	defaultWaitRPCHeadway = 5 * time.Second
)

// Option configures a Client.
type Option func(*config)

type config struct {
	creds         credentials.TransportCredentials
	timeout       time.Duration
	attempts      int
	backoff       time.Duration
	failOpen      map[string]bool
	dialOpts      []grpc.DialOption
	tracing       bool
	otelOpts      []otelgrpc.Option
	reportTimeout time.Duration
	log           *slog.Logger
}

// WithTLS connects with TLS using cfg (nil: the system roots).
func WithTLS(cfg *tls.Config) Option {
	return func(c *config) { c.creds = credentials.NewTLS(cfg) }
}

// WithTransportCredentials connects with creds (mTLS, ALTS...). The default
// is plaintext, for a PDP on loopback or behind a sidecar.
func WithTransportCredentials(creds credentials.TransportCredentials) Option {
	return func(c *config) { c.creds = creds }
}

// WithTimeout bounds one Authorize (all its attempts together), ScanContent
// and ReportOutcome call unless the caller's context ends sooner.
// Default 250 ms.
func WithTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// WithRetries sets how many attempts a call makes when the PDP answers
// UNAVAILABLE (attempts includes the first; 1 disables retries) and the first
// backoff, doubled (with jitter) after each attempt. Attempts stop when the
// per-call timeout would pass. Default 3 attempts, 10 ms.
func WithRetries(attempts int, initialBackoff time.Duration) Option {
	return func(c *config) {
		if attempts >= 1 {
			c.attempts = attempts
		}
		if initialBackoff > 0 {
			c.backoff = initialBackoff
		}
	}
}

// WithFailOpen names agents whose calls are ALLOWED when the PDP cannot be
// reached (the decision then carries the reason pdp_unavailable with effect
// ALLOW and a warning). Every other agent fails closed. Use it only for
// agents whose tools are harmless.
func WithFailOpen(agentIDs ...string) Option {
	return func(c *config) {
		for _, id := range agentIDs {
			c.failOpen[id] = true
		}
	}
}

// WithDialOptions adds gRPC dial options (interceptors, keepalive, ...).
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(c *config) { c.dialOpts = append(c.dialOpts, opts...) }
}

// WithTracing passes options to the OpenTelemetry gRPC stats handler
// (otelgrpc.WithTracerProvider, ...). Tracing is on by default with the
// global providers; trace context is sent as W3C traceparent unless a global
// propagator is set.
func WithTracing(opts ...otelgrpc.Option) Option {
	return func(c *config) { c.tracing = true; c.otelOpts = append(c.otelOpts, opts...) }
}

// WithoutTracing turns the OpenTelemetry stats handler off.
func WithoutTracing() Option {
	return func(c *config) { c.tracing = false }
}

// WithReportTimeout bounds one background ReportOutcome made by Guard.
// Default 2 s.
func WithReportTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.reportTimeout = d
		}
	}
}

// WithLogger sets where the client logs what it cannot return (a failed
// background outcome report, a fail-open decision). Default slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.log = l
		}
	}
}

// Client talks to one PDP over one gRPC connection. It is safe for
// concurrent use; make one and share it.
type Client struct {
	conn    *grpc.ClientConn
	authz   pb.AuthorizationServiceClient
	cfg     config
	reports sync.WaitGroup
	closed  atomic.Bool
}

// New connects to the PDP's agent listener at addr (host:port, or any gRPC
// target). The connection is made in the background; a PDP that is down
// makes calls answer DENY pdp_unavailable, not New fail.
func New(addr string, opts ...Option) (*Client, error) {
	cfg := config{
		creds:         insecure.NewCredentials(),
		timeout:       DefaultTimeout,
		attempts:      DefaultAttempts,
		backoff:       DefaultBackoff,
		failOpen:      map[string]bool{},
		tracing:       true,
		reportTimeout: DefaultReportTimeout,
		log:           slog.Default(),
	}
	for _, o := range opts {
		o(&cfg)
	}
	if addr == "" {
		return nil, errors.New("pdpclient: an address is required")
	}
	dial := []grpc.DialOption{
		grpc.WithTransportCredentials(cfg.creds),
		// Reconnect quickly after the PDP restarts: the default backoff (1 s
		// base, 120 s max) would keep failing calls closed long after it is back.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second,
			},
			MinConnectTimeout: time.Second,
		}),
	}
	if cfg.tracing {
		hopts := append([]otelgrpc.Option{otelgrpc.WithPropagators(defaultPropagator{})}, cfg.otelOpts...)
		dial = append(dial, grpc.WithStatsHandler(otelgrpc.NewClientHandler(hopts...)))
	}
	dial = append(dial, cfg.dialOpts...)
	conn, err := grpc.NewClient(addr, dial...)
	if err != nil {
		return nil, fmt.Errorf("pdpclient: %w", err)
	}
	conn.Connect()
	return &Client{conn: conn, authz: pb.NewAuthorizationServiceClient(conn), cfg: cfg}, nil
}

// Conn is the underlying connection, e.g. to call the health service.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Close waits (up to the report timeout) for background outcome reports,
// then closes the connection.
func (c *Client) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	done := make(chan struct{})
	go func() { c.reports.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(c.cfg.reportTimeout):
	}
	return c.conn.Close()
}

// Authorize asks the PDP to decide one call. It always returns a response:
//   - the PDP's answer;
//   - DENY with reason pdp_unavailable when the PDP cannot be reached or
//     does not answer within the timeout (after retrying UNAVAILABLE), and a
//     nil error: the caller must not run the tool (ALLOW instead for a
//     fail-open agent);
//   - DENY with reason invalid_request and a non-nil error when the request
//     itself is wrong (no agent id, no tool, too large...).
//
// Only DECISION_ALLOW permits the call; treat anything else as "do not run".
func (c *Client) Authorize(ctx context.Context, req *pb.AuthorizeRequest) (*pb.AuthorizeResponse, error) {
	if req == nil {
		return invalidResponse("nil request"), errors.New("pdpclient: nil request")
	}
	if req.GetAgent().GetId() == "" || req.GetTool() == "" {
		err := errors.New("pdpclient: agent.id and tool are required")
		return invalidResponse(err.Error()), err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.timeout)
	defer cancel()
	var resp *pb.AuthorizeResponse
	err := c.retry(ctx, func(ctx context.Context) error {
		var err error
		resp, err = c.authz.Authorize(ctx, req)
		return err
	})
	if err == nil {
		if resp == nil {
			return unavailableResponse(req, "the PDP sent an empty response", false), nil
		}
		return resp, nil
	}
	if status.Code(err) == codes.InvalidArgument {
		msg := status.Convert(err).Message()
		return invalidResponse(msg), &InvalidRequestError{Message: msg}
	}
	agentID := req.GetAgent().GetId()
	open := c.cfg.failOpen[agentID]
	if open {
		c.cfg.log.WarnContext(ctx, "agentpdp: PDP unreachable; allowing a fail-open agent's call",
			"agent", agentID, "tool", req.GetTool(), "err", err)
	}
	return unavailableResponse(req, describe(err), open), nil
}

// retry runs call until it succeeds, fails with anything but UNAVAILABLE,
// runs out of attempts, or the next backoff would outlast ctx.
func (c *Client) retry(ctx context.Context, call func(context.Context) error) error {
	wait := c.cfg.backoff
	var err error
	for attempt := 1; ; attempt++ {
		err = call(ctx)
		if err == nil || status.Code(err) != codes.Unavailable || attempt >= c.cfg.attempts {
			return err
		}
		// Full jitter in [wait/2, wait].
		d := wait/2 + time.Duration(rand.Int64N(int64(wait/2)+1))
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d {
			return err
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait *= 2
	}
}

func describe(err error) string {
	if s, ok := status.FromError(err); ok {
		return fmt.Sprintf("%s: %s", s.Code(), s.Message())
	}
	return err.Error()
}

func unavailableResponse(req *pb.AuthorizeRequest, cause string, failOpen bool) *pb.AuthorizeResponse {
	if failOpen {
		msg := "the PDP could not be reached (" + cause + "); allowed because the client is fail-open for agent " + req.GetAgent().GetId()
		return &pb.AuthorizeResponse{
			Decision: pb.Decision_DECISION_ALLOW,
			Reasons:  []*pb.Reason{{RuleId: ReasonUnavailable, Effect: pb.Effect_EFFECT_ALLOW, Message: msg}},
			Warning:  msg,
		}
	}
	return &pb.AuthorizeResponse{
		Decision:       pb.Decision_DECISION_DENY,
		PolicyDecision: pb.Decision_DECISION_DENY,
		Reasons: []*pb.Reason{{RuleId: ReasonUnavailable, Effect: pb.Effect_EFFECT_DENY,
			Message: "the PDP could not be reached (" + cause + "); denied (fail closed)"}},
	}
}

func invalidResponse(msg string) *pb.AuthorizeResponse {
	return &pb.AuthorizeResponse{
		Decision:       pb.Decision_DECISION_DENY,
		PolicyDecision: pb.Decision_DECISION_DENY,
		Reasons: []*pb.Reason{{RuleId: ReasonInvalidRequest, Effect: pb.Effect_EFFECT_DENY,
			Message: "invalid request: " + msg}},
	}
}

// InvalidRequestError is the error Authorize returns, beside a DENY, when the
// PDP refuses the request as malformed.
type InvalidRequestError struct{ Message string }

func (e *InvalidRequestError) Error() string { return "pdpclient: invalid request: " + e.Message }

// IsUnavailable reports whether resp was made by the client because the PDP
// could not be reached (fail-closed DENY or fail-open ALLOW).
func IsUnavailable(resp *pb.AuthorizeResponse) bool {
	for _, r := range resp.GetReasons() {
		if r.GetRuleId() == ReasonUnavailable {
			return true
		}
	}
	return false
}

// WaitApproval blocks until the approval is decided, expires, or timeout
// passes (then it returns the still-pending approval with TimedOut set). It
// calls AuthorizationService.WaitApproval as often as the server's cap on
// one wait requires, and retries UNAVAILABLE within the timeout.
func (c *Client) WaitApproval(ctx context.Context, approvalID string, timeout time.Duration) (*pb.WaitApprovalResponse, error) {
	if approvalID == "" {
		return nil, errors.New("pdpclient: an approval id is required")
	}
	deadline := time.Now().Add(timeout)
	wait := c.cfg.backoff
	for {
		left := time.Until(deadline)
		if left < time.Millisecond {
			left = time.Millisecond
		}
		rctx, cancel := context.WithTimeout(ctx, left+defaultWaitRPCHeadway)
		resp, err := c.authz.WaitApproval(rctx, &pb.WaitApprovalRequest{
			ApprovalId: approvalID, Timeout: durationpb.New(left)})
		cancel()
		switch {
		case err == nil && !resp.GetTimedOut():
			return resp, nil
		case err == nil, status.Code(err) == codes.Unavailable:
			if !time.Now().Before(deadline) || ctx.Err() != nil {
				if err != nil {
					return nil, fmt.Errorf("pdpclient: wait for approval %s: %w", approvalID, err)
				}
				return resp, nil
			}
			if err != nil { // back off before reconnecting
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(min(wait, time.Until(deadline))):
				}
				wait = min(wait*2, time.Second)
			}
		default:
			return nil, fmt.Errorf("pdpclient: wait for approval %s: %w", approvalID, err)
		}
	}
}

// ReportOutcome appends what the tool actually did to the audit trail,
// within the report timeout.
func (c *Client) ReportOutcome(ctx context.Context, req *pb.ReportOutcomeRequest) (*pb.ReportOutcomeResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.reportTimeout)
	defer cancel()
	var resp *pb.ReportOutcomeResponse
	err := c.retry(ctx, func(ctx context.Context) error {
		var err error
		resp, err = c.authz.ReportOutcome(ctx, req)
		return err
	})
	return resp, err
}

// reportAsync reports in the background; a failure is logged, never
// returned, so reporting can never fail the tool call.
func (c *Client) reportAsync(ctx context.Context, req *pb.ReportOutcomeRequest) {
	if req.GetDecisionId() == "" || c.closed.Load() {
		return
	}
	ctx = context.WithoutCancel(ctx)
	c.reports.Add(1)
	go func() {
		defer c.reports.Done()
		if _, err := c.ReportOutcome(ctx, req); err != nil {
			c.cfg.log.WarnContext(ctx, "agentpdp: reporting a tool outcome failed",
				"decision_id", req.GetDecisionId(), "err", err)
		}
	}()
}

// Scan scores texts for prompt injection and finds PII.
func (c *Client) Scan(ctx context.Context, texts ...string) ([]*pb.ContentScan, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.timeout)
	defer cancel()
	var resp *pb.ScanContentResponse
	err := c.retry(ctx, func(ctx context.Context) error {
		var err error
		resp, err = c.authz.ScanContent(ctx, &pb.ScanContentRequest{Texts: texts})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pdpclient: scan: %w", err)
	}
	return resp.GetResults(), nil
}

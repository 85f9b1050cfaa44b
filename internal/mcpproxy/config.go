// Package mcpproxy puts the policy decision point between an MCP client and
// an MCP server. It relays JSON-RPC messages untouched except for three:
// every tools/call request is authorized first (and refused with an isError
// tool result when the PDP says no), every tools/call result is scanned on
// its way back, and, when asked, tools/list results leave out the tools the
// policy never allows.
package mcpproxy

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ResultAction is what the proxy does with a tool result the content
// scanner has findings on.
type ResultAction string

// The result actions.
const (
	// ActionFlag keeps the result and adds a _meta note (and a log line).
	ActionFlag ResultAction = "flag"
	// ActionRedact masks the PII spans in the result's text.
	ActionRedact ResultAction = "redact"
	// ActionBlock replaces a result that looks like a prompt injection with
	// an isError result.
	ActionBlock ResultAction = "block"
)

// ParseResultAction checks a --result-action value.
func ParseResultAction(s string) (ResultAction, error) {
	switch a := ResultAction(strings.ToLower(s)); a {
	case ActionFlag, ActionRedact, ActionBlock:
		return a, nil
	}
	return "", fmt.Errorf("result action %q: want flag, redact or block", s)
}

// Defaults for the zero values of Config.
const (
	DefaultApprovalTimeout = 5 * time.Minute
	DefaultPDPTimeout      = 5 * time.Second
	DefaultHistoryItems    = 5
	DefaultHistoryBytes    = 32 << 10
	DefaultMaxSessions     = 1024
)

// Config says who the proxied calls are made for and how strict to be.
type Config struct {
	// AgentID is the agent id the policies name. Required.
	AgentID string
	// ServerName prefixes every tool: tool T of server NAME is "NAME.T"
	// for the policies. Required.
	ServerName string
	// Principal is the user the agent acts for; over HTTP, PrincipalHeader
	// overrides it per request.
	Principal string
	// PrincipalHeader names the HTTP header that carries the principal id.
	PrincipalHeader string
	// FilterTools hides from tools/list the tools the policy names no rule
	// for (see docs/MCP.md for the exact rule).
	FilterTools bool
	// ResultAction is what to do with a result the scanner has findings on.
	ResultAction ResultAction
	// ApprovalTimeout bounds the wait for a human's approval.
	ApprovalTimeout time.Duration
	// PDPTimeout bounds one Authorize, ScanContent or ReportOutcome call.
	PDPTimeout time.Duration
	// HistoryItems and HistoryBytes bound the recent tool results of a
	// session that go into AuthorizeRequest.inputs; a negative
	// HistoryItems sends none.
	HistoryItems int
	HistoryBytes int
	// MaxSessions bounds the sessions the proxy keeps state for (HTTP);
	// the least recently used is forgotten first.
	MaxSessions int
}

// withDefaults fills the zero values and checks the rest.
func (c Config) withDefaults() (Config, error) {
	if c.AgentID == "" {
		return c, errors.New("mcpproxy: agent id is required")
	}
	if c.ServerName == "" || strings.ContainsAny(c.ServerName, " \t\r\n") {
		return c, fmt.Errorf("mcpproxy: server name %q: required, without spaces", c.ServerName)
	}
	if c.ResultAction == "" {
		c.ResultAction = ActionFlag
	}
	if _, err := ParseResultAction(string(c.ResultAction)); err != nil {
		return c, fmt.Errorf("mcpproxy: %w", err)
	}
	c.ApprovalTimeout = orDefault(c.ApprovalTimeout, DefaultApprovalTimeout)
	c.PDPTimeout = orDefault(c.PDPTimeout, DefaultPDPTimeout)
	if c.HistoryItems == 0 {
		c.HistoryItems = DefaultHistoryItems
	}
	c.HistoryBytes = orDefault(c.HistoryBytes, DefaultHistoryBytes)
	c.MaxSessions = orDefault(c.MaxSessions, DefaultMaxSessions)
	return c, nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
	"github.com/agentpdp/agentpdp/internal/mcpproxy"
)

// mcpProxyOptions are pdp mcp-proxy's flags.
type mcpProxyOptions struct {
	pdpAddr         string
	agentID         string
	serverName      string
	principal       string
	principalHeader string
	listen          string
	upstream        string
	filterTools     bool
	resultAction    string
	approvalTimeout time.Duration
	pdpTimeout      time.Duration
	history         int
	historyBytes    int
	logLevel        string
}

func newMCPProxyCmd() *cobra.Command {
	o := &mcpProxyOptions{}
	cmd := &cobra.Command{
		Use:   "mcp-proxy [flags] -- COMMAND [ARGS...]",
		Short: "Guard an MCP server: ask the PDP before every tools/call",
		Long: `mcp-proxy sits between an MCP client and an MCP server and asks the PDP
before every tools/call; everything else passes through untouched.

stdio:  pdp mcp-proxy --agent-id ID --server-name NAME -- COMMAND ARGS...
        (the client launches the proxy; the proxy launches the server)
HTTP:   pdp mcp-proxy --agent-id ID --server-name NAME --listen ADDR --upstream URL
        (Streamable HTTP: the proxy listens and relays to the upstream endpoint)

The policies see tool T of server NAME as "NAME.T". See docs/MCP.md.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runMCPProxy(ctx, o, args)
		},
	}
	// Everything after the first non-flag argument is the server's command.
	cmd.Flags().SetInterspersed(false)
	registerMCPProxyFlags(cmd, o)
	return cmd
}

func registerMCPProxyFlags(cmd *cobra.Command, o *mcpProxyOptions) {
	f := cmd.Flags()
	defPDP := os.Getenv("PDP_ADDR")
	if defPDP == "" {
		defPDP = "127.0.0.1:8181"
	}
	f.StringVar(&o.pdpAddr, "pdp", defPDP, "address of the PDP's agent listener (PDP_ADDR)")
	f.StringVar(&o.agentID, "agent-id", "", "agent id the policies name (required)")
	f.StringVar(&o.serverName, "server-name", "", "server name; tool T is authorized as NAME.T (required)")
	f.StringVar(&o.principal, "principal", "", "principal (user) id the agent acts for")
	f.StringVar(&o.principalHeader, "principal-header", "X-Agentpdp-Principal", "HTTP: request header that carries the principal id (overrides --principal; not forwarded)")
	f.StringVar(&o.listen, "listen", "", "HTTP: address to serve Streamable HTTP on, e.g. 127.0.0.1:8765")
	f.StringVar(&o.upstream, "upstream", "", "HTTP: URL of the upstream MCP endpoint, e.g. http://127.0.0.1:9000/mcp")
	f.BoolVar(&o.filterTools, "filter-tools", false, "hide from tools/list the tools the policy names no rule for")
	f.StringVar(&o.resultAction, "result-action", "flag", "what to do with tool results the scanner has findings on: flag, redact or block")
	f.DurationVar(&o.approvalTimeout, "approval-timeout", mcpproxy.DefaultApprovalTimeout, "how long a call waits for a human's approval")
	f.DurationVar(&o.pdpTimeout, "pdp-timeout", mcpproxy.DefaultPDPTimeout, "timeout of one call to the PDP")
	f.IntVar(&o.history, "history", mcpproxy.DefaultHistoryItems, "recent tool results of the session sent as inputs (0: none)")
	f.IntVar(&o.historyBytes, "history-bytes", mcpproxy.DefaultHistoryBytes, "bound on the bytes of those results")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error (logs go to stderr)")
}

func runMCPProxy(ctx context.Context, o *mcpProxyOptions, args []string) error {
	httpMode := o.listen != "" || o.upstream != ""
	switch {
	case httpMode && (o.listen == "" || o.upstream == ""):
		return errors.New("mcp-proxy: HTTP mode needs both --listen and --upstream")
	case httpMode && len(args) > 0:
		return errors.New("mcp-proxy: give either a server command (stdio) or --listen/--upstream (HTTP), not both")
	case !httpMode && len(args) == 0:
		return errors.New("mcp-proxy: give the server command after --, or --listen and --upstream")
	}
	log, err := mcpProxyLogger(o.logLevel)
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient(o.pdpAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("mcp-proxy: pdp %s: %w", o.pdpAddr, err)
	}
	defer conn.Close()
	p, err := newProxy(o, pb.NewAuthorizationServiceClient(conn), log)
	if err != nil {
		return err
	}
	defer p.Close(o.pdpTimeout)
	if httpMode {
		return serveMCPProxyHTTP(ctx, p, o, log)
	}
	return runMCPProxyStdio(ctx, p, args)
}

func newProxy(o *mcpProxyOptions, pdp pb.AuthorizationServiceClient, log *slog.Logger) (*mcpproxy.Proxy, error) {
	action, err := mcpproxy.ParseResultAction(o.resultAction)
	if err != nil {
		return nil, fmt.Errorf("mcp-proxy: %w", err)
	}
	history := o.history
	if history == 0 {
		history = -1 // the flag's 0 means none; the Config's 0 means the default
	}
	return mcpproxy.New(mcpproxy.Config{
		AgentID: o.agentID, ServerName: o.serverName, Principal: o.principal,
		PrincipalHeader: o.principalHeader, FilterTools: o.filterTools, ResultAction: action,
		ApprovalTimeout: o.approvalTimeout, PDPTimeout: o.pdpTimeout,
		HistoryItems: history, HistoryBytes: o.historyBytes,
	}, pdp, log)
}

func runMCPProxyStdio(ctx context.Context, p *mcpproxy.Proxy, args []string) error {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stderr = os.Stderr
	err := p.RunStdio(ctx, cmd, os.Stdin, os.Stdout)
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("mcp-proxy: %w", err)
	}
	return nil // the client ended the session, or a signal stopped the proxy
}

func serveMCPProxyHTTP(ctx context.Context, p *mcpproxy.Proxy, o *mcpProxyOptions, log *slog.Logger) error {
	h, err := p.NewHTTPHandler(o.upstream, nil)
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("mcp-proxy: listen %s: %w", o.listen, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Info("mcp proxy listening", "listen", lis.Addr().String(), "upstream", o.upstream, "pdp", o.pdpAddr)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case err := <-errc:
		return fmt.Errorf("mcp-proxy: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close() // event streams stay open until closed
	}
	return nil
}

func mcpProxyLogger(level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("mcp-proxy: log-level: %w", err)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv})), nil
}

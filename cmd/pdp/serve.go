package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentpdp/agentpdp/examples"
	"github.com/agentpdp/agentpdp/internal/content/contentpb"
	"github.com/agentpdp/agentpdp/internal/decision"
	"github.com/agentpdp/agentpdp/internal/eval"
	"github.com/agentpdp/agentpdp/internal/policystore"
	"github.com/agentpdp/agentpdp/internal/runtimetune"
	"github.com/agentpdp/agentpdp/internal/server"
	"github.com/agentpdp/agentpdp/internal/telemetry"
)

// serveOptions are pdp serve's settings; each is a flag, a PDP_* variable
// and a config-file key.
type serveOptions struct {
	configFile      string
	policies        string
	listen          string
	adminListen     string
	metricsListen   string
	redisURL        string
	redisTimeout    time.Duration
	limitFailOpen   bool
	auditDir        string
	auditDurability string
	auditMaxBytes   int64
	auditSinks      []string
	auditStream     string
	replicaID       string
	shutdownGrace   time.Duration
	logFormat       string
	logLevel        string
}

func newServeCmd() *cobra.Command {
	o := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the policy decision point (gRPC)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyConfig(cmd.Flags(), o.configFile); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runServe(ctx, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.configFile, "config", "", "YAML config file; keys are the flag names")
	f.StringVar(&o.policies, "policies", "", "policy directory, watched and hot-reloaded (default: the embedded examples)")
	f.StringVar(&o.listen, "listen", "127.0.0.1:8181", "address for agents (Authorize, ReportOutcome, ScanContent, WaitApproval)")
	f.StringVar(&o.adminListen, "admin-listen", "127.0.0.1:8182", "address for operators (approvals, suspensions, audit stream); empty disables")
	f.StringVar(&o.metricsListen, "metrics-listen", "", "address for Prometheus /metrics, e.g. 127.0.0.1:9464 (default: off)")
	f.StringVar(&o.redisURL, "redis", "", "Redis URL (redis://host:6379/0): share limits, approvals and suspensions across replicas")
	f.DurationVar(&o.redisTimeout, "redis-timeout", 50*time.Millisecond, "timeout of one Redis round trip on the decision path")
	f.BoolVar(&o.limitFailOpen, "rate-limit-fail-open", false, "admit calls when the rate-limit backend is unreachable (default: deny)")
	f.StringVar(&o.auditDir, "audit-dir", "./pdp-audit", "directory of the hash-chained audit files")
	f.StringVar(&o.auditDurability, "audit-durability", "async", "async (batched) or durable (answer after fsync)")
	f.Int64Var(&o.auditMaxBytes, "audit-max-file-bytes", 64<<20, "rotate audit files at this size")
	f.StringSliceVar(&o.auditSinks, "audit-sinks", nil, "extra audit sinks: stdout, redis")
	f.StringVar(&o.auditStream, "audit-redis-stream", "agentpdp:audit", "Redis stream key for the redis audit sink")
	f.StringVar(&o.replicaID, "replica-id", "", "this replica's audit chain id (default: hostname)")
	f.DurationVar(&o.shutdownGrace, "shutdown-grace", 10*time.Second, "how long SIGTERM waits for in-flight calls")
	f.StringVar(&o.logFormat, "log-format", "json", "json or text")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

func runServe(ctx context.Context, o *serveOptions) error {
	log, err := newLogger(o.logFormat, o.logLevel)
	if err != nil {
		return err
	}
	rt := runtimetune.Apply(ctx)
	log.Info("go runtime", "gc_percent", rt.GCPercent, "gc_min_heap_mib", rt.MinHeap>>20,
		"gc_from", rt.GCSource, "gomaxprocs", rt.Procs, "gomaxprocs_from", rt.ProcsSource)
	app, err := buildApp(ctx, o, log)
	if err != nil {
		return err
	}
	defer app.close(log)
	if h := app.tel.MetricsHandler(); h != nil {
		if err := serveMetrics(ctx, o.metricsListen, h, log); err != nil {
			return err
		}
	}

	agentLis, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", o.listen, err)
	}
	var adminLis net.Listener
	if o.adminListen != "" {
		if adminLis, err = net.Listen("tcp", o.adminListen); err != nil {
			return fmt.Errorf("admin listen %s: %w", o.adminListen, err)
		}
	}
	go func() {
		if err := app.store.Watch(ctx); err != nil {
			log.Error("policy watcher stopped", "err", err)
		}
	}()
	log.Info("pdp serving", "listen", agentLis.Addr().String(), "admin_listen", addrOf(adminLis),
		"policies", policySource(o.policies), "policy_version", app.store.Current().Version)
	return app.srv.Serve(ctx, agentLis, adminLis, o.shutdownGrace)
}

func addrOf(l net.Listener) string {
	if l == nil {
		return ""
	}
	return l.Addr().String()
}

func policySource(dir string) string {
	if dir == "" {
		return "embedded examples"
	}
	return dir
}

// app is everything pdp serve runs, in the order it was built.
type app struct {
	tel     *telemetry.Telemetry
	store   *policystore.Store
	srv     *server.Server
	closers []func(context.Context) error
}

func (a *app) close(log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := len(a.closers) - 1; i >= 0; i-- {
		if err := a.closers[i](ctx); err != nil {
			log.Error("shutdown", "err", err)
		}
	}
}

// buildApp builds everything pdp serve runs. On error it closes what it
// had built.
func buildApp(ctx context.Context, o *serveOptions, log *slog.Logger) (a *app, err error) {
	a = &app{}
	defer func() {
		if err != nil {
			a.close(log)
		}
	}()
	if a.tel, err = telemetry.Setup(ctx, telemetry.Options{ServiceVersion: version, Metrics: o.metricsListen != ""}); err != nil {
		return a, err
	}
	a.closers = append(a.closers, a.tel.Shutdown)
	// The metrics read the state and the trail at scrape time, once built.
	var trail *auditTrail
	st := &sharedState{}
	metrics, err := telemetry.NewMetrics(a.tel.Meter,
		gaugesFor(func() *policystore.Store { return a.store }, st, func() *auditTrail { return trail }))
	if err != nil {
		return a, err
	}
	a.closers = append(a.closers, metrics.Close)
	scanner, err := contentpb.New()
	if err != nil {
		return a, err
	}
	if a.store, err = openPolicies(o, scanner, metrics, log); err != nil {
		return a, err
	}
	if err = openState(ctx, o, log, st); err != nil {
		return a, err
	}
	a.closers = append(a.closers, st.close)
	if trail, err = openAudit(ctx, o, st, log); err != nil {
		return a, err
	}
	a.closers = append(a.closers, trail.close)
	d, err := decision.New(decision.Config{
		Policies: a.store, Limiter: st.limiter, LimitFailOpen: o.limitFailOpen,
		Audit: trail.log, Content: scanner, Logger: log,
		Approvals: st.approvals, Suspensions: st.suspensions,
		Tracer: a.tel.Tracer.Tracer("github.com/agentpdp/agentpdp"), Metrics: metrics,
	})
	if err != nil {
		return a, err
	}
	instrument, err := a.tel.ServerOptions()
	if err != nil {
		return a, err
	}
	approvals := server.NewApprovalService(st.approvals, trail.log, log)
	a.srv, err = server.New(server.Config{
		Decider: d, Audit: trail.log, Content: scanner, Logger: log,
		AuditFeed: trail.feed, Approvals: approvals, AgentWait: approvals.WaitApproval,
		Admin:         server.NewAdminService(st.suspensions, trail.log, log),
		ServerOptions: instrument,
	})
	return a, err
}

// openPolicies compiles the policy directory (or the embedded examples) and
// counts every reload in the metrics.
func openPolicies(o *serveOptions, scanner *contentpb.Scanner, metrics *telemetry.Metrics, log *slog.Logger) (*policystore.Store, error) {
	compiler, err := eval.NewCompiler(eval.Options{Content: scanner})
	if err != nil {
		return nil, err
	}
	hooks := policystore.Hooks{
		Loaded: func(*eval.Set) { metrics.Reloaded(true) },
		Failed: func(error) { metrics.Reloaded(false) },
	}
	return policystore.Open(compiler, o.policies, examples.Policies(), log, hooks)
}

func newLogger(format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(telemetry.TraceHandler{Handler: slog.NewJSONHandler(os.Stderr, opts)}), nil
	case "text":
		return slog.New(telemetry.TraceHandler{Handler: slog.NewTextHandler(os.Stderr, opts)}), nil
	}
	return nil, errors.New("log-format: want json or text")
}

//go:build jaeger

// Package jaeger checks, end to end, that a decision shows up in Jaeger
// inside the calling agent's own trace. It needs a Jaeger v2 binary:
// JAEGER_BINARY=$(scripts/jaeger.sh) go test -tags jaeger ./test/jaeger
package jaeger

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

const jaegerConfig = `service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
extensions:
  jaeger_query:
    storage:
      traces: mem
    http:
      endpoint: 127.0.0.1:%d
    grpc:
      endpoint: 127.0.0.1:%d
  jaeger_storage:
    backends:
      mem:
        memory:
          max_traces: 10000
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%d
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: mem
`

// start runs a command until the test ends, its output in the test log.
func start(t *testing.T, name string, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env...)
	logf, err := os.Create(filepath.Join(t.TempDir(), name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("%s output:\n%s", name, tail(string(b), 4000))
		}
	})
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s did not answer", url)
}

func waitGRPC(t *testing.T, cc *grpc.ClientConn) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		r, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && r.Status == healthpb.HealthCheckResponse_SERVING {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("pdp did not become healthy")
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

type jaegerTrace struct {
	Data []struct {
		TraceID string `json:"traceID"`
		Spans   []struct {
			SpanID        string `json:"spanID"`
			OperationName string `json:"operationName"`
			References    []struct {
				RefType string `json:"refType"`
				SpanID  string `json:"spanID"`
			} `json:"references"`
			Tags []struct {
				Key   string `json:"key"`
				Value any    `json:"value"`
			} `json:"tags"`
		} `json:"spans"`
	} `json:"data"`
}

func TestDecisionSpanInCallersTrace(t *testing.T) {
	bin := os.Getenv("JAEGER_BINARY")
	if bin == "" {
		t.Fatal("JAEGER_BINARY is not set: run JAEGER_BINARY=$(scripts/jaeger.sh) go test -tags jaeger ./test/jaeger")
	}
	queryHTTP, queryGRPC, otlpPort := freePort(t), freePort(t), freePort(t)
	cfg := filepath.Join(t.TempDir(), "jaeger.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(jaegerConfig, queryHTTP, queryGRPC, otlpPort)), 0o644); err != nil {
		t.Fatal(err)
	}
	start(t, "jaeger", nil, bin, "--config", cfg)
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/api/services", queryHTTP))

	pdp := filepath.Join(t.TempDir(), "pdp")
	build := exec.Command("go", "build", "-o", pdp, "./cmd/pdp")
	build.Dir = repoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build pdp: %v\n%s", err, out)
	}
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	otlp := fmt.Sprintf("http://127.0.0.1:%d", otlpPort)
	start(t, "pdp", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + otlp, "OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
		"OTEL_SERVICE_NAME=agentpdp-e2e", "OTEL_BSP_SCHEDULE_DELAY=100"},
		pdp, "serve", "--listen", listen, "--admin-listen", "", "--audit-dir", t.TempDir())

	// The agent's side: its own tracer provider and a parent span.
	ctx := context.Background()
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(strings.TrimPrefix(otlp, "http://")), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName("e2e-agent"))))
	prop := propagation.TraceContext{}
	cc, err := grpc.NewClient(listen, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(prop))))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	waitGRPC(t, cc)

	ctx, parent := tp.Tracer("e2e-agent").Start(ctx, "agent.tool_call")
	resp, err := pb.NewAuthorizationServiceClient(cc).Authorize(ctx, &pb.AuthorizeRequest{
		Agent: &pb.Agent{Id: "email-agent"}, Principal: &pb.Principal{Id: "u1"}, Tool: "gmail.delete"})
	parent.End()
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	traceID := parent.SpanContext().TraceID().String()
	if resp.TraceId != traceID {
		t.Fatalf("response trace_id %q, want the caller's %q", resp.TraceId, traceID)
	}
	checkTrace(t, queryHTTP, traceID, parent.SpanContext().SpanID().String())
}

// checkTrace polls Jaeger until the trace holds pdp.decide, then checks it
// descends from the client's span and carries the decision's attributes.
func checkTrace(t *testing.T, port int, traceID, parentSpanID string) {
	t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d/api/traces/%s", port, traceID)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var tr jaegerTrace
		if resp, err := http.Get(url); err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&tr)
			resp.Body.Close()
		}
		if len(tr.Data) == 1 {
			parents := map[string]string{}
			var decide int = -1
			for i, s := range tr.Data[0].Spans {
				for _, r := range s.References {
					if r.RefType == "CHILD_OF" {
						parents[s.SpanID] = r.SpanID
					}
				}
				if s.OperationName == "pdp.decide" {
					decide = i
				}
			}
			if decide >= 0 && parents[tr.Data[0].Spans[decide].SpanID] != "" {
				s := tr.Data[0].Spans[decide]
				if !descends(parents, s.SpanID, parentSpanID) {
					t.Fatalf("pdp.decide %s does not descend from the client's span %s: %v", s.SpanID, parentSpanID, parents)
				}
				tags := map[string]string{}
				for _, tg := range s.Tags {
					tags[tg.Key] = fmt.Sprint(tg.Value)
				}
				for k, want := range map[string]string{"agentpdp.agent.id": "email-agent", "agentpdp.tool": "gmail.delete",
					"agentpdp.decision": "DENY", "agentpdp.policy": "email-agent", "agentpdp.mode": "ENFORCE"} {
					if tags[k] != want {
						t.Errorf("tag %s = %q, want %q (tags %v)", k, tags[k], want, tags)
					}
				}
				if !strings.Contains(tags["agentpdp.rules"], "never-delete") || tags["agentpdp.policy_version"] == "" {
					t.Errorf("rules/version tags: %v", tags)
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("trace %s with a pdp.decide span not in Jaeger: %+v", traceID, tr)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func descends(parents map[string]string, span, ancestor string) bool {
	for i := 0; i < 10 && span != ""; i++ {
		span = parents[span]
		if span == ancestor {
			return true
		}
	}
	return false
}

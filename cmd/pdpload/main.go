// Command pdpload drives a running pdp with Authorize calls from many
// concurrent clients and reports throughput and latency percentiles. It is
// the project's load tool: docs/PERFORMANCE.md quotes its output.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
)

type options struct {
	addr       string
	conns      int
	workers    int
	duration   time.Duration
	warmup     time.Duration
	principals int
	tool       string
	jsonOut    bool
}

// report is what one run measured.
type report struct {
	Calls      int64            `json:"calls"`
	Errors     int64            `json:"errors"`
	Seconds    float64          `json:"seconds"`
	PerSecond  float64          `json:"per_second"`
	P50        string           `json:"p50"`
	P90        string           `json:"p90"`
	P99        string           `json:"p99"`
	Max        string           `json:"max"`
	Decisions  map[string]int64 `json:"decisions"`
	Workers    int              `json:"workers"`
	Conns      int              `json:"conns"`
	FirstError string           `json:"first_error,omitempty"`
}

func main() {
	o := options{}
	flag.StringVar(&o.addr, "addr", "127.0.0.1:8181", "pdp agent address")
	flag.IntVar(&o.conns, "conns", 4, "gRPC connections")
	flag.IntVar(&o.workers, "c", 32, "concurrent callers")
	flag.DurationVar(&o.duration, "d", 10*time.Second, "how long to measure")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "calls made before measuring")
	flag.IntVar(&o.principals, "principals", 100000, "distinct principal ids (spreads rate-limit keys)")
	flag.StringVar(&o.tool, "tool", "gmail.send", "tool to call (gmail.send exercises rules and two limits)")
	flag.BoolVar(&o.jsonOut, "json", false, "print the report as JSON")
	flag.Parse()
	rep, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pdpload:", err)
		os.Exit(1)
	}
	if o.jsonOut {
		_ = json.NewEncoder(os.Stdout).Encode(rep)
		return
	}
	fmt.Printf("%d calls in %.1fs: %.0f decisions/s  p50 %s  p90 %s  p99 %s  max %s  errors %d  decisions %v\n",
		rep.Calls, rep.Seconds, rep.PerSecond, rep.P50, rep.P90, rep.P99, rep.Max, rep.Errors, rep.Decisions)
	if rep.FirstError != "" {
		fmt.Println("first error:", rep.FirstError)
	}
}

func run(o options) (*report, error) {
	clients := make([]pb.AuthorizationServiceClient, o.conns)
	for i := range clients {
		cc, err := grpc.NewClient(o.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, err
		}
		defer cc.Close()
		clients[i] = pb.NewAuthorizationServiceClient(cc)
	}
	args, _ := structpb.NewStruct(map[string]any{"to": []any{"alice@customer.com"}, "subject": "Re: your order",
		"body": "Thanks for writing. Your order ships today."})
	var measuring atomic.Bool
	var errs atomic.Int64
	var firstErr atomic.Value
	lats := make([][]time.Duration, o.workers)
	decisions := make([]map[pb.Decision]int64, o.workers)
	end := time.Now().Add(o.warmup + o.duration)
	ctx, cancel := context.WithDeadline(context.Background(), end)
	defer cancel()
	start := time.Now()
	time.AfterFunc(o.warmup, func() { start = time.Now(); measuring.Store(true) })
	var wg sync.WaitGroup
	for w := 0; w < o.workers; w++ {
		wg.Add(1)
		decisions[w] = map[pb.Decision]int64{}
		go func(w int) {
			defer wg.Done()
			client := clients[w%len(clients)]
			for i := 0; ctx.Err() == nil; i++ {
				req := &pb.AuthorizeRequest{
					Agent:     &pb.Agent{Id: "email-agent", Framework: "pdpload"},
					Principal: &pb.Principal{Id: fmt.Sprintf("u%d", (w*7919+i)%o.principals)},
					Tool:      o.tool, Args: args,
				}
				t0 := time.Now()
				resp, err := client.Authorize(ctx, req)
				d := time.Since(t0)
				// gRPC enforces the run's deadline on its own timer, a hair before
				// ctx reports it: calls cut off by the end of the run are not errors.
				if !measuring.Load() || ctx.Err() != nil || time.Until(end) < 50*time.Millisecond {
					continue
				}
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				lats[w] = append(lats[w], d)
				decisions[w][resp.Decision]++
			}
		}(w)
	}
	wg.Wait()
	return summarize(o, lats, decisions, errs.Load(), time.Since(start), firstErr.Load()), nil
}

func summarize(o options, lats [][]time.Duration, decs []map[pb.Decision]int64, errs int64,
	elapsed time.Duration, firstErr any) *report {
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	pct := func(p float64) string {
		if len(all) == 0 {
			return "n/a"
		}
		return all[min(len(all)-1, int(p*float64(len(all))))].Round(time.Microsecond).String()
	}
	rep := &report{Calls: int64(len(all)), Errors: errs, Seconds: elapsed.Seconds(),
		PerSecond: float64(len(all)) / elapsed.Seconds(), P50: pct(0.50), P90: pct(0.90), P99: pct(0.99),
		Max: pct(1), Decisions: map[string]int64{}, Workers: o.workers, Conns: o.conns}
	for _, d := range decs {
		for k, v := range d {
			rep.Decisions[k.String()] += v
		}
	}
	if s, ok := firstErr.(string); ok {
		rep.FirstError = s
	}
	return rep
}

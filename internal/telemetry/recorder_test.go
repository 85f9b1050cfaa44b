package telemetry

import (
	"context"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// recorded reads the count of the "c" counter and of the "h" histogram.
func recorded(t *testing.T, r *sdkmetric.ManualReader) (count int64, hist uint64) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					count += p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					hist += p.Count
				}
			}
		}
	}
	return count, hist
}

// TestRecorderLosesNothing: measurements handed to the recorder reach the
// instruments by a flush, whether queued, over the queue's capacity (the
// caller records them), or added after close.
func TestRecorderLosesNothing(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	meter := mp.Meter("test")
	c, _ := meter.Int64Counter("c")
	h, _ := meter.Float64Histogram("h")
	attrs := metric.WithAttributeSet(attribute.NewSet(attribute.String("k", "v")))
	m := measurement{ctx: context.Background(), seconds: 0.001, hist: h, histAttrs: attrs, count: c, cntAttrs: attrs}

	r := newRecorder()
	var wg sync.WaitGroup
	const n = 8 * 1024 // eight times the queue: many go through the full-queue path
	for range 8 {
		wg.Go(func() {
			for range n / 8 {
				r.add(m)
			}
		})
	}
	wg.Wait()
	r.flush()
	if count, hist := recorded(t, reader); count != n || hist != n {
		t.Fatalf("after flush: count %d, histogram %d, want %d", count, hist, n)
	}

	m.count = nil // a duration only
	for range 10 {
		r.add(m)
	}
	r.close()
	r.add(m) // after close: recorded by the caller
	r.flush()
	r.close()
	if count, hist := recorded(t, reader); count != n || hist != n+11 {
		t.Fatalf("after close: count %d, histogram %d, want %d and %d", count, hist, n, n+11)
	}
}

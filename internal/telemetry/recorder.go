package telemetry

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// lingerFor is how long the recorder lets measurements gather after the
// first of a burst; it is also how late a measurement can reach /metrics.
const lingerFor = 2 * time.Millisecond

// recorder hands measurements from request goroutines to one goroutine that
// records them in bursts, with the SDK's code and data hot in the cache:
// BenchmarkAuthorizeInterleaved put telemetry's cost ~1.5 points lower than
// recording on each gRPC handler. On the request path what remains is a
// channel send that wakes nobody while the recorder lingers. When the queue
// is full, or after close, the caller records itself: nothing waits and
// nothing is dropped.
type recorder struct {
	q      chan measurement
	mu     sync.RWMutex // held for reading while sending, so close is final
	closed bool
	done   chan struct{}
}

// measurement is one duration, and optionally one count, with attribute
// sets built ahead (see setCache).
type measurement struct {
	ctx       context.Context // kept for exemplars: it carries the span
	seconds   float64
	hist      metric.Float64Histogram
	histAttrs metric.MeasurementOption
	count     metric.Int64Counter // nil: a duration only
	cntAttrs  metric.MeasurementOption
	flushed   chan struct{} // a flush's marker, not a measurement
}

func (m *measurement) record() {
	if m.flushed != nil {
		close(m.flushed)
		return
	}
	if m.count != nil {
		m.count.Add(m.ctx, 1, m.cntAttrs)
	}
	m.hist.Record(m.ctx, m.seconds, m.histAttrs)
}

func newRecorder() *recorder {
	r := &recorder{q: make(chan measurement, 1024), done: make(chan struct{})}
	go r.run()
	return r
}

func (r *recorder) add(m measurement) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if !r.closed {
		select {
		case r.q <- m:
			return
		default:
		}
	}
	m.record()
}

func (r *recorder) run() {
	defer close(r.done)
	for m := range r.q {
		time.Sleep(lingerFor)
		m.record()
		for more := true; more; {
			select {
			case m, ok := <-r.q:
				if !ok {
					return
				}
				m.record()
			default:
				more = false
			}
		}
	}
}

// close records what is queued and stops the recorder; later measurements
// are recorded by their callers.
func (r *recorder) close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	close(r.q)
	r.mu.Unlock()
	<-r.done
}

// flush returns once everything queued before it is recorded.
func (r *recorder) flush() {
	done := make(chan struct{})
	r.mu.RLock()
	if r.closed {
		r.mu.RUnlock()
		return
	}
	r.q <- measurement{flushed: done}
	r.mu.RUnlock()
	<-done
}

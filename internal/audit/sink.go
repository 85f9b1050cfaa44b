package audit

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// sinkBatch bounds the records handed to one Sink.Write.
const sinkBatch = 512

// SinkStats counts one sink's records.
type SinkStats struct {
	Name          string
	QueueDepth    int
	QueueCapacity int
	Written       uint64
	// Dropped: records not given to the sink because its queue was full.
	Dropped uint64
	// Errors: records in batches whose Write failed.
	Errors uint64
}

// sinkRunner feeds one sink from its own bounded queue, so a slow or failing
// sink never holds up the writer (and so never the file trail or decisions).
type sinkRunner struct {
	name   string
	sink   Sink
	q      chan Entry
	done   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	log    *slog.Logger

	written, dropped, errors atomic.Uint64
	lastLog                  time.Time
}

func startSink(c SinkConfig, log *slog.Logger) *sinkRunner {
	ctx, cancel := context.WithCancel(context.Background())
	s := &sinkRunner{
		name: c.Name, sink: c.Sink, q: make(chan Entry, orDefault(c.QueueSize, DefaultSinkQueueSize)),
		done: make(chan struct{}), ctx: ctx, cancel: cancel, log: log,
	}
	go s.run()
	return s
}

// offer is called by the writer goroutine only; it never blocks.
func (s *sinkRunner) offer(e Entry) {
	select {
	case s.q <- e:
	default:
		s.dropped.Add(1)
	}
}

func (s *sinkRunner) run() {
	defer close(s.done)
	batch := make([]Entry, 0, sinkBatch)
	for e := range s.q {
		batch = append(batch[:0], e)
	fill:
		for len(batch) < sinkBatch {
			select {
			case e, ok := <-s.q:
				if !ok {
					break fill
				}
				batch = append(batch, e)
			default:
				break fill
			}
		}
		s.write(batch)
		clear(batch)
	}
}

func (s *sinkRunner) write(batch []Entry) {
	if err := s.sink.Write(s.ctx, batch); err != nil {
		s.errors.Add(uint64(len(batch)))
		// One line per sink per 10s: a dead sink must not flood the logs.
		if time.Since(s.lastLog) > 10*time.Second {
			s.log.Warn("audit: sink write failed", "sink", s.name, "records", len(batch), "err", err)
			s.lastLog = time.Now()
		}
		return
	}
	s.written.Add(uint64(len(batch)))
}

// close drains the queue into the sink, then closes it. When ctx ends
// first, the sink's context is cancelled so a blocked Write can return.
func (s *sinkRunner) close(ctx context.Context) error {
	close(s.q)
	select {
	case <-s.done:
	case <-ctx.Done():
		s.cancel()
		return fmt.Errorf("audit sink %s: drain: %w (%d records left)", s.name, ctx.Err(), len(s.q))
	}
	defer s.cancel()
	if err := s.sink.Close(ctx); err != nil {
		return fmt.Errorf("audit sink %s: close: %w", s.name, err)
	}
	return nil
}

func (s *sinkRunner) stats() SinkStats {
	return SinkStats{
		Name: s.name, QueueDepth: len(s.q), QueueCapacity: cap(s.q),
		Written: s.written.Load(), Dropped: s.dropped.Load(), Errors: s.errors.Load(),
	}
}

// WriterSink writes each record's canonical line, newline-terminated, to an
// io.Writer: the stdout sink is NewWriterSink(os.Stdout).
type WriterSink struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

// NewWriterSink returns a sink writing JSON lines to w.
func NewWriterSink(w io.Writer) *WriterSink { return &WriterSink{w: w} }

// Write writes the batch in one call to the underlying writer.
func (s *WriterSink) Write(_ context.Context, batch []Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = s.buf[:0]
	for _, e := range batch {
		s.buf = append(s.buf, e.Line...)
		s.buf = append(s.buf, '\n')
	}
	if _, err := s.w.Write(s.buf); err != nil {
		return fmt.Errorf("write audit lines: %w", err)
	}
	return nil
}

// Close does nothing: the writer (stdout) belongs to the caller.
func (s *WriterSink) Close(context.Context) error { return nil }

var _ Sink = (*WriterSink)(nil)

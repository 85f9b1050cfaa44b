package mcpproxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// sseEvent is one server-sent event as read: its raw lines (without line
// endings), to pass on unchanged, and the fields the proxy looks at.
type sseEvent struct {
	lines [][]byte
	name  string
	id    string
	data  []byte
}

// isMessage reports whether the event carries a JSON-RPC message (MCP
// sends them as unnamed or "message" events with data).
func (e *sseEvent) isMessage() bool {
	return len(e.data) > 0 && (e.name == "" || e.name == "message")
}

// errEventTooLarge stops a stream whose event would not fit in memory.
var errEventTooLarge = errors.New("server-sent event too large")

// sseReader reads server-sent events.
type sseReader struct {
	br  *bufio.Reader
	max int
}

func newSSEReader(r io.Reader, max int) *sseReader {
	return &sseReader{br: bufio.NewReaderSize(r, 64<<10), max: max}
}

// next returns the next complete event. An event cut off by the end of
// the stream is dropped, as the SSE specification says.
func (r *sseReader) next() (*sseEvent, error) {
	ev, size := &sseEvent{}, 0
	for {
		line, err := r.br.ReadBytes('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, io.EOF
			}
			return nil, err
		}
		if size += len(line); size > r.max {
			return nil, errEventTooLarge
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			if len(ev.lines) == 0 {
				continue
			}
			ev.data = bytes.TrimSuffix(ev.data, []byte("\n"))
			return ev, nil
		}
		ev.lines = append(ev.lines, line)
		ev.field(line)
	}
}

// fieldName is the field a line sets ("" for a comment).
func fieldName(line []byte) string {
	if len(line) == 0 || line[0] == ':' {
		return ""
	}
	name, _, _ := bytes.Cut(line, []byte(":"))
	return string(name)
}

func (e *sseEvent) field(line []byte) {
	_, value, _ := bytes.Cut(line, []byte(":"))
	value = bytes.TrimPrefix(value, []byte(" "))
	switch fieldName(line) {
	case "event":
		e.name = string(value)
	case "id":
		e.id = string(value)
	case "data":
		e.data = append(append(e.data, value...), '\n')
	}
}

// sseWriter writes events to a client, flushing each.
type sseWriter struct {
	w http.ResponseWriter
	f http.Flusher
}

func newSSEWriter(w http.ResponseWriter) *sseWriter {
	f, _ := w.(http.Flusher)
	return &sseWriter{w: w, f: f}
}

// raw passes an event on as it was read.
func (s *sseWriter) raw(e *sseEvent) error {
	var b bytes.Buffer
	for _, l := range e.lines {
		b.Write(l)
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	return s.write(b.Bytes())
}

// rewritten passes an event on with new data, keeping its other fields.
func (s *sseWriter) rewritten(e *sseEvent, data []byte) error {
	var b bytes.Buffer
	for _, l := range e.lines {
		if fieldName(l) != "data" {
			b.Write(l)
			b.WriteByte('\n')
		}
	}
	writeData(&b, data)
	return s.write(b.Bytes())
}

// message writes a message event the proxy made.
func (s *sseWriter) message(data []byte) error {
	var b bytes.Buffer
	b.WriteString("event: message\n")
	writeData(&b, data)
	return s.write(b.Bytes())
}

func writeData(b *bytes.Buffer, data []byte) {
	for _, l := range bytes.Split(data, []byte("\n")) {
		b.WriteString("data: ")
		b.Write(l)
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
}

func (s *sseWriter) write(p []byte) error {
	if _, err := s.w.Write(p); err != nil {
		return fmt.Errorf("write event to client: %w", err)
	}
	if s.f != nil {
		s.f.Flush()
	}
	return nil
}

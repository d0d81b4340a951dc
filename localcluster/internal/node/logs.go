package node

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/node/api"
)

// containerLog is the log file of one run of a container. Each line is stored as
// "<RFC3339Nano UTC timestamp> <stream> <F|P> <text>", the CRI log format (P: the output ended without a
// newline, which is not added when served), so timestamps and sinceTime can be served. Readers that follow are woken on every write instead of polling.
type containerLog struct {
	path string

	mu       sync.Mutex
	file     *os.File
	changed  chan struct{}
	finished bool
}

func newContainerLog(path string) (*containerLog, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create log %s: %w", path, err)
	}
	return &containerLog{path: path, file: f, changed: make(chan struct{})}, nil
}

// stream returns a writer for one output stream ("stdout" or "stderr"); close it to flush a last partial line.
func (l *containerLog) stream(name string) *logStream {
	return &logStream{log: l, name: name}
}

func (l *containerLog) writeLine(stream string, line []byte, partial bool) {
	ts := time.Now().UTC().Format(time.RFC3339Nano)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.finished {
		return
	}
	var b bytes.Buffer
	tag := " F "
	if partial {
		tag = " P "
	}
	b.Grow(len(ts) + len(stream) + len(line) + 5)
	b.WriteString(ts)
	b.WriteByte(' ')
	b.WriteString(stream)
	b.WriteString(tag)
	b.Write(line)
	b.WriteByte('\n')
	_, _ = l.file.Write(b.Bytes())
	l.notifyLocked()
}

// finish marks the log complete: followers drain it and end.
func (l *containerLog) finish() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.finished {
		return
	}
	l.finished = true
	l.file.Close()
	l.notifyLocked()
}

func (l *containerLog) notifyLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *containerLog) state() (changed <-chan struct{}, finished bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed, l.finished
}

type logStream struct {
	log     *containerLog
	name    string
	partial []byte
}

func (s *logStream) Write(p []byte) (int, error) {
	data := append(s.partial, p...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		s.log.writeLine(s.name, data[:i], false)
		data = data[i+1:]
	}
	s.partial = append([]byte(nil), data...)
	return len(p), nil
}

func (s *logStream) flush() {
	if len(s.partial) > 0 {
		s.log.writeLine(s.name, s.partial, true)
		s.partial = nil
	}
}

// logLine is one parsed line of a containerLog file.
type logLine struct {
	time    time.Time
	ts      string
	text    string
	partial bool
}

func parseLogLine(raw string) logLine {
	ts, rest, _ := strings.Cut(raw, " ")
	_, rest, _ = strings.Cut(rest, " ")
	tag, text, _ := strings.Cut(rest, " ")
	t, _ := time.Parse(time.RFC3339Nano, ts)
	return logLine{time: t, ts: ts, text: text, partial: tag == "P"}
}

func (l logLine) render(timestamps bool) string {
	text := l.text
	if !l.partial {
		text += "\n"
	}
	if timestamps {
		return l.ts + " " + text
	}
	return text
}

// read serves opts (tailLines, sinceTime/sinceSeconds, timestamps, limitBytes, follow) from the log.
func (l *containerLog) read(ctx context.Context, opts api.ContainerLogOpts) (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	since := opts.SinceTime
	if opts.SinceSeconds > 0 {
		s := time.Now().Add(-time.Duration(opts.SinceSeconds) * time.Second)
		if s.After(since) {
			since = s
		}
	}
	pr, pw := io.Pipe()
	go func() {
		defer f.Close()
		w := &limitedWriter{w: pw, limit: opts.LimitBytes}
		err := l.copyLines(ctx, f, w, since, opts)
		pw.CloseWithError(err)
	}()
	return pr, nil
}

func (l *containerLog) copyLines(ctx context.Context, f *os.File, w io.Writer, since time.Time, opts api.ContainerLogOpts) error {
	reader := bufio.NewReader(f)
	emit := func(raw string) error {
		line := parseLogLine(raw)
		if !since.IsZero() && line.time.Before(since) {
			return nil
		}
		_, err := io.WriteString(w, line.render(opts.Timestamps))
		return err
	}
	// Lines already written: apply tailLines to them.
	changed, finished := l.state()
	existing, partial := readCompleteLines(reader)
	if opts.Tail > 0 && len(existing) > opts.Tail {
		existing = existing[len(existing)-opts.Tail:]
	}
	for _, raw := range existing {
		if err := emit(raw); err != nil {
			return ignoreLimit(err)
		}
	}
	if !opts.Follow {
		return nil
	}
	for {
		if finished {
			more, _ := readCompleteLines(reader)
			for _, raw := range more {
				if err := emit(partial + raw); err != nil {
					return ignoreLimit(err)
				}
				partial = ""
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
		changed, finished = l.state()
		more, rest := readCompleteLines(reader)
		for i, raw := range more {
			if i == 0 {
				raw = partial + raw
				partial = ""
			}
			if err := emit(raw); err != nil {
				return ignoreLimit(err)
			}
		}
		partial += rest
	}
}

// readCompleteLines reads to EOF and returns the complete lines (without newline) and a trailing partial.
func readCompleteLines(r *bufio.Reader) ([]string, string) {
	var lines []string
	for {
		s, err := r.ReadString('\n')
		if err != nil {
			return lines, s
		}
		lines = append(lines, strings.TrimSuffix(s, "\n"))
	}
}

var errLimitReached = errors.New("log limit reached")

func ignoreLimit(err error) error {
	if errors.Is(err, errLimitReached) {
		return nil
	}
	return err
}

// limitedWriter implements limitBytes: it stops the copy once limit bytes were written (limit 0: no limit).
type limitedWriter struct {
	w       io.Writer
	limit   int
	written int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.limit <= 0 {
		return l.w.Write(p)
	}
	left := l.limit - l.written
	if left <= 0 {
		return 0, errLimitReached
	}
	if len(p) > left {
		n, err := l.w.Write(p[:left])
		l.written += n
		if err != nil {
			return n, err
		}
		return n, errLimitReached
	}
	n, err := l.w.Write(p)
	l.written += n
	return n, err
}

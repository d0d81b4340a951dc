package localpg

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// logTail returns the end of the server log, for error messages.
func (p *Postgres) logTail(t *tailBuffer) string {
	var b []byte
	if t != nil {
		b = t.Bytes()
	} else if f, err := os.Open(filepath.Join(p.Dir, "postgres.log")); err == nil {
		defer f.Close()
		if fi, err := f.Stat(); err == nil && fi.Size() > 2048 {
			f.Seek(fi.Size()-2048, io.SeekStart)
		}
		b, _ = io.ReadAll(f)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return ""
	}
	return "\nserver log (end):\n" + string(b)
}

// tailBuffer keeps the last 4 KiB written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if len(t.buf) > 4096 {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-4096:]...)
	}
	return len(b), nil
}

func (t *tailBuffer) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.buf...)
}

// errorless hides write errors, so that a failing log writer does not stop
// the copy (the server would then get EPIPE).
type errorless struct{ w io.Writer }

func (e errorless) Write(b []byte) (int, error) {
	e.w.Write(b)
	return len(b), nil
}

package kubernetes

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/podflow/podflow/internal/flowtest"
	"github.com/podflow/podflow/operators"
)

// TestLogFollowerResumesAfterDrop: the log stream breaks mid-line; the
// follower resumes from the last timestamp (which the API rounds down to the
// second, so lines are sent again) and writes every line exactly once.
func TestLogFollowerResumesAfterDrop(t *testing.T) {
	t.Parallel()
	lines := []string{
		"2026-11-28T09:00:00.100000000Z one",
		"2026-11-28T09:00:00.200000000Z two",
		"2026-11-28T09:00:00.200000000Z two, same time",
		"2026-11-28T09:00:00.300000000Z three",
		"2026-11-28T09:00:01.000000000Z four",
	}
	var (
		mu       sync.Mutex
		requests []string
	)
	terminated := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/pods/p/log") {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		mu.Lock()
		requests = append(requests, fmt.Sprintf("follow=%s sinceTime=%s", q.Get("follow"), q.Get("sinceTime")))
		n := len(requests)
		mu.Unlock()
		flusher := w.(http.Flusher)
		switch n {
		case 1: // three lines, then the connection drops in the middle of the fourth
			for _, l := range lines[:3] {
				fmt.Fprintln(w, l)
			}
			fmt.Fprint(w, lines[3][:20])
			flusher.Flush()
			panic(http.ErrAbortHandler)
		case 2: // resumed: everything from 09:00:00, then the stream ends
			for _, l := range lines {
				fmt.Fprintln(w, l)
			}
			flusher.Flush()
		default: // the last read after termination
			for _, l := range lines {
				fmt.Fprintln(w, l)
			}
		}
	}))
	defer srv.Close()
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	log := flowtest.NewLog()
	f := &logFollower{r: &podRun{tc: &operators.TaskContext{Log: log}, client: cs, ns: "ns", name: "p"},
		container: "base", terminated: terminated, done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() { // the container terminates once its last line was read
		for len(log.SourceLines("base")) < len(lines) && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		close(terminated)
	}()
	f.run(ctx)
	if ctx.Err() != nil {
		t.Fatal("follower did not finish")
	}
	expect(t, "lines", log.SourceLines("base"), []string{"one", "two", "two, same time", "three", "four"})
	mu.Lock()
	defer mu.Unlock()
	expect(t, "requests", requests, []string{
		"follow=true sinceTime=",
		"follow=true sinceTime=2026-11-28T09:00:00Z",
		"follow= sinceTime=2026-11-28T09:00:01Z", // false is left out
	})
}

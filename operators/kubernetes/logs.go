package kubernetes

import (
	"bufio"
	"context"
	"errors"
	"io"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podflow/podflow/operators"
)

// logFollower copies one container's log into the task log, with the
// container's name as the line's source. Lines carry the kubelet's
// timestamps; when the stream drops it resumes from the last timestamp and
// skips what it already wrote, so no line is lost or repeated.
type logFollower struct {
	r         *podRun
	container string
	cancel    context.CancelFunc
	// terminated is closed when the container has terminated: the next read
	// is the last one.
	terminated chan struct{}
	done       chan struct{}

	lastTS time.Time
	atLast int // lines written with timestamp lastTS
}

// LogCursor is where copying one container's log stopped: the kubelet
// timestamp of the last line written and how many lines carried it.
type LogCursor struct {
	TS     time.Time `json:"ts"`
	AtLast int       `json:"at_last"`
}

// LogCursors are the cursors by container name.
type LogCursors map[string]LogCursor

// copyLogsSoFar copies, once and without following, what each wanted
// container that has started wrote since its cursor, and returns the new
// cursors. A container whose log cannot be read is said in the task log and
// tried again next time: logs never fail a task.
func (r *podRun) copyLogsSoFar(ctx context.Context, pod *corev1.Pod, from LogCursors) LogCursors {
	next := LogCursors{}
	for name, c := range from {
		next[name] = c
	}
	if !r.plan.opts.GetLogs {
		return next
	}
	copyAll := func(statuses []corev1.ContainerStatus, wanted ContainerNames) {
		for _, s := range statuses {
			if s.Name == SidecarContainerName || !wanted.Wants(s.Name) || (s.State.Running == nil && s.State.Terminated == nil) {
				continue
			}
			c := next[s.Name]
			f := &logFollower{r: r, container: s.Name, lastTS: c.TS, atLast: c.AtLast}
			if err := f.read(ctx, false); err != nil {
				r.tc.Log.Printf("log of container %s: %v (copied at the next interval)", s.Name, err)
			}
			next[s.Name] = LogCursor{TS: f.lastTS, AtLast: f.atLast}
		}
	}
	copyAll(pod.Status.InitContainerStatuses, r.plan.opts.InitContainerLogs)
	copyAll(pod.Status.ContainerStatuses, r.plan.opts.ContainerLogs)
	return next
}

// observe starts a log follower for each wanted container that has started,
// and tells followers when their container terminated.
func (r *podRun) observe(ctx context.Context, pod *corev1.Pod) {
	if !r.plan.opts.GetLogs {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	check := func(statuses []corev1.ContainerStatus, wanted ContainerNames) {
		for _, s := range statuses {
			if s.Name == SidecarContainerName || !wanted.Wants(s.Name) {
				continue
			}
			started := s.State.Running != nil || s.State.Terminated != nil
			f := r.logs[s.Name]
			if f == nil && started {
				f = r.follow(ctx, s.Name)
			}
			if f != nil && s.State.Terminated != nil {
				select {
				case <-f.terminated:
				default:
					close(f.terminated)
				}
			}
		}
	}
	check(pod.Status.InitContainerStatuses, r.plan.opts.InitContainerLogs)
	check(pod.Status.ContainerStatuses, r.plan.opts.ContainerLogs)
}

// follow starts a follower; r.mu is held.
func (r *podRun) follow(ctx context.Context, container string) *logFollower {
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	f := &logFollower{r: r, container: container, cancel: cancel,
		terminated: make(chan struct{}), done: make(chan struct{})}
	if c, ok := r.logCursors[container]; ok {
		f.lastTS, f.atLast = c.TS, c.AtLast // earlier resumes copied up to here
	}
	r.logs[container] = f
	r.logsWG.Add(1)
	go func() {
		defer r.logsWG.Done()
		defer close(f.done)
		f.run(fctx)
	}()
	// The task's own context ending (kill) ends the stream too.
	context.AfterFunc(ctx, cancel)
	return f
}

// stopLogs lets followers of terminated containers finish their last read
// (up to grace) and stops the others.
func (r *podRun) stopLogs(grace time.Duration) {
	r.mu.Lock()
	followers := make([]*logFollower, 0, len(r.logs))
	for _, f := range r.logs {
		followers = append(followers, f)
	}
	r.mu.Unlock()
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	for _, f := range followers {
		select {
		case <-f.terminated:
		default:
			f.cancel()
		}
	}
	for _, f := range followers {
		select {
		case <-f.done:
		case <-deadline.C:
			for _, g := range followers {
				g.cancel()
			}
			r.logsWG.Wait()
			return
		}
	}
	for _, f := range followers {
		f.cancel()
	}
}

func (f *logFollower) run(ctx context.Context) {
	for {
		final := isClosed(f.terminated)
		err := f.readUntilTerminated(ctx, final)
		if ctx.Err() != nil || (final && err == nil) {
			return
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			f.r.tc.Log.Printf("log stream of container %s: %v (resuming)", f.container, err)
		}
		if isClosed(f.terminated) {
			continue // one last read, from the last timestamp
		}
		// The stream ended while the container may still run: resume once it
		// terminated, or after a short pause.
		t := time.NewTimer(retryDelay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-f.terminated:
		case <-t.C:
		}
		t.Stop()
	}
}

// readUntilTerminated follows the log until the stream ends or the container
// terminates (a follow stream may outlive its container; the last lines are
// then read without following), or reads it once when final.
func (f *logFollower) readUntilTerminated(ctx context.Context, final bool) error {
	if final {
		return f.read(ctx, false)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-f.terminated:
			cancel()
		case <-stop:
		}
	}()
	return f.read(rctx, true)
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// read opens one log stream from the last timestamp and copies it.
func (f *logFollower) read(ctx context.Context, follow bool) error {
	opts := &corev1.PodLogOptions{Container: f.container, Follow: follow, Timestamps: true}
	if !f.lastTS.IsZero() {
		since := metav1.NewTime(f.lastTS)
		opts.SinceTime = &since
	}
	rc, err := f.r.client.CoreV1().Pods(f.r.ns).GetLogs(f.r.name, opts).Stream(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	from, skip := f.lastTS, f.atLast
	br := bufio.NewReaderSize(rc, 64*1024)
	for {
		line, err := br.ReadString('\n')
		switch {
		case err == nil:
			f.write(strings.TrimRight(line, "\r\n"), from, &skip)
		case errors.Is(err, io.EOF):
			// A last line without newline is complete at the end of the log.
			if line != "" {
				f.write(strings.TrimRight(line, "\r"), from, &skip)
			}
			return nil
		default:
			// A line cut by a dropped stream is read again on resume.
			return err
		}
	}
}

// write writes one timestamped line unless an earlier stream wrote it: a
// stream resumed from the time from repeats the lines at and after it, of
// which skip lines at from were written. Within a stream no line is
// dropped: a container's stdout and stderr lines are stamped apart, so a log
// is not always in time order (an echo's output may carry an earlier time
// than the shell's trace of it written before).
func (f *logFollower) write(line string, from time.Time, skip *int) {
	stamp, text, ok := strings.Cut(line, " ")
	ts, err := time.Parse(time.RFC3339Nano, stamp)
	if !ok || err != nil {
		f.r.tc.Log.Line(f.container, line)
		return
	}
	switch {
	case ts.Before(from):
		return
	case ts.Equal(from) && *skip > 0:
		*skip--
		return
	}
	switch {
	case ts.Equal(f.lastTS):
		f.atLast++
	case ts.After(f.lastTS):
		f.lastTS, f.atLast = ts, 1
	}
	operators.LineAt(f.r.tc.Log, ts, f.container, text)
}

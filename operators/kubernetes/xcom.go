package kubernetes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/podflow/podflow/xcomstore"
)

// readEndMarker follows return.json in the read's output: seeing it means
// the whole file was read, even when the exec then ends badly because the
// sidecar, released by the same script, exited and took the exec's shell
// with it (a container's remaining processes die with it).
const readEndMarker = "\n--podflow-xcom-end--"

// readAndStopScript prints return.json if it exists — at most one byte
// over the XCom limit, so an oversized file is never sent whole — and the
// end marker, then releases the sidecar: one exec for both.
var readAndStopScript = fmt.Sprintf(`if [ -f %[1]s ]; then head -c %[2]d %[1]s; fi; printf '%[4]s'; touch %[3]s`,
	XComReturnFile, xcomstore.DefaultMaxSize+1, XComDoneFile, strings.ReplaceAll(readEndMarker, "\n", `\n`))

// readXCom reads the XCom value from the sidecar and stops it. An empty or
// missing file is no value.
func (r *podRun) readXCom(ctx context.Context) (value any, ok bool, err error) {
	out, err := r.exec(ctx, SidecarContainerName, xcomstore.DefaultMaxSize+1+len(readEndMarker), "sh", "-c", readAndStopScript)
	out, complete := bytes.CutSuffix(out, []byte(readEndMarker))
	if err != nil && !complete {
		r.stopSidecar(ctx)
		return nil, false, fmt.Errorf("read XCom from %s: %w", XComReturnFile, err)
	}
	r.mu.Lock()
	r.sidecarStopped = true
	r.mu.Unlock()
	if len(out) > xcomstore.DefaultMaxSize {
		return nil, false, fmt.Errorf("%s is over the XCom limit of %d bytes", XComReturnFile, xcomstore.DefaultMaxSize)
	}
	return ParseXCom(out)
}

// ParseXCom decodes return.json's content; numbers keep their exact text.
func ParseXCom(b []byte) (value any, ok bool, err error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, false, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	err = dec.Decode(&value)
	if err == nil {
		var extra any
		if dec.Decode(&extra) != io.EOF {
			err = errors.New("more than one JSON value")
		}
	}
	if err != nil {
		first := b
		if len(first) > 80 {
			first = first[:80]
		}
		return nil, false, fmt.Errorf("invalid JSON in %s (%v); it starts with %q", XComReturnFile, err, first)
	}
	return value, true, nil
}

// stopSidecar creates the sentinel file the sidecar waits for, retrying a
// few times; it never signals processes.
func (r *podRun) stopSidecar(ctx context.Context) {
	r.mu.Lock()
	stopped := r.sidecarStopped
	r.mu.Unlock()
	if stopped {
		return
	}
	if pod := r.current(); pod != nil {
		if s := containerStatus(pod.Status.ContainerStatuses, SidecarContainerName); s != nil && s.State.Terminated != nil {
			return
		}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if _, err = r.exec(ctx, SidecarContainerName, 0, "touch", XComDoneFile); err == nil {
			r.mu.Lock()
			r.sidecarStopped = true
			r.mu.Unlock()
			return
		}
		if sleep(ctx, time.Duration(attempt+1)*retryDelay) != nil {
			break
		}
	}
	r.tc.Log.Printf("stop XCom sidecar of pod %s/%s: %v", r.ns, r.name, err)
}

// exec runs a command in a container of the pod and returns its stdout, at
// most maxOut bytes of it; a command that sends more fails. On an error,
// what was received so far is returned with it.
func (r *podRun) exec(ctx context.Context, container string, maxOut int, command ...string) ([]byte, error) {
	req := r.client.CoreV1().RESTClient().Post().Resource("pods").Namespace(r.ns).Name(r.name).
		SubResource("exec").VersionedParams(&corev1.PodExecOptions{
		Container: container, Command: command, Stdout: true, Stderr: true,
	}, scheme.ParameterCodec)
	ws, err := remotecommand.NewWebSocketExecutor(r.restConfig, "GET", req.URL().String())
	if err != nil {
		return nil, fmt.Errorf("exec in %s: %w", container, err)
	}
	spdy, err := remotecommand.NewSPDYExecutor(r.restConfig, "POST", req.URL())
	if err != nil {
		return nil, fmt.Errorf("exec in %s: %w", container, err)
	}
	// Fall back to SPDY when the WebSocket upgrade is refused: it is a GET,
	// which an API server may authorize as `get pods/exec`, while SPDY's POST
	// needs only `create pods/exec` — the least rights podflow asks for.
	executor, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err) ||
			apierrors.IsForbidden(err) || strings.Contains(err.Error(), "is forbidden")
	})
	if err != nil {
		return nil, fmt.Errorf("exec in %s: %w", container, err)
	}
	// Whatever the container sends, keep at most maxOut bytes in memory.
	stdout := &cappedBuffer{max: maxOut}
	stderr := &cappedBuffer{max: 64 << 10}
	if err := executor.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: stdout, Stderr: stderr}); err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return stdout.Bytes(), fmt.Errorf("exec %q in container %s: %w: %s", strings.Join(command, " "), container, err, msg)
		}
		return stdout.Bytes(), fmt.Errorf("exec %q in container %s: %w", strings.Join(command, " "), container, err)
	}
	return stdout.Bytes(), nil
}

// errOutputTooLarge stops an exec whose output passes its buffer's cap.
var errOutputTooLarge = errors.New("output over the size limit")

// cappedBuffer keeps the first max bytes written to it and fails the write
// that would pass them.
type cappedBuffer struct {
	bytes.Buffer
	max int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); len(p) > room {
		b.Buffer.Write(p[:max(room, 0)])
		return max(room, 0), errOutputTooLarge
	}
	return b.Buffer.Write(p)
}

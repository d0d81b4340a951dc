package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
)

func TestPortForwardReachesThePodsPort(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("needs python3 for a small HTTP server")
	}
	ns := newNamespace(t)
	port := 20000 + int(time.Now().UnixNano()%20000)
	createPod(t, simplePod(ns, "web", "python3", "-u", "-m", "http.server", fmt.Sprint(port), "--bind", "127.0.0.1"))
	waitRunning(t, ns, "web")
	followLogLines(t, ns, "web", "main", 1) // "Serving HTTP on 127.0.0.1 port …"

	transport, upgrader, err := spdy.RoundTripperFor(shared.config)
	if err != nil {
		t.Fatal(err)
	}
	url := shared.client.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name("web").SubResource("portforward").URL()
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, "POST", url)
	stop, ready := make(chan struct{}), make(chan struct{})
	defer close(stop)
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{fmt.Sprintf("0:%d", port)}, stop, ready, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	go fw.ForwardPorts() //nolint:errcheck // ends with stop.
	select {
	case <-ready:
	case <-time.After(20 * time.Second):
		t.Fatal("port-forward not ready")
	}
	ports, err := fw.GetPorts()
	if err != nil || len(ports) != 1 {
		t.Fatalf("forwarded ports %v: %v", ports, err)
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", ports[0].Local))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Directory listing") {
		t.Errorf("GET through port-forward: %d %.80q", resp.StatusCode, body)
	}
}

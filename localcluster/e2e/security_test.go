package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/grpclog"
)

func init() {
	// Refused etcd connections are expected in TestNoListeningPortAcceptsAnUnauthenticatedEtcdWrite.
	grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, io.Discard))
}

// dockerDefaultCaps is Docker's default capability set (no CAP_SYS_ADMIN) as /proc/self/status prints it.
const dockerDefaultCaps = "00000000a80425fb"

// listeningPorts returns the TCP ports the process pid listens on (apiserver, kubelet, etcd client, peer).
func listeningPorts(t *testing.T, pid int) []int {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if inode, ok := strings.CutPrefix(link, "socket:["); err == nil && ok {
			inodes[strings.TrimSuffix(inode, "]")] = true
		}
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ports []int
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		// sl local_address rem_address st ... inode (field 9)
		if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] {
			continue
		}
		_, portHex, _ := strings.Cut(fields[1], ":")
		if port, err := strconv.ParseUint(portHex, 16, 16); err == nil {
			ports = append(ports, int(port))
		}
	}
	return ports
}

// Every port the cluster listens on is reachable by any local user. None may accept an etcd write from a
// client without the cluster's certificates: not over plain HTTP, not over TLS without a client
// certificate, not with etcd's own client.
func TestNoListeningPortAcceptsAnUnauthenticatedEtcdWrite(t *testing.T) {
	t.Parallel()
	ports := listeningPorts(t, shared.cmd.Process.Pid)
	if len(ports) < 4 {
		t.Fatalf("found listening ports %v: want at least apiserver, kubelet, etcd client and peer", ports)
	}
	body := `{"key":"L3JlZ2lzdHJ5L3B3bmVk","value":"eA=="}` // /registry/pwned = x
	plain := &http.Client{Timeout: 3 * time.Second}
	noCert := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // probing as an attacker would.
	for _, port := range ports {
		for scheme, client := range map[string]*http.Client{"http": plain, "https": noCert} {
			url := fmt.Sprintf("%s://127.0.0.1:%d/v3/kv/put", scheme, port)
			resp, err := client.Post(url, "application/json", strings.NewReader(body))
			if err != nil {
				continue
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Errorf("POST %s without credentials: 200 OK", url)
			}
		}
		for _, scheme := range []string{"http", "https"} {
			endpoint := fmt.Sprintf("%s://127.0.0.1:%d", scheme, port)
			cfg := clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()}
			if scheme == "https" {
				cfg.TLS = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // as an attacker would.
			}
			c, err := clientv3.New(cfg)
			if err != nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err = c.Put(ctx, "/registry/pwned", "x")
			cancel()
			c.Close()
			if err == nil {
				t.Errorf("etcd client without a certificate could Put through %s", endpoint)
			}
		}
	}
}

func TestAnonymousRequestsCannotCreatePods(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ctx := testContext(t, 30*time.Second)
	anonymous, err := kubernetes.NewForConfig(rest.AnonymousClientConfig(shared.config))
	if err != nil {
		t.Fatal(err)
	}
	pod := simplePod(ns, "anonymous", "true")
	pod.Spec.Volumes = []corev1.Volume{{Name: "host", VolumeSource: corev1.VolumeSource{
		HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}
	_, err = anonymous.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("anonymous create pod: want Forbidden, got %v", err)
	}
	if !strings.Contains(err.Error(), `User "system:anonymous" cannot create resource "pods"`) {
		t.Errorf("error %q does not name system:anonymous", err)
	}
	for what, try := range map[string]func() error{
		"list secrets": func() error {
			_, err := anonymous.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
			return err
		},
		"list clusterrolebindings": func() error {
			_, err := anonymous.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
			return err
		},
	} {
		if err := try(); !apierrors.IsForbidden(err) {
			t.Errorf("anonymous %s: want Forbidden, got %v", what, err)
		}
	}
}

// A pod is confined like a default Docker/Kubernetes container: Docker's default capabilities, read-only
// /proc/sys and /sys, no way back to the host's root through a chroot escape, and the cluster's own
// directory (CA key, client certificates) hidden. exec gets the same limits.
func TestPodsAreConfined(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	marker := filepath.Join(shared.dir, "host-only-marker-"+ns)
	if err := os.WriteFile(marker, []byte("host\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	escapeFile := "/localcluster-escape-" + ns
	t.Cleanup(func() { os.Remove(marker); os.Remove(escapeFile) })

	checks := "grep ^CapEff /proc/self/status; " +
		// Writes the hostname it read, so that a build without the fix does not rename the host.
		"h=$(cat /proc/sys/kernel/hostname); echo \"$h\" > /proc/sys/kernel/hostname 2>/dev/null && echo proc-sys-writable; " +
		"touch /sys/localcluster-probe 2>/dev/null && echo sys-writable; " +
		"mount -t tmpfs t /mnt 2>/dev/null && echo mount-allowed; " +
		"ls /proc/1/root/ >/dev/null 2>&1 && echo pause-root-readable; " +
		"test -e " + marker + " && echo marker-visible; " +
		"test -e " + filepath.Join(shared.dir, "pki", "ca.key") + " && echo ca-key-visible; " +
		"echo checked"
	escape := `mkdir "x"; chroot "x" or die "chroot x: $!"; chdir ".." for 1..64; chroot "." or die "chroot .: $!";` +
		`print((-e "` + marker + `") ? "escape-marker-visible\n" : "escape-marker-hidden\n");` +
		`if (open(my $f, ">", "` + escapeFile + `")) { print $f "escaped\n"; close($f) }`
	pod := simplePod(ns, "confined", "sh", "-c", checks+"; perl -e '"+escape+"'; echo ready; sleep 60")
	createPod(t, pod)
	waitRunning(t, ns, pod.Name)

	var logs string
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(logs, "ready\n") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		logs = podLogs(t, ns, pod.Name, "main", nil)
	}
	assertConfined(t, "container", logs)
	if !strings.Contains(logs, "escape-marker-hidden") {
		t.Errorf("chroot escape: want the host-only marker hidden:\n%s", logs)
	}
	if _, err := os.Stat(escapeFile); err == nil {
		t.Errorf("after a chroot escape the pod wrote %s on the host", escapeFile)
	}

	stdout, stderr, err := execInPod(t, ns, pod.Name, "main", false, "sh", "-c", checks)
	if err != nil {
		t.Fatalf("exec: %v (stderr %q)", err, stderr)
	}
	assertConfined(t, "exec", stdout)
}

func assertConfined(t *testing.T, who, out string) {
	t.Helper()
	if !strings.Contains(out, "CapEff:\t"+dockerDefaultCaps+"\n") {
		t.Errorf("%s: want CapEff %s (no CAP_SYS_ADMIN):\n%s", who, dockerDefaultCaps, out)
	}
	if !strings.Contains(out, "checked\n") {
		t.Errorf("%s: the checks did not run to the end:\n%s", who, out)
	}
	for _, bad := range []string{"proc-sys-writable", "sys-writable", "mount-allowed", "pause-root-readable",
		"marker-visible", "ca-key-visible"} {
		if strings.Contains(out, bad+"\n") {
			t.Errorf("%s: %s:\n%s", who, bad, out)
		}
	}
}

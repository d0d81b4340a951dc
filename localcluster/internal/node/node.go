// Package node is the cluster's one node: a virtual-kubelet whose provider runs each pod's containers as host
// processes inside a per-pod PID namespace, with volumes bind-mounted in a private mount namespace per
// container, and serves logs and exec to the apiserver.
package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"time"

	vknode "github.com/virtual-kubelet/virtual-kubelet/node"
	"github.com/virtual-kubelet/virtual-kubelet/node/nodeutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/component-base/version"
)

// Config describes the node.
type Config struct {
	Name    string
	Labels  map[string]string
	Client  kubernetes.Interface
	PodsDir string
	// ServingCert and ServingKey are the kubelet's TLS identity; ClientCA verifies the apiserver's client
	// certificate, so only the apiserver can read logs or exec.
	ServingCert, ServingKey, ClientCA string
	// APIServerHost and APIServerPort replace KUBERNETES_SERVICE_HOST/PORT in containers, so in-cluster
	// clients reach the apiserver (the service's cluster IP is not routable here).
	APIServerHost, APIServerPort string
	// HostRootfs lets containers write the host's root filesystem directly instead of a private
	// copy-on-write view of it.
	HostRootfs bool
	// HiddenDirs are hidden from containers with a private root (an empty read-only directory in their
	// place): the cluster's own directory, with its CA key, client certificates and other pods' volumes.
	HiddenDirs []string
}

// Node is a running node.
type Node struct {
	vk       *nodeutil.Node
	provider *provider
	server   *http.Server
	done     chan struct{}
	err      error
}

// Start registers the node and starts serving pods; it returns once the node controller runs. Cancel ctx to
// stop: every pod's processes are killed, then Wait returns.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if err := os.MkdirAll(cfg.PodsDir, 0o755); err != nil {
		return nil, fmt.Errorf("create pods dir: %w", err)
	}
	tlsConfig, err := servingTLS(cfg)
	if err != nil {
		return nil, err
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for kubelet API: %w", err)
	}
	port := int32(listener.Addr().(*net.TCPAddr).Port)

	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cfg.Client.CoreV1().Events("")})
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: cfg.Name})

	mux := http.NewServeMux()
	var prov *provider
	vk, err := nodeutil.NewNode(cfg.Name,
		func(pc nodeutil.ProviderConfig) (nodeutil.Provider, vknode.NodeProvider, error) {
			describeNode(pc.Node, cfg, port)
			var err error
			if prov, err = newProvider(cfg.Client, recorder, cfg); err != nil {
				return nil, nil, err
			}
			return prov, nil, nil
		},
		nodeutil.WithClient(cfg.Client),
		nodeutil.AttachProviderRoutes(mux),
		func(nc *nodeutil.NodeConfig) error {
			nc.EventRecorder = recorder
			// The node resolves env itself at each container start, so a missing secret shows as the
			// container's CreateContainerConfigError, as with a kubelet.
			nc.SkipDownwardAPIResolution = true
			nc.NumWorkers = 8
			nc.InformerResyncPeriod = 10 * time.Minute
			nc.StreamIdleTimeout = 4 * time.Hour
			nc.StreamCreationTimeout = 30 * time.Second
			nc.PodControllerConfigOpts = append(nc.PodControllerConfigOpts, withoutQueueThrottling, withStatusOnlyUpdates)
			return nil
		},
	)
	if err != nil {
		listener.Close()
		broadcaster.Shutdown()
		return nil, fmt.Errorf("create virtual-kubelet node: %w", err)
	}

	routes := http.NewServeMux()
	routes.Handle("/containerLogs/", logsHandler(prov))
	routes.Handle("/", mux)
	server := &http.Server{Handler: routes, TLSConfig: tlsConfig, ReadHeaderTimeout: 30 * time.Second}
	go server.ServeTLS(listener, "", "") //nolint:errcheck // Close ends it.

	n := &Node{vk: vk, provider: prov, server: server, done: make(chan struct{})}
	go func() {
		defer close(n.done)
		defer broadcaster.Shutdown()
		err := vk.Run(ctx)
		prov.stopAll()
		server.Close()
		if ctx.Err() == nil {
			n.err = err
		}
	}()
	select {
	case <-vk.Ready():
		return n, nil
	case <-n.done:
		return nil, fmt.Errorf("virtual-kubelet stopped while starting: %w", errOrUnknown(vk.Err()))
	case <-time.After(60 * time.Second):
		return nil, errors.New("virtual-kubelet not ready after 60s")
	}
}

// withoutQueueThrottling replaces the pod controller's default queue rate limiters, whose shared 10 qps
// bucket delays status updates by seconds once a hundred pods change at once; retries still back off.
func withoutQueueThrottling(cfg *vknode.PodControllerConfig) error {
	limiter := func() workqueue.TypedRateLimiter[any] {
		return workqueue.NewTypedItemExponentialFailureRateLimiter[any](time.Millisecond, 10*time.Second)
	}
	cfg.SyncPodsFromKubernetesRateLimiter = limiter()
	cfg.SyncPodStatusFromProviderRateLimiter = limiter()
	cfg.DeletePodsFromKubernetesRateLimiter = limiter()
	return nil
}

// Done is closed when the node has stopped and its pods' processes are gone.
func (n *Node) Done() <-chan struct{} { return n.done }

// Err is why the node stopped, nil when it was asked to.
func (n *Node) Err() error { return n.err }

// Wait blocks until the node has stopped.
func (n *Node) Wait() { <-n.done }

func errOrUnknown(err error) error {
	if err == nil {
		return errors.New("unknown reason")
	}
	return err
}

func servingTLS(cfg Config) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(cfg.ServingCert, cfg.ServingKey)
	if err != nil {
		return nil, fmt.Errorf("load kubelet serving certificate: %w", err)
	}
	caPEM, err := os.ReadFile(cfg.ClientCA)
	if err != nil {
		return nil, fmt.Errorf("read client CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("no certificate in %s", cfg.ClientCA)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
	}, nil
}

// describeNode fills in what kube-scheduler and kubectl look at: labels, capacity, addresses, versions and
// the kubelet endpoint the apiserver uses for logs and exec.
func describeNode(n *corev1.Node, cfg Config, port int32) {
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	n.Labels["kubernetes.io/os"] = "linux"
	n.Labels["kubernetes.io/arch"] = runtime.GOARCH
	n.Labels["kubernetes.io/hostname"] = cfg.Name
	n.Labels["node.kubernetes.io/instance-type"] = "localcluster"
	for k, v := range cfg.Labels {
		n.Labels[k] = v
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
		corev1.ResourceMemory:           *resource.NewQuantity(hostMemoryBytes(), resource.BinarySI),
		corev1.ResourcePods:             resource.MustParse("250"),
		corev1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
	}
	n.Status.Capacity = capacity
	n.Status.Allocatable = capacity.DeepCopy()
	n.Status.Addresses = []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: "127.0.0.1"},
		{Type: corev1.NodeHostName, Address: cfg.Name},
	}
	n.Status.DaemonEndpoints.KubeletEndpoint.Port = port
	n.Status.NodeInfo = corev1.NodeSystemInfo{
		KubeletVersion:          version.Get().GitVersion,
		OperatingSystem:         "linux",
		Architecture:            runtime.GOARCH,
		ContainerRuntimeVersion: "localcluster://host-processes",
		OSImage:                 "localcluster (pods run as host processes; images are ignored)",
	}
	for i := range n.Status.Conditions {
		c := &n.Status.Conditions[i]
		if c.Type != corev1.NodeReady {
			c.Status = corev1.ConditionFalse
			c.Reason = "KubeletHasNo" + string(c.Type)
		}
	}
}

func hostMemoryBytes() int64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 8 << 30
	}
	var kb int64
	if _, err := fmt.Sscanf(string(data), "MemTotal: %d kB", &kb); err != nil || kb == 0 {
		return 8 << 30
	}
	return kb * 1024
}

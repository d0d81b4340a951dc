// Package kube builds Kubernetes API clients from podflow's cluster settings
// (kubeconfig file, context, in-cluster service account) and caches them, so
// every task that talks to one cluster shares one client and its connection
// pool and rate limiter; and it shares pod watches (PodWatches): one watch
// per cluster and namespace, whatever the number of pods waited on.
package kube

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Client-side rate limits. client-go's defaults (5 QPS, burst 10) throttle a
// worker running tens of pod tasks at once; these keep the apiserver safe
// while not being the bottleneck.
const (
	DefaultQPS   = 50
	DefaultBurst = 100
)

// serviceAccountDir is where Kubernetes mounts a pod's service account.
const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// Cluster says how to reach one cluster. The zero value means the default
// kubeconfig ($KUBECONFIG, else ~/.kube/config) and its current context.
type Cluster struct {
	InCluster  bool   // use the pod's service account
	ConfigFile string // kubeconfig path; "" = KUBECONFIG, else ~/.kube/config
	ConfigData []byte // inline kubeconfig (a connection's kube_config); wins over ConfigFile
	Context    string // kubeconfig context; "" = current context
}

// Client is a clientset with the configuration it was built from.
type Client struct {
	Kubernetes kubernetes.Interface
	Config     *rest.Config
}

// Clients builds clients and caches one per cluster (kubeconfig file and its
// modification time, inline config, context). It is safe for concurrent use;
// its zero value is not usable, use NewClients.
type Clients struct {
	getenv  func(string) string
	homeDir func() (string, error)

	mu      sync.Mutex
	clients map[string]*Client
	observe func(method string, code int)
}

// NewClients returns an empty client cache that reads KUBECONFIG and the home
// directory from the process environment.
func NewClients() *Clients {
	return &Clients{getenv: os.Getenv, homeDir: os.UserHomeDir, clients: map[string]*Client{}}
}

// ErrNotInCluster is returned for in_cluster: true outside a pod.
var ErrNotInCluster = errors.New("in_cluster is true but podflow is not running inside a Kubernetes pod " +
	"(KUBERNETES_SERVICE_HOST is not set); set in_cluster: false and give config_file, a kubernetes connection or KUBECONFIG")

// Get returns the client for the cluster, building it on first use.
func (c *Clients) Get(cl Cluster) (*Client, error) {
	key, path, err := c.key(cl)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if client, ok := c.clients[key]; ok {
		return client, nil
	}
	cfg, err := c.restConfig(cl, path)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	client := &Client{Kubernetes: cs, Config: cfg}
	c.clients[key] = client
	return client, nil
}

// ConfigPath is the kubeconfig file a cluster setting resolves to:
// the explicit file, else KUBECONFIG's first entry, else ~/.kube/config.
func (c *Clients) ConfigPath(cl Cluster) (string, error) {
	if cl.ConfigFile != "" {
		return expandHome(cl.ConfigFile, c.homeDir)
	}
	if env := c.getenv("KUBECONFIG"); env != "" {
		return strings.Split(env, string(os.PathListSeparator))[0], nil
	}
	home, err := c.homeDir()
	if err != nil {
		return "", fmt.Errorf("find kubeconfig: no config_file, connection or KUBECONFIG, and no home directory: %w", err)
	}
	return filepath.Join(home, ".kube", "config"), nil
}

// key identifies a cluster setting; a kubeconfig file rewritten in place
// (e.g. a restarted local cluster) gets a new key and so a new client.
func (c *Clients) key(cl Cluster) (key, path string, err error) {
	switch {
	case cl.InCluster:
		return "in-cluster", "", nil
	case len(cl.ConfigData) > 0:
		sum := sha256.Sum256(cl.ConfigData)
		return "data:" + hex.EncodeToString(sum[:]) + "|" + cl.Context, "", nil
	}
	path, err = c.ConfigPath(cl)
	if err != nil {
		return "", "", err
	}
	st, err := os.Stat(path)
	if err != nil {
		return "", "", fmt.Errorf("read kubeconfig %s: %w", path, err)
	}
	return fmt.Sprintf("file:%s|%d|%d|%s", path, st.ModTime().UnixNano(), st.Size(), cl.Context), path, nil
}

func (c *Clients) restConfig(cl Cluster, path string) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	switch {
	case cl.InCluster:
		cfg, err = rest.InClusterConfig()
		if errors.Is(err, rest.ErrNotInCluster) {
			return nil, ErrNotInCluster
		}
		if err != nil {
			return nil, fmt.Errorf("in-cluster config: %w", err)
		}
	case len(cl.ConfigData) > 0:
		raw, lerr := clientcmd.Load(cl.ConfigData)
		if lerr != nil {
			return nil, fmt.Errorf("parse inline kubeconfig: %w", lerr)
		}
		cfg, err = clientcmd.NewNonInteractiveClientConfig(*raw, cl.Context, &clientcmd.ConfigOverrides{}, nil).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("inline kubeconfig: %w", err)
		}
	default:
		rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: path}
		overrides := &clientcmd.ConfigOverrides{CurrentContext: cl.Context}
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
		}
	}
	cfg.QPS = DefaultQPS
	cfg.Burst = DefaultBurst
	if observe := c.observe; observe != nil { // Get holds c.mu
		cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return observedTransport{rt: rt, observe: observe} }
	}
	cfg.UserAgent = "podflow"
	cfg.Timeout = 0 // watches and log streams are long; each call carries its own context
	return cfg, nil
}

// InClusterNamespace is the namespace of the pod podflow runs in, or "" when
// it does not run in a pod.
func InClusterNamespace() string {
	b, err := os.ReadFile(filepath.Join(serviceAccountDir, "namespace"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func expandHome(path string, homeDir func() (string, error)) (string, error) {
	if path != "~" && !strings.HasPrefix(path, "~/") {
		return path, nil
	}
	home, err := homeDir()
	if err != nil {
		return "", fmt.Errorf("expand %s: %w", path, err)
	}
	return filepath.Join(home, strings.TrimPrefix(path, "~")), nil
}

// ObserveRequests calls observe after every API request of clients built
// from now on, with the HTTP method and status code (0 when the request
// failed without a response). For metrics; a long watch counts once.
func (c *Clients) ObserveRequests(observe func(method string, code int)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.observe = observe
}

type observedTransport struct {
	rt      http.RoundTripper
	observe func(method string, code int)
}

func (t observedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(req)
	code := 0
	if resp != nil {
		code = resp.StatusCode
	}
	method := req.Method
	if req.URL != nil && req.URL.Query().Get("watch") == "true" {
		method = "WATCH"
	}
	t.observe(method, code)
	return resp, err
}

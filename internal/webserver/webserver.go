// Package webserver wires the web UI and the REST API into one HTTP server
// (podflow webserver, and podflow standalone's --webserver-addr). It is
// apart from internal/daemon so that the scheduler and triggerer binaries
// do not link the API, its OpenAPI validator and the UI.
package webserver

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/api"
	"github.com/podflow/podflow/internal/auth"
	"github.com/podflow/podflow/internal/config"
	"github.com/podflow/podflow/internal/daemon"
	"github.com/podflow/podflow/internal/health"
	"github.com/podflow/podflow/internal/kube"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/internal/version"
	"github.com/podflow/podflow/internal/web"
)

// New prepares the API server on addr: authentication as cfg says
// (auth none is refused unless addr is loopback), the REST API under
// /api/v1, /healthz and /metrics (reg). The returned run serves until ctx
// ends; ready, if set, receives the bound address (useful with :0).
func New(ctx context.Context, st *store.Store, cfg *config.Config, addr string, reg *prometheus.Registry,
	logger hclog.Logger, ready func(net.Addr)) (run func(context.Context) error, err error) {
	if err := auth.CheckListen(cfg.Auth, addr); err != nil {
		return nil, err
	}
	authn, err := auth.New(ctx, st, auth.ConfigFrom(cfg), logger.Named("auth"))
	if err != nil {
		return nil, fmt.Errorf("webserver: %w", err)
	}
	res, err := daemon.Secrets(cfg, st)
	if err != nil {
		return nil, err
	}
	v := version.Get()
	h, err := api.New(api.Options{Store: st, Auth: authn, Parser: dag.NewParser(daemon.Operators(logger).Schemas()),
		Logger: logger, Version: v.Version, Commit: v.Commit, Metrics: reg, Secrets: res, PodEvents: podEvents()})
	if err != nil {
		return nil, err
	}
	ui, err := web.New(web.Options{API: h.Handler, Watcher: h.Watcher, AuthOn: authn.Mode() != auth.ModeNone, Logger: logger})
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("webserver: %w", err)
		}
		logger.Info("serving the web UI and the REST API", "url", "http://"+ln.Addr().String()+"/", "api", "http://"+ln.Addr().String()+api.BasePath, "auth", cfg.Auth)
		if ready != nil {
			ready(ln.Addr())
		}
		// No WriteTimeout: wait streams and log follows last as long as
		// their run. Slow or idle clients are bounded by the others.
		srv := &http.Server{Handler: ui, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
			IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go h.Watcher.Run(ctx)
		if err := health.ServeUntil(ctx, srv, ln); err != nil {
			return fmt.Errorf("webserver: %w", err)
		}
		return nil
	}, nil
}

// podEvents reads pod events for the task page from the default cluster:
// the pod's service account inside Kubernetes (it needs to list events),
// else the kubeconfig (KUBECONFIG, ~/.kube/config). The client is
// built on first use, so a webserver without Kubernetes access starts and
// answers those requests with the reason.
func podEvents() api.PodEventsFunc {
	clients := kube.NewClients()
	cluster := kube.Cluster{InCluster: os.Getenv("KUBERNETES_SERVICE_HOST") != "" && os.Getenv("KUBECONFIG") == ""}
	return func(ctx context.Context, namespace, name string) ([]kube.PodEvent, error) {
		c, err := clients.Get(cluster)
		if err != nil {
			return nil, err
		}
		return kube.PodEvents(ctx, c.Kubernetes, namespace, name)
	}
}

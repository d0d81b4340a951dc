// Package health serves a daemon's /healthz and /metrics.
package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check is one health condition; nil means healthy.
type Check struct {
	Name string
	Run  func(ctx context.Context) error
}

// Handler serves /healthz (200 "ok", or 503 naming each failing check) and
// /metrics (Prometheus text format).
func Handler(reg *prometheus.Registry, checks ...Check) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		var failed []string
		for _, c := range checks {
			if err := c.Run(ctx); err != nil {
				failed = append(failed, c.Name+": "+err.Error())
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if len(failed) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, strings.Join(failed, "\n"))
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return mux
}

// ListenAddr is where an address given as only a port (":8080") listens:
// on loopback, so /metrics is not open to the network by accident. Give a
// host to listen elsewhere: "0.0.0.0:8080" (all interfaces, as the
// container image and the Kubernetes manifests do) or an interface's
// address.
func ListenAddr(addr string) string {
	if host, port, err := net.SplitHostPort(addr); err == nil && host == "" {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

// Serve serves h on ListenAddr(addr) until ctx ends. ready, if not nil,
// receives the bound address (useful with ":0").
func Serve(ctx context.Context, addr string, h http.Handler, ready func(net.Addr)) error {
	ln, err := net.Listen("tcp", ListenAddr(addr))
	if err != nil {
		return fmt.Errorf("health server: %w", err)
	}
	if ready != nil {
		ready(ln.Addr())
	}
	if err := ServeUntil(ctx, &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}, ln); err != nil {
		return fmt.Errorf("health server: %w", err)
	}
	return nil
}

// ServeUntil serves srv on ln until ctx ends, then shuts it down, giving
// open requests 5 s to finish.
func ServeUntil(ctx context.Context, srv *http.Server, ln net.Listener) error {
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

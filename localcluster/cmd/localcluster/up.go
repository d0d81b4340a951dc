package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/podflow/podflow/localcluster/internal/cluster"
)

// labelFlags collects repeated --node-label KEY=VALUE flags.
type labelFlags map[string]string

func (l labelFlags) String() string { return fmt.Sprint(map[string]string(l)) }

func (l labelFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", v)
	}
	l[k] = val
	return nil
}

func runUp(args []string) int {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	dir := fs.String("dir", "", "directory for the cluster's state, logs and kubeconfig (created if missing; its previous cluster state is removed)")
	nodeName := fs.String("node-name", "localcluster", "name of the node")
	exitWithParent := fs.Bool("exit-with-parent", false, "stop (as on SIGTERM) when the process that started localcluster exits, e.g. a test binary killed by a timeout")
	hostRootfs := fs.Bool("host-rootfs", false, "let containers write the host's root filesystem (default: each container writes a private copy-on-write view of it; volumes are shared as usual)")
	labels := labelFlags{}
	fs.Var(labels, "node-label", "node label KEY=VALUE (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "localcluster: --dir is required")
		return 2
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "localcluster: must run as root (pods get their own PID and mount namespaces)")
		return 1
	}
	for _, tool := range []string{"nsenter", "unshare"} {
		if _, err := exec.LookPath(tool); err != nil {
			fmt.Fprintf(os.Stderr, "localcluster: %s not found: install util-linux\n", tool)
			return 1
		}
	}
	absDir, err := filepath.Abs(*dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "localcluster: --dir %s: %v\n", *dir, err)
		return 1
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *exitWithParent {
		ctx = stopWhenParentExits(ctx)
	}
	started := time.Now()
	err = cluster.Run(ctx, cluster.Options{
		Dir:        absDir,
		NodeName:   *nodeName,
		NodeLabels: labels,
		HostRootfs: *hostRootfs,
		Ready: func(kubeconfig string) {
			fmt.Printf("localcluster ready kubeconfig=%s startup=%s\n", kubeconfig, time.Since(started).Round(time.Millisecond))
		},
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(os.Stderr, "localcluster: %v (component logs: %s)\n", err, filepath.Join(absDir, "localcluster.log"))
		return 1
	}
	fmt.Fprintln(os.Stderr, "localcluster: stopped")
	return 0
}

// stopWhenParentExits returns a context that ends when this process is re-parented, i.e. its parent died.
// Polling getppid is the one signal that works whatever thread of the parent started us.
func stopWhenParentExits(ctx context.Context) context.Context {
	ctx, cancel := context.WithCancel(ctx)
	parent := os.Getppid()
	go func() {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if os.Getppid() != parent {
					fmt.Fprintln(os.Stderr, "localcluster: parent process exited; stopping")
					cancel()
					return
				}
			}
		}
	}()
	return ctx
}

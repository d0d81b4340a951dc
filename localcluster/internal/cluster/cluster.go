// Package cluster starts a whole Kubernetes control plane in this process — embedded etcd, kube-apiserver,
// kube-scheduler, kube-controller-manager — plus one node whose pods run as host processes, and stops it
// again without leaving processes or mounts behind.
//
//	up ──▶ pki ──▶ etcd ──▶ kube-apiserver ──/readyz──▶ scheduler, controller-manager, node
//	                                                     └──▶ node Ready, untainted, default SA ──▶ kubeconfig + ready line
package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/podflow/podflow/localcluster/internal/node"
)

// Options configure one cluster.
type Options struct {
	// Dir holds everything the cluster writes: kubeconfig, pki/, etcd/, pods/, logs.
	Dir        string
	NodeName   string
	NodeLabels map[string]string
	// HostRootfs: containers write the host's root filesystem instead of a private copy-on-write view.
	HostRootfs bool
	// Ready is called once, with the path of the admin kubeconfig, when pods can be created and scheduled.
	Ready func(kubeconfig string)
}

// KubeconfigPath is where Run writes the admin kubeconfig.
func KubeconfigPath(dir string) string { return filepath.Join(dir, "kubeconfig") }

// Run starts the cluster and blocks until ctx ends or a component fails; then it stops everything.
func Run(ctx context.Context, opts Options) (err error) {
	unlock, err := lockDir(opts.Dir)
	if err != nil {
		return err
	}
	defer unlock()
	if err := prepareDir(opts.Dir); err != nil {
		return err
	}
	closeLogs, err := redirectComponentLogs(filepath.Join(opts.Dir, "localcluster.log"))
	if err != nil {
		return err
	}
	defer closeLogs()

	pki, err := NewPKI(filepath.Join(opts.Dir, "pki"))
	if err != nil {
		return fmt.Errorf("create certificates: %w", err)
	}
	store, err := startEtcd(ctx, opts.Dir, pki)
	if err != nil {
		return err
	}
	defer store.stop()

	// Components get their own context so that the node can be stopped (its processes killed) while the
	// apiserver is still up, and the apiserver is stopped before etcd.
	controlCtx, stopControl := context.WithCancel(context.WithoutCancel(ctx))
	api, err := startAPIServer(controlCtx, pki, store.clientURL)
	if err != nil {
		stopControl()
		return err
	}
	defer func() {
		stopControl()
		select {
		case <-api.done:
		case <-time.After(15 * time.Second):
		}
	}()

	internalKubeconfig := filepath.Join(pki.Dir, "admin.kubeconfig")
	if err := writeKubeconfig(internalKubeconfig, api.url, pki); err != nil {
		return err
	}
	cfg, err := restConfig(internalKubeconfig)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("create client: %w", err)
	}
	if err := waitAPIServerReady(ctx, client, api.done); err != nil {
		return err
	}

	schedulerDone, err := startScheduler(controlCtx, internalKubeconfig)
	if err != nil {
		return err
	}
	controllersDone, err := startControllerManager(controlCtx, internalKubeconfig, pki)
	if err != nil {
		return err
	}

	absDir, err := filepath.Abs(opts.Dir)
	if err == nil {
		// Masked inside each container's root by this path: it must not go through a symbolic link.
		absDir, err = filepath.EvalSymlinks(absDir)
	}
	if err != nil {
		return fmt.Errorf("cluster dir: %w", err)
	}
	nodeCtx, stopNode := context.WithCancel(context.WithoutCancel(ctx))
	n, err := node.Start(nodeCtx, node.Config{
		Name:          opts.NodeName,
		Labels:        opts.NodeLabels,
		Client:        client,
		PodsDir:       filepath.Join(opts.Dir, "pods"),
		ServingCert:   pki.KubeletCert,
		ServingKey:    pki.KubeletKey,
		ClientCA:      pki.CACert,
		APIServerHost: "127.0.0.1",
		APIServerPort: api.port(),
		HostRootfs:    opts.HostRootfs,
		HiddenDirs:    []string{absDir},
	})
	if err != nil {
		stopNode()
		return fmt.Errorf("start node: %w", err)
	}
	defer func() {
		stopNode()
		n.Wait()
	}()

	if err := waitSchedulable(ctx, client, opts.NodeName, n.Done()); err != nil {
		return err
	}
	kubeconfig := KubeconfigPath(opts.Dir)
	if err := writeKubeconfig(kubeconfig, api.url, pki); err != nil {
		return err
	}
	if opts.Ready != nil {
		opts.Ready(kubeconfig)
	}

	select {
	case <-ctx.Done():
		return nil
	case err := <-api.done:
		return fmt.Errorf("kube-apiserver stopped: %w", orStopped(err))
	case err := <-schedulerDone:
		return fmt.Errorf("kube-scheduler stopped: %w", orStopped(err))
	case err := <-controllersDone:
		return fmt.Errorf("kube-controller-manager stopped: %w", orStopped(err))
	case <-n.Done():
		return fmt.Errorf("node stopped: %w", orStopped(n.Err()))
	case err := <-store.server.Err():
		return fmt.Errorf("etcd stopped: %w", orStopped(err))
	}
}

func orStopped(err error) error {
	if err == nil {
		return errors.New("exited without error")
	}
	return err
}

// lockDir makes sure only one localcluster uses dir: the next one would wipe the running one's state.
// The kernel drops the lock when the process ends, however it ends.
func lockDir(dir string) (func(), error) {
	if dir == "" {
		return nil, errors.New("--dir is required")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another localcluster is running with --dir %s", dir)
	}
	return func() { f.Close() }, nil
}

// prepareDir creates dir and removes what a previous `up` left in it: every `up` starts a fresh cluster.
func prepareDir(dir string) error {
	if dir == "" {
		return errors.New("--dir is required")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	for _, name := range []string{"etcd", "pki", "pods", "kubeconfig", "localcluster.log", "etcd.log"} {
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("clean %s: %w", filepath.Join(dir, name), err)
		}
	}
	return nil
}

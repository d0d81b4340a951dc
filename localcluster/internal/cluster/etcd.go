package cluster

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
)

// etcd is an embedded, single-member, throwaway etcd listening on two free loopback ports. Both speak TLS
// and require a client certificate signed by the cluster's CA: every local user can connect to a loopback
// port, and whoever can write etcd owns the cluster and, through a hostPath pod, the host.
type etcd struct {
	server    *embed.Etcd
	clientURL string
}

// startEtcd starts etcd, retrying with new ports if another process took one between picking and binding.
func startEtcd(ctx context.Context, dir string, pki *PKI) (*etcd, error) {
	var err error
	for range 3 {
		var e *etcd
		if e, err = startEtcdOnce(ctx, dir, pki); err == nil {
			return e, nil
		}
		if !strings.Contains(err.Error(), "address already in use") {
			return nil, err
		}
		if rmErr := os.RemoveAll(filepath.Join(dir, "etcd")); rmErr != nil {
			return nil, fmt.Errorf("clean etcd dir: %w", rmErr)
		}
	}
	return nil, err
}

func startEtcdOnce(ctx context.Context, dir string, pki *PKI) (*etcd, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, fmt.Errorf("pick etcd ports: %w", err)
	}
	clientURL := url.URL{Scheme: "https", Host: fmt.Sprintf("127.0.0.1:%d", ports[0])}
	peerURL := url.URL{Scheme: "https", Host: fmt.Sprintf("127.0.0.1:%d", ports[1])}

	cfg := embed.NewConfig()
	cfg.Name = "localcluster"
	cfg.Dir = filepath.Join(dir, "etcd")
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	tls := transport.TLSInfo{
		CertFile:       pki.EtcdCert,
		KeyFile:        pki.EtcdKey,
		TrustedCAFile:  pki.CACert,
		ClientCertAuth: true,
	}
	cfg.ClientTLSInfo = tls
	cfg.PeerTLSInfo = tls
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{filepath.Join(dir, "etcd.log")}
	// The data is thrown away on every `up`; durability buys nothing and fsync costs seconds on a busy disk.
	cfg.UnsafeNoFsync = true

	server, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("start etcd: %w", err)
	}
	select {
	case <-server.Server.ReadyNotify():
	case err := <-server.Err():
		server.Close()
		return nil, fmt.Errorf("etcd failed while starting: %w", err)
	case <-time.After(60 * time.Second):
		server.Close()
		return nil, fmt.Errorf("etcd not ready after 60s")
	case <-ctx.Done():
		server.Close()
		return nil, ctx.Err()
	}
	return &etcd{server: server, clientURL: clientURL.String()}, nil
}

func (e *etcd) stop() {
	e.server.Close()
}

// freePorts asks the kernel for n distinct free loopback ports. They are released before use, so another
// process could take one in between; for a test cluster on one machine that window is acceptable.
func freePorts(n int) ([]int, error) {
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

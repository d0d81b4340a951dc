package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/grpclog"
)

func init() {
	// The refused connections are the point of these tests; gRPC's retry warnings would only be noise.
	grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, io.Discard))
}

// startTestEtcd starts the cluster's etcd exactly as `up` does, in a temporary directory.
func startTestEtcd(t *testing.T) (*etcd, *PKI) {
	t.Helper()
	dir := t.TempDir()
	pki, err := NewPKI(dir + "/pki")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := startEtcd(ctx, dir, pki)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.stop)
	return e, pki
}

func etcdClient(t *testing.T, endpoint string, tlsInfo *transport.TLSInfo) *clientv3.Client {
	t.Helper()
	cfg := clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 3 * time.Second, Logger: zap.NewNop()}
	if tlsInfo != nil {
		tlsCfg, err := tlsInfo.ClientConfig()
		if err != nil {
			t.Fatal(err)
		}
		cfg.TLS = tlsCfg
	}
	c, err := clientv3.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func put(c *clientv3.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := c.Put(ctx, "/registry/clusterrolebindings/pwned", "x")
	return err
}

func caPool(t *testing.T, pki *PKI) *x509.CertPool {
	t.Helper()
	caPEM, err := os.ReadFile(pki.CACert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return pool
}

// Any local user can connect to a loopback port: etcd must refuse everyone without a certificate from the
// cluster's CA, over plain HTTP, over TLS without a client certificate, and with the etcd client alike.
func TestEtcdRefusesClientsWithoutACertificate(t *testing.T) {
	e, pki := startTestEtcd(t)
	u, err := url.Parse(e.clientURL)
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme != "https" {
		t.Fatalf("etcd client URL %s: want https", e.clientURL)
	}
	peer := e.server.Config().ListenPeerUrls[0]
	if peer.Scheme != "https" {
		t.Fatalf("etcd peer URL %s: want https", peer.String())
	}
	httpClient := &http.Client{Timeout: 3 * time.Second}

	t.Run("plain HTTP", func(t *testing.T) {
		for _, host := range []string{u.Host, peer.Host} {
			resp, err := httpClient.Get("http://" + host + "/version")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					t.Errorf("plain HTTP GET http://%s/version: 200 OK", host)
				}
			}
		}
		if err := put(etcdClient(t, "http://"+u.Host, nil)); err == nil {
			t.Error("an etcd client over plain HTTP could Put")
		}
	})

	t.Run("TLS without client certificate", func(t *testing.T) {
		noCert := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: caPool(t, pki)}}}
		for _, host := range []string{u.Host, peer.Host} {
			resp, err := noCert.Get("https://" + host + "/version")
			if err == nil {
				resp.Body.Close()
				t.Errorf("GET https://%s/version without a client certificate: %s", host, resp.Status)
			} else if !strings.Contains(err.Error(), "certificate") {
				t.Logf("refused with %v", err)
			}
		}
		if err := put(etcdClient(t, e.clientURL, &transport.TLSInfo{TrustedCAFile: pki.CACert})); err == nil {
			t.Error("an etcd client without a client certificate could Put")
		}
	})

	t.Run("certificate from another CA", func(t *testing.T) {
		other, err := NewPKI(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		c := etcdClient(t, e.clientURL, &transport.TLSInfo{TrustedCAFile: pki.CACert,
			CertFile: other.EtcdClientCert, KeyFile: other.EtcdClientKey})
		if err := put(c); err == nil {
			t.Error("an etcd client with a certificate from another CA could Put")
		}
	})

	t.Run("the apiserver's certificate works", func(t *testing.T) {
		c := etcdClient(t, e.clientURL, &transport.TLSInfo{TrustedCAFile: pki.CACert,
			CertFile: pki.EtcdClientCert, KeyFile: pki.EtcdClientKey})
		if err := put(c); err != nil {
			t.Errorf("Put with the apiserver-etcd-client certificate: %v", err)
		}
	})
}

func TestPKIKeysAreOwnerOnly(t *testing.T) {
	p, err := NewPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{p.CAKey, p.EtcdKey, p.EtcdClientKey, p.AdminKey, p.ServiceAccountKey} {
		info, err := os.Stat(key)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", key, info.Mode().Perm())
		}
	}
	info, err := os.Stat(p.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o700 {
		t.Errorf("%s: mode %v, want 0700", p.Dir, info.Mode().Perm())
	}
}

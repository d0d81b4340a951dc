package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
)

func TestPKIChainsToOneCA(t *testing.T) {
	p, err := NewPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(p.CACert)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("no CA certificate")
	}
	for _, tc := range []struct {
		cert, key string
		usage     x509.ExtKeyUsage
		name      string
	}{
		{p.APIServerCert, p.APIServerKey, x509.ExtKeyUsageServerAuth, "127.0.0.1"},
		{p.APIServerCert, p.APIServerKey, x509.ExtKeyUsageServerAuth, "kubernetes.default.svc"},
		{p.KubeletCert, p.KubeletKey, x509.ExtKeyUsageServerAuth, "127.0.0.1"},
		{p.AdminCert, p.AdminKey, x509.ExtKeyUsageClientAuth, ""},
		{p.KubeletClientCert, p.KubeletClientKey, x509.ExtKeyUsageClientAuth, ""},
		{p.EtcdCert, p.EtcdKey, x509.ExtKeyUsageServerAuth, "127.0.0.1"},
		{p.EtcdClientCert, p.EtcdClientKey, x509.ExtKeyUsageClientAuth, ""},
	} {
		pair, err := tls.LoadX509KeyPair(tc.cert, tc.key)
		if err != nil {
			t.Fatalf("%s: %v", tc.cert, err)
		}
		leaf, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: tc.name, KeyUsages: []x509.ExtKeyUsage{tc.usage}})
		if err != nil {
			t.Errorf("%s for %q: %v", tc.cert, tc.name, err)
		}
	}
	admin, _ := tls.LoadX509KeyPair(p.AdminCert, p.AdminKey)
	leaf, _ := x509.ParseCertificate(admin.Certificate[0])
	if len(leaf.Subject.Organization) != 1 || leaf.Subject.Organization[0] != "system:masters" {
		t.Errorf("admin certificate groups %v, want system:masters", leaf.Subject.Organization)
	}
}

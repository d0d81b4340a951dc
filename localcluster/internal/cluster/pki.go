package cluster

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// PKI holds the file paths of every certificate and key the cluster uses. All certificates are signed by one
// throwaway CA created per `up`, so the admin kubeconfig, the apiserver's serving certificate, the kubelet's
// serving certificate and the apiserver→kubelet client certificate all verify against the same ca.crt.
type PKI struct {
	Dir string

	CACert, CAKey                        string
	APIServerCert, APIServerKey          string
	AdminCert, AdminKey                  string
	KubeletCert, KubeletKey              string
	KubeletClientCert, KubeletClientKey  string
	ServiceAccountKey, ServiceAccountPub string
	// EtcdCert serves etcd's client and peer URLs; EtcdClientCert is the apiserver's certificate for etcd.
	// etcd requires a client certificate signed by the CA, so only holders of pki/ (mode 0700) reach it.
	EtcdCert, EtcdKey             string
	EtcdClientCert, EtcdClientKey string
}

type signer struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// NewPKI generates a CA, serving and client certificates and a service-account signing key under dir.
func NewPKI(dir string) (*PKI, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create pki dir %s: %w", dir, err)
	}
	// Owner only even if it existed: the keys in it give control of the cluster (and so of the host).
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("restrict pki dir %s: %w", dir, err)
	}
	p := &PKI{
		Dir:               dir,
		CACert:            filepath.Join(dir, "ca.crt"),
		CAKey:             filepath.Join(dir, "ca.key"),
		APIServerCert:     filepath.Join(dir, "apiserver.crt"),
		APIServerKey:      filepath.Join(dir, "apiserver.key"),
		AdminCert:         filepath.Join(dir, "admin.crt"),
		AdminKey:          filepath.Join(dir, "admin.key"),
		KubeletCert:       filepath.Join(dir, "kubelet.crt"),
		KubeletKey:        filepath.Join(dir, "kubelet.key"),
		KubeletClientCert: filepath.Join(dir, "apiserver-kubelet-client.crt"),
		KubeletClientKey:  filepath.Join(dir, "apiserver-kubelet-client.key"),
		ServiceAccountKey: filepath.Join(dir, "sa.key"),
		ServiceAccountPub: filepath.Join(dir, "sa.pub"),
		EtcdCert:          filepath.Join(dir, "etcd.crt"),
		EtcdKey:           filepath.Join(dir, "etcd.key"),
		EtcdClientCert:    filepath.Join(dir, "apiserver-etcd-client.crt"),
		EtcdClientKey:     filepath.Join(dir, "apiserver-etcd-client.key"),
	}
	ca, err := p.writeCA()
	if err != nil {
		return nil, err
	}
	loopbackIPs := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.1")}
	apiserverNames := []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
		"kubernetes.default.svc.cluster.local"}
	leaves := []struct {
		certPath, keyPath string
		tmpl              *x509.Certificate
	}{
		{p.APIServerCert, p.APIServerKey, servingTemplate("kube-apiserver", apiserverNames, loopbackIPs)},
		{p.KubeletCert, p.KubeletKey, servingTemplate("localcluster-kubelet", []string{"localhost"}, loopbackIPs[:1])},
		{p.AdminCert, p.AdminKey, clientTemplate("localcluster-admin", "system:masters")},
		{p.KubeletClientCert, p.KubeletClientKey, clientTemplate("kube-apiserver-kubelet-client", "system:masters")},
		{p.EtcdCert, p.EtcdKey, etcdTemplate(loopbackIPs[:1])},
		{p.EtcdClientCert, p.EtcdClientKey, clientTemplate("kube-apiserver-etcd-client", "")},
	}
	for _, l := range leaves {
		if err := writeSigned(ca, l.tmpl, l.certPath, l.keyPath); err != nil {
			return nil, err
		}
	}
	if err := p.writeServiceAccountKey(); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *PKI) writeCA() (*signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "localcluster-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	if err := writePEM(p.CACert, "CERTIFICATE", der, 0o644); err != nil {
		return nil, err
	}
	if err := writeKey(p.CAKey, key); err != nil {
		return nil, err
	}
	return &signer{cert: cert, key: key}, nil
}

func (p *PKI) writeServiceAccountKey() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate service-account key: %w", err)
	}
	if err := writeKey(p.ServiceAccountKey, key); err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return fmt.Errorf("marshal service-account public key: %w", err)
	}
	return writePEM(p.ServiceAccountPub, "PUBLIC KEY", pub, 0o644)
}

func servingTemplate(cn string, names []string, ips []net.IP) *x509.Certificate {
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		DNSNames:    names,
		IPAddresses: ips,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
}

// etcdTemplate is etcd's serving certificate. It also authenticates as a client, because etcd's own gRPC
// gateway and its peer connections present it to the server.
func etcdTemplate(ips []net.IP) *x509.Certificate {
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localcluster-etcd"},
		DNSNames:    []string{"localhost"},
		IPAddresses: ips,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
}

func clientTemplate(cn, group string) *x509.Certificate {
	var org []string
	if group != "" {
		org = []string{group}
	}
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn, Organization: org},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
}

func writeSigned(ca *signer, tmpl *x509.Certificate, certPath, keyPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate key for %s: %w", tmpl.Subject.CommonName, err)
	}
	now := time.Now()
	tmpl.SerialNumber = serial()
	tmpl.NotBefore = now.Add(-time.Hour)
	tmpl.NotAfter = now.Add(5 * 365 * 24 * time.Hour)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return fmt.Errorf("sign certificate for %s: %w", tmpl.Subject.CommonName, err)
	}
	if err := writePEM(certPath, "CERTIFICATE", der, 0o644); err != nil {
		return err
	}
	return writeKey(keyPath, key)
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("marshal key %s: %w", path, err)
	}
	return writePEM(path, "EC PRIVATE KEY", der, 0o600)
}

func writePEM(path, blockType string, der []byte, mode os.FileMode) error {
	data := pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der})
	if err := os.WriteFile(path, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return big.NewInt(time.Now().UnixNano())
	}
	return n.Add(n, big.NewInt(1))
}

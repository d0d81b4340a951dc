package cluster

import (
	"context"
	"fmt"
	"net"
	"net/url"

	"github.com/spf13/pflag"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
	"k8s.io/kubernetes/cmd/kube-apiserver/app/options"
)

// apiserver is the real kube-apiserver, run in this process against the embedded etcd.
type apiserver struct {
	url  string
	done chan error
}

func apiserverFlags(pki *PKI, etcdURL string) []string {
	return []string{
		"--etcd-servers=" + etcdURL,
		"--etcd-cafile=" + pki.CACert,
		"--etcd-certfile=" + pki.EtcdClientCert,
		"--etcd-keyfile=" + pki.EtcdClientKey,
		// Kubernetes' default, stated because the security of the loopback port depends on it: anonymous
		// requests are system:anonymous, which RBAC lets read only /healthz, /version and the like.
		"--anonymous-auth=true",
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--tls-cert-file=" + pki.APIServerCert,
		"--tls-private-key-file=" + pki.APIServerKey,
		"--client-ca-file=" + pki.CACert,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + pki.ServiceAccountPub,
		"--service-account-signing-key-file=" + pki.ServiceAccountKey,
		"--authorization-mode=Node,RBAC",
		"--service-cluster-ip-range=10.0.0.0/24",
		"--kubelet-preferred-address-types=InternalIP",
		"--kubelet-client-certificate=" + pki.KubeletClientCert,
		"--kubelet-client-key=" + pki.KubeletClientKey,
		"--kubelet-certificate-authority=" + pki.CACert,
		"--allow-privileged=true",
		"--endpoint-reconciler-type=none",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
	}
}

// startAPIServer configures the kube-apiserver exactly as its command line would, on a listener it opens
// itself (so the port is never raced), and runs it until ctx ends. done receives Run's result.
func startAPIServer(ctx context.Context, pki *PKI, etcdURL string) (*apiserver, error) {
	s := options.NewServerRunOptions()
	fs := pflag.NewFlagSet("kube-apiserver", pflag.ContinueOnError)
	for _, f := range s.Flags().FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse(apiserverFlags(pki, etcdURL)); err != nil {
		return nil, fmt.Errorf("parse kube-apiserver flags: %w", err)
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for kube-apiserver: %w", err)
	}
	s.SecureServing.Listener = listener
	s.SecureServing.BindPort = listener.Addr().(*net.TCPAddr).Port

	if err := s.GenericServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		listener.Close()
		return nil, fmt.Errorf("kube-apiserver feature gates: %w", err)
	}
	completed, err := s.Complete(ctx)
	if err != nil {
		listener.Close()
		return nil, fmt.Errorf("complete kube-apiserver options: %w", err)
	}
	if errs := completed.Validate(); len(errs) != 0 {
		listener.Close()
		return nil, fmt.Errorf("validate kube-apiserver options: %w", utilerrors.NewAggregate(errs))
	}
	a := &apiserver{
		url:  fmt.Sprintf("https://127.0.0.1:%d", s.SecureServing.BindPort),
		done: make(chan error, 1),
	}
	go func() {
		a.done <- app.Run(ctx, completed)
	}()
	return a, nil
}

func (a *apiserver) port() string {
	u, err := url.Parse(a.url)
	if err != nil {
		return ""
	}
	return u.Port()
}

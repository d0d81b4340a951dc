package kube

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

const kubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: a
  cluster: {server: https://127.0.0.1:6443}
- name: b
  cluster: {server: https://127.0.0.2:6443}
contexts:
- name: a
  context: {cluster: a, user: u}
- name: b
  context: {cluster: b, user: u}
current-context: a
users:
- name: u
  user: {token: t}
`

func testClients(env map[string]string, home string) *Clients {
	c := NewClients()
	c.getenv = func(k string) string { return env[k] }
	c.homeDir = func() (string, error) {
		if home == "" {
			return "", errors.New("no home")
		}
		return home, nil
	}
	return c
}

func TestConfigPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cluster Cluster
		env     map[string]string
		home    string
		want    string
		wantErr bool
	}{
		{"config_file wins", Cluster{ConfigFile: "/etc/kc"}, map[string]string{"KUBECONFIG": "/env/kc"}, "/home/u", "/etc/kc", false},
		{"tilde expanded", Cluster{ConfigFile: "~/kc"}, nil, "/home/u", "/home/u/kc", false},
		{"KUBECONFIG first entry", Cluster{}, map[string]string{"KUBECONFIG": "/env/a:/env/b"}, "/home/u", "/env/a", false},
		{"home default", Cluster{}, nil, "/home/u", "/home/u/.kube/config", false},
		{"nothing", Cluster{}, nil, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := testClients(tt.env, tt.home).ConfigPath(tt.cluster)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ConfigPath = %q, %v; want %q (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestClientsCachePerClusterAndContext(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(path, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	c := testClients(nil, dir)
	a1, err := c.Get(Cluster{ConfigFile: path})
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := c.Get(Cluster{ConfigFile: path})
	b, err := c.Get(Cluster{ConfigFile: path, Context: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if a1 != a2 {
		t.Error("same cluster built two clients")
	}
	if a1 == b || b.Config.Host != "https://127.0.0.2:6443" {
		t.Errorf("context b: host %s", b.Config.Host)
	}
	if a1.Config.QPS != DefaultQPS || a1.Config.Burst != DefaultBurst {
		t.Errorf("rate limits = %v/%d", a1.Config.QPS, a1.Config.Burst)
	}
	inline, err := c.Get(Cluster{ConfigData: []byte(kubeconfig), Context: "b"})
	if err != nil || inline.Config.Host != "https://127.0.0.2:6443" {
		t.Errorf("inline kubeconfig: %v", err)
	}
	if _, err := c.Get(Cluster{ConfigFile: filepath.Join(dir, "missing")}); err == nil {
		t.Error("missing kubeconfig: no error")
	}
}

func TestInClusterOutsideAPod(t *testing.T) {
	if os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		t.Skip("running inside a pod")
	}
	_, err := NewClients().Get(Cluster{InCluster: true})
	if !errors.Is(err, ErrNotInCluster) {
		t.Fatalf("err = %v, want ErrNotInCluster", err)
	}
}

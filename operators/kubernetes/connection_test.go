package kubernetes

import (
	"context"
	"strings"
	"testing"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/flowtest"
	"github.com/podflow/podflow/internal/kube"
	"github.com/podflow/podflow/operators"
)

func TestParseConnection(t *testing.T) {
	t.Parallel()
	c, err := ParseConnection(map[string]any{
		"conn_type": "kubernetes",
		"extra": `{"extra__kubernetes__in_cluster": "false", "kube_config_path": "/kc", "cluster_context": "ctx",
			"namespace": "jobs", "xcom_sidecar_container_image": "alpine:3",
			"xcom_sidecar_container_resources": {"requests": {"cpu": "2m"}}}`,
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.InCluster == nil || *c.InCluster || c.ConfigFile != "/kc" || c.Context != "ctx" || c.Namespace != "jobs" ||
		c.SidecarImage != "alpine:3" || c.SidecarResources.Requests.Cpu().String() != "2m" {
		t.Errorf("connection = %+v", c)
	}
	if _, err := ParseConnection(map[string]any{"xcom_sidecar_container_resources": map[string]any{"limits": map[string]any{"cpu": "lots"}}}); err == nil {
		t.Error("bad sidecar resources: no error")
	}
}

func TestClusterResolution(t *testing.T) {
	t.Parallel()
	yes, no := true, false
	conn := Connection{InCluster: &yes, ConfigFile: "/conn/kc", ConfigData: nil, Context: "conn-ctx"}
	tests := []struct {
		name string
		ref  ClusterRef
		conn Connection
		want kube.Cluster
	}{
		{"connection", ClusterRef{}, conn, kube.Cluster{InCluster: true, ConfigFile: "/conn/kc", Context: "conn-ctx"}},
		{"options win", ClusterRef{InCluster: &no, ConfigFile: "/opt/kc", Context: "opt"}, conn,
			kube.Cluster{ConfigFile: "/opt/kc", Context: "opt"}},
		{"nothing: KUBECONFIG, then ~/.kube/config", ClusterRef{}, Connection{}, kube.Cluster{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expect(t, "cluster", tt.ref.Cluster(tt.conn), tt.want)
		})
	}
}

func TestConnectionLookup(t *testing.T) {
	t.Parallel()
	op := New(WithNameSuffix(func() string { return "abcd1234" }), WithInClusterNamespace(func() string { return "" }))
	conns := testConns{"k8s": {"namespace": "from-conn"}}
	plan := func(src string) (*plan, error) {
		return op.plan(context.Background(), &operators.TaskContext{DAG: &dag.DAG{ID: "d"}, Task: parseTask(t, "t", src), Connections: conns})
	}
	p, err := plan("image: alpine\nkubernetes_conn_id: k8s\n")
	if err != nil {
		t.Fatal(err)
	}
	expect(t, "namespace", p.pod.Namespace, "from-conn")
	if _, err := plan("image: alpine\n"); err != nil {
		t.Errorf("missing default connection: %v", err)
	}
	if _, err := plan("image: alpine\nkubernetes_conn_id: nope\n"); err == nil || !strings.Contains(err.Error(), "PODFLOW_CONN_NOPE") {
		t.Errorf("missing named connection: err = %v", err)
	}
}

func TestInClusterOutsideAPodFailsClearly(t *testing.T) {
	t.Parallel()
	if kube.InClusterNamespace() != "" {
		t.Skip("running inside a pod")
	}
	op := New()
	_, err := op.Execute(context.Background(), &operators.TaskContext{DAG: &dag.DAG{ID: "d"},
		Task: parseTask(t, "t", "image: alpine\nin_cluster: true\n"), Log: flowtest.NewLog()})
	if err == nil || !strings.Contains(err.Error(), "not running inside a Kubernetes pod") {
		t.Fatalf("err = %v", err)
	}
}

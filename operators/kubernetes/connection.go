package kubernetes

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"

	"github.com/podflow/podflow/internal/kube"
	"github.com/podflow/podflow/operators"
)

// Connection is a named Kubernetes connection, with Airflow's extra fields:
//
//	connections:
//	  kubernetes_default:
//	    conn_type: kubernetes
//	    kube_config_path: ~/.kube/config
//	    cluster_context: kind-dev
//	    namespace: jobs
//	    xcom_sidecar_container_image: alpine:3.20
//
// The fields may also sit under "extra" (as a mapping or a JSON string) and
// carry Airflow's old "extra__kubernetes__" prefix.
type Connection struct {
	InCluster        *bool
	ConfigFile       string // kube_config_path
	ConfigData       []byte // kube_config: inline kubeconfig
	Context          string // cluster_context
	Namespace        string
	SidecarImage     string                       // xcom_sidecar_container_image
	SidecarResources *corev1.ResourceRequirements // xcom_sidecar_container_resources
}

// lookupConnection resolves kubernetes_conn_id; the default id may be absent.
func lookupConnection(ctx context.Context, conns operators.Connections, id string) (Connection, error) {
	if id == "" {
		return Connection{}, nil
	}
	raw, ok, err := operators.LookupConnection(ctx, conns, id)
	if err != nil {
		return Connection{}, fmt.Errorf("kubernetes_conn_id %q: %w", id, err)
	}
	if !ok {
		if id == DefaultConnID {
			return Connection{}, nil
		}
		return Connection{}, fmt.Errorf("kubernetes_conn_id %q: no such connection (define it under connections: in podflow.yaml, as PODFLOW_CONN_%s, or with `podflow connections add`)",
			id, strings.ToUpper(id))
	}
	c, err := ParseConnection(raw)
	if err != nil {
		return Connection{}, fmt.Errorf("connection %q: %w", id, err)
	}
	return c, nil
}

// ParseConnection reads a connection's fields.
func ParseConnection(raw map[string]any) (Connection, error) {
	fields := map[string]any{}
	for k, v := range raw {
		fields[strings.TrimPrefix(k, "extra__kubernetes__")] = v
	}
	if extra, ok := fields["extra"]; ok {
		m, err := asMap(extra)
		if err != nil {
			return Connection{}, fmt.Errorf("extra: %w", err)
		}
		for k, v := range m {
			fields[strings.TrimPrefix(k, "extra__kubernetes__")] = v
		}
	}
	var c Connection
	str := func(keys ...string) string {
		for _, k := range keys {
			if v, ok := fields[k]; ok && v != nil {
				return fmt.Sprint(v)
			}
		}
		return ""
	}
	if v, ok := fields["in_cluster"]; ok && v != nil {
		b, err := asBool(v)
		if err != nil {
			return Connection{}, fmt.Errorf("in_cluster: %w", err)
		}
		c.InCluster = &b
	}
	c.ConfigFile = str("kube_config_path", "config_file")
	if v, ok := fields["kube_config"]; ok && v != nil {
		switch v := v.(type) {
		case string:
			c.ConfigData = []byte(v)
		default:
			b, err := json.Marshal(v)
			if err != nil {
				return Connection{}, fmt.Errorf("kube_config: %w", err)
			}
			c.ConfigData = b
		}
	}
	c.Context = str("cluster_context")
	c.Namespace = str("namespace")
	c.SidecarImage = str("xcom_sidecar_container_image")
	if v, ok := fields["xcom_sidecar_container_resources"]; ok && v != nil {
		m, err := asMap(v)
		if err != nil {
			return Connection{}, fmt.Errorf("xcom_sidecar_container_resources: %w", err)
		}
		var node yaml.Node
		if err := node.Encode(m); err != nil {
			return Connection{}, fmt.Errorf("xcom_sidecar_container_resources: %w", err)
		}
		var res corev1.ResourceRequirements
		if errs := decodeNode(&node, &res, "xcom_sidecar_container_resources", nil); len(errs) > 0 {
			return Connection{}, fmt.Errorf("%s", errs[0].Msg)
		}
		c.SidecarResources = &res
	}
	return c, nil
}

func asMap(v any) (map[string]any, error) {
	switch v := v.(type) {
	case map[string]any:
		return v, nil
	case string:
		var m map[string]any
		if err := json.Unmarshal([]byte(v), &m); err != nil {
			return nil, fmt.Errorf("wants a mapping or a JSON object: %w", err)
		}
		return m, nil
	}
	return nil, fmt.Errorf("wants a mapping, got %T", v)
}

func asBool(v any) (bool, error) {
	switch v := v.(type) {
	case bool:
		return v, nil
	case string:
		return strconv.ParseBool(v)
	}
	return false, fmt.Errorf("wants true or false, got %v", v)
}

// ClusterRef says which cluster a pod runs on, in the terms of the task's
// options; it travels in trigger arguments so a triggerer reaches the same
// cluster.
type ClusterRef struct {
	InCluster  *bool  `json:"in_cluster,omitempty"`
	ConfigFile string `json:"config_file,omitempty"`
	Context    string `json:"cluster_context,omitempty"`
	ConnID     string `json:"kubernetes_conn_id,omitempty"`
}

// clusterRef is the task's cluster: options over connection.
func clusterRef(o *PodOptions) ClusterRef {
	return ClusterRef{InCluster: o.InCluster, ConfigFile: o.ConfigFile, Context: o.ClusterContext, ConnID: o.ConnID}
}

// Cluster resolves a ClusterRef with its connection: in_cluster from the
// options, else the connection; kubeconfig from config_file, else the
// connection, else (in internal/kube) KUBECONFIG, else ~/.kube/config.
func (r ClusterRef) Cluster(conn Connection) kube.Cluster {
	c := kube.Cluster{ConfigFile: r.ConfigFile, Context: r.Context}
	switch {
	case r.InCluster != nil:
		c.InCluster = *r.InCluster
	case conn.InCluster != nil:
		c.InCluster = *conn.InCluster
	}
	if c.ConfigFile == "" {
		c.ConfigFile = conn.ConfigFile
		c.ConfigData = conn.ConfigData
	}
	if c.Context == "" {
		c.Context = conn.Context
	}
	return c
}

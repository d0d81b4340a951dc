package kubernetes

import (
	"fmt"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"
)

// PodOptions are a kubernetes_pod task's options, decoded (and, at run time,
// rendered). JSON names are the YAML option names, Airflow's parameter names.
type PodOptions struct {
	Image            string   `json:"image"`
	Name             string   `json:"name"`
	RandomNameSuffix bool     `json:"random_name_suffix"`
	Namespace        string   `json:"namespace"`
	Cmds             []string `json:"cmds"`
	Arguments        []string `json:"arguments"`

	EnvVars      EnvVars                      `json:"env_vars"`
	EnvFrom      []corev1.EnvFromSource       `json:"env_from"`
	ConfigMaps   []string                     `json:"configmaps"`
	Secrets      []Secret                     `json:"secrets"`
	Volumes      []corev1.Volume              `json:"volumes"`
	VolumeMounts []corev1.VolumeMount         `json:"volume_mounts"`
	Ports        []corev1.ContainerPort       `json:"ports"`
	Labels       map[string]string            `json:"labels"`
	Annotations  map[string]string            `json:"annotations"`
	Resources    *corev1.ResourceRequirements `json:"container_resources"`

	ContainerSecurityContext *corev1.SecurityContext         `json:"container_security_context"`
	SecurityContext          *corev1.PodSecurityContext      `json:"security_context"`
	Affinity                 *corev1.Affinity                `json:"affinity"`
	NodeSelector             map[string]string               `json:"node_selector"`
	Tolerations              []corev1.Toleration             `json:"tolerations"`
	SchedulerName            string                          `json:"schedulername"`
	PriorityClassName        string                          `json:"priority_class_name"`
	ImagePullPolicy          corev1.PullPolicy               `json:"image_pull_policy"`
	ImagePullSecrets         ImagePullSecrets                `json:"image_pull_secrets"`
	ServiceAccountName       string                          `json:"service_account_name"`
	AutomountSAToken         *bool                           `json:"automount_service_account_token"`
	HostNetwork              bool                            `json:"hostnetwork"`
	HostAliases              []corev1.HostAlias              `json:"host_aliases"`
	DNSPolicy                corev1.DNSPolicy                `json:"dnspolicy"`
	DNSConfig                *corev1.PodDNSConfig            `json:"dns_config"`
	Hostname                 string                          `json:"hostname"`
	Subdomain                string                          `json:"subdomain"`
	InitContainers           []corev1.Container              `json:"init_containers"`
	TerminationGracePeriod   *int64                          `json:"termination_grace_period"`
	ActiveDeadlineSeconds    *int64                          `json:"active_deadline_seconds"`
	TerminationMessagePolicy corev1.TerminationMessagePolicy `json:"termination_message_policy"`

	FullPodSpec     *corev1.Pod `json:"full_pod_spec"`
	PodTemplateFile string      `json:"pod_template_file"`
	PodTemplateDict *corev1.Pod `json:"pod_template_dict"`

	DoXComPush          bool           `json:"do_xcom_push"`
	GetLogs             bool           `json:"get_logs"`
	ContainerLogs       ContainerNames `json:"container_logs"`
	InitContainerLogs   ContainerNames `json:"init_container_logs"`
	LogEventsOnFailure  bool           `json:"log_events_on_failure"`
	OnFinishAction      OnFinishAction `json:"on_finish_action"`
	IsDeleteOperatorPod *bool          `json:"is_delete_operator_pod"`
	ReattachOnRestart   bool           `json:"reattach_on_restart"`
	StartupTimeout      int64          `json:"startup_timeout_seconds"`
	ScheduleTimeout     *int64         `json:"schedule_timeout_seconds"`
	SkipOnExitCode      ExitCodes      `json:"skip_on_exit_code"`

	InCluster      *bool  `json:"in_cluster"`
	ConfigFile     string `json:"config_file"`
	ClusterContext string `json:"cluster_context"`
	ConnID         string `json:"kubernetes_conn_id"`

	Deferrable      bool   `json:"deferrable"`
	LoggingInterval *int64 `json:"logging_interval"`
}

// DefaultConnID is Airflow's default Kubernetes connection id; a missing
// connection under this id is not an error.
const DefaultConnID = "kubernetes_default"

// defaultOptions are Airflow's defaults.
func defaultOptions() PodOptions {
	return PodOptions{
		RandomNameSuffix:         true,
		TerminationMessagePolicy: corev1.TerminationMessageReadFile,
		GetLogs:                  true,
		ContainerLogs:            ContainerNames{Names: []string{BaseContainerName}},
		OnFinishAction:           DeletePod,
		ReattachOnRestart:        true,
		StartupTimeout:           120,
		ConnID:                   DefaultConnID,
	}
}

// templatedOptions are rendered with the task's template context before
// decoding, as Airflow's template_fields.
var templatedOptions = map[string]bool{
	"image": true, "name": true, "hostname": true, "namespace": true, "cmds": true, "arguments": true,
	"env_vars": true, "env_from": true, "configmaps": true, "labels": true, "annotations": true,
	"config_file": true, "cluster_context": true, "pod_template_file": true, "pod_template_dict": true,
	"container_resources": true, "volumes": true, "volume_mounts": true, "node_selector": true,
}

// OnFinishAction is what happens to the pod when the task ends.
type OnFinishAction string

const (
	DeletePod          OnFinishAction = "delete_pod"
	DeleteSucceededPod OnFinishAction = "delete_succeeded_pod"
	DeleteActivePod    OnFinishAction = "delete_active_pod"
	KeepPod            OnFinishAction = "keep_pod"
)

func (a *OnFinishAction) decodeNode(d *decoder, n *yaml.Node, path string) any {
	if d.isTemplate(n) {
		return n.Value
	}
	switch OnFinishAction(n.Value) {
	case DeletePod, DeleteSucceededPod, DeleteActivePod, KeepPod:
		if n.Kind == yaml.ScalarNode {
			return n.Value
		}
	}
	d.errorf(n, "%s: wants one of delete_pod, delete_succeeded_pod, delete_active_pod, keep_pod, got %s", path, describe(n))
	return nil
}

// EnvVars is env_vars: a mapping of name to value, or a list of Kubernetes
// EnvVar objects (for valueFrom).
type EnvVars []corev1.EnvVar

func (e *EnvVars) decodeNode(d *decoder, n *yaml.Node, path string) any {
	if n.Kind != yaml.MappingNode {
		return d.value(n, reflect.TypeOf([]corev1.EnvVar{}), path)
	}
	out := make([]any, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		out = append(out, map[string]any{"name": k.Value, "value": d.value(v, reflect.TypeOf(""), path+"."+k.Value)})
	}
	return out
}

// ContainerNames is container_logs / init_container_logs: a container name,
// a list of names, or true for all containers (false or null for none).
type ContainerNames struct {
	All   bool     `json:"all"`
	Names []string `json:"names"`
}

func (c *ContainerNames) decodeNode(d *decoder, n *yaml.Node, path string) any {
	switch {
	case isNull(n):
		return map[string]any{}
	case n.Kind == yaml.ScalarNode && n.Tag == "!!bool":
		// true: every container; false: none (replacing the default "base").
		return map[string]any{"all": d.value(n, reflect.TypeOf(true), path), "names": []any{}}
	case n.Kind == yaml.ScalarNode:
		return map[string]any{"names": []any{n.Value}}
	case n.Kind == yaml.SequenceNode:
		return map[string]any{"names": d.value(n, reflect.TypeOf([]string{}), path)}
	}
	d.errorf(n, "%s: wants a container name, a list of names or true, got %s", path, describe(n))
	return nil
}

// Wants reports whether the container's logs were asked for.
func (c ContainerNames) Wants(name string) bool {
	if c.All {
		return true
	}
	for _, n := range c.Names {
		if n == name {
			return true
		}
	}
	return false
}

// ImagePullSecrets is image_pull_secrets: secret names as a list, a
// comma-separated string (Airflow's old form) or a list of {name: …}.
type ImagePullSecrets []corev1.LocalObjectReference

func (s *ImagePullSecrets) decodeNode(d *decoder, n *yaml.Node, path string) any {
	if n.Kind == yaml.ScalarNode && !isNull(n) {
		var out []any
		for _, name := range strings.Split(n.Value, ",") {
			if name = strings.TrimSpace(name); name != "" {
				out = append(out, map[string]any{"name": name})
			}
		}
		return out
	}
	if n.Kind != yaml.SequenceNode {
		return d.value(n, reflect.TypeOf([]corev1.LocalObjectReference{}), path)
	}
	out := make([]any, 0, len(n.Content))
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		if item.Kind == yaml.ScalarNode {
			out = append(out, map[string]any{"name": d.value(item, reflect.TypeOf(""), p)})
			continue
		}
		out = append(out, d.value(item, reflect.TypeOf(corev1.LocalObjectReference{}), p))
	}
	return out
}

// ExitCodes is skip_on_exit_code: one exit code or a list.
type ExitCodes []int32

func (e *ExitCodes) decodeNode(d *decoder, n *yaml.Node, path string) any {
	if n.Kind == yaml.ScalarNode && !isNull(n) {
		return []any{d.value(n, reflect.TypeOf(int32(0)), path)}
	}
	return d.value(n, reflect.TypeOf([]int32{}), path)
}

// Has reports whether code is in the list.
func (e ExitCodes) Has(code int32) bool {
	for _, c := range e {
		if c == code {
			return true
		}
	}
	return false
}

// Secret is Airflow's Secret: a Kubernetes Secret exposed to the base
// container as environment variables or as files.
type Secret struct {
	// DeployType is "env" or "volume".
	DeployType string `json:"deploy_type"`
	// DeployTarget is the variable name (uppercased) for env, the mount
	// path for volume; for env without Key it is unused (all keys).
	DeployTarget string `json:"deploy_target"`
	// Secret is the Secret's name.
	Secret string `json:"secret"`
	// Key is the Secret's key; omitted with env: every key as a variable;
	// with volume: the one key mounted as a file named after it.
	Key string `json:"key"`
}

// finishAction is on_finish_action, honouring the old is_delete_operator_pod.
func (o *PodOptions) finishAction() OnFinishAction {
	if o.IsDeleteOperatorPod != nil {
		if *o.IsDeleteOperatorPod {
			return DeletePod
		}
		return KeepPod
	}
	return o.OnFinishAction
}

// secretFields is Secret without its decodeNode method.
type secretFields Secret

func (s *Secret) decodeNode(d *decoder, n *yaml.Node, path string) any {
	v := d.value(n, reflect.TypeOf(secretFields{}), path)
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	str := func(k string) string { s, _ := m[k].(string); return s }
	at := func(k string) *yaml.Node {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				return n.Content[i+1]
			}
		}
		return n
	}
	switch str("deploy_type") {
	case "env":
	case "volume":
		if str("deploy_target") == "" {
			d.errorf(at("deploy_target"), "%s: a volume secret needs deploy_target (the mount path)", path)
		}
	default:
		d.errorf(at("deploy_type"), "%s.deploy_type: wants env or volume, got %s", path, describe(at("deploy_type")))
	}
	if str("secret") == "" {
		d.errorf(at("secret"), "%s: secret (the Secret's name) is required", path)
	}
	if str("deploy_type") == "env" && str("key") != "" && str("deploy_target") == "" {
		d.errorf(at("deploy_target"), "%s: an env secret with a key needs deploy_target (the variable name)", path)
	}
	return v
}

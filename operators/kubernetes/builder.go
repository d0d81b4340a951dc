package kubernetes

import (
	"fmt"
	"reflect"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BaseContainerName is the name of the container running the task's image;
// completion is judged on it.
const BaseContainerName = "base"

// DefaultNamespace is used when no option, template, connection or in-cluster
// service account names one.
const DefaultNamespace = "default"

// BuildInput is everything the pod of a task is built from. Building does no
// I/O: the caller reads the template file, the connection and the in-cluster
// namespace first.
type BuildInput struct {
	Options *PodOptions
	// Template is the pod from pod_template_file or pod_template_dict.
	Template *corev1.Pod
	// Conn is the task's Kubernetes connection (zero value: none).
	Conn Connection
	// InClusterNamespace is the namespace podflow runs in, if it runs in a pod.
	InClusterNamespace string

	DagID, TaskID, RunID string
	TryNumber            int
	// Mapped and MapIndex identify a mapped task's instance.
	Mapped   bool
	MapIndex int

	// NameSuffix is appended when random_name_suffix is true (see RandomSuffix).
	NameSuffix string
	// SidecarImage is the XCom sidecar's image unless the connection sets one.
	SidecarImage string
}

// BuildPod builds a task's pod: operator options over full_pod_spec over the
// pod template, then namespace, name, identity labels, secrets and the XCom
// sidecar.
func BuildPod(in BuildInput) (*corev1.Pod, error) {
	opts := in.Options
	pod := &corev1.Pod{}
	if in.Template != nil {
		pod = in.Template.DeepCopy()
	}
	if opts.FullPodSpec != nil {
		mergePods(pod, opts.FullPodSpec.DeepCopy())
	}
	mergePods(pod, podFromOptions(opts))
	pod.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}
	pod.Status = corev1.PodStatus{}
	pod.ResourceVersion, pod.UID, pod.SelfLink = "", "", ""
	pod.CreationTimestamp, pod.DeletionTimestamp, pod.ManagedFields = metav1.Time{}, nil, nil

	pod.Namespace = resolveNamespace(pod.Namespace, in.Conn.Namespace, in.InClusterNamespace)
	suffix := ""
	if opts.RandomNameSuffix {
		suffix = in.NameSuffix
		if suffix == "" {
			suffix = RandomSuffix()
		}
	}
	mapIndex := -1
	if in.Mapped {
		mapIndex = in.MapIndex
	}
	pod.Name = PodName(pod.Name, in.TaskID, suffix, mapIndex)
	pod.GenerateName = ""
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	for k, v := range PodLabels(in.DagID, in.TaskID, in.RunID, in.TryNumber, mapIndex) {
		pod.Labels[k] = v
	}

	base := baseContainer(pod)
	if base == nil {
		return nil, fmt.Errorf("pod has no containers: set image, or give full_pod_spec or a pod template with a container")
	}
	if base.Image == "" {
		return nil, fmt.Errorf("container %q has no image: set image", base.Name)
	}
	if err := attachSecrets(pod, base, opts.Secrets); err != nil {
		return nil, err
	}
	if opts.DoXComPush {
		image := in.Conn.SidecarImage
		if image == "" {
			image = in.SidecarImage
		}
		if image == "" {
			image = DefaultSidecarImage
		}
		addXComSidecar(pod, image, in.Conn.SidecarResources)
	}
	return pod, nil
}

// resolveNamespace: explicit or template (already merged into the pod) →
// connection → in-cluster service account → default.
func resolveNamespace(candidates ...string) string {
	for _, ns := range candidates {
		if ns != "" {
			return ns
		}
	}
	return DefaultNamespace
}

// podFromOptions is the pod the operator's own options describe; unset
// options stay zero so they do not override the template.
func podFromOptions(o *PodOptions) *corev1.Pod {
	envFrom := append([]corev1.EnvFromSource(nil), o.EnvFrom...)
	for _, cm := range o.ConfigMaps {
		envFrom = append(envFrom, corev1.EnvFromSource{ConfigMapRef: &corev1.ConfigMapEnvSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: cm}}})
	}
	c := corev1.Container{
		Name:                     BaseContainerName,
		Image:                    o.Image,
		Command:                  o.Cmds,
		Args:                     o.Arguments,
		Env:                      o.EnvVars,
		EnvFrom:                  envFrom,
		Ports:                    o.Ports,
		VolumeMounts:             o.VolumeMounts,
		SecurityContext:          o.ContainerSecurityContext,
		ImagePullPolicy:          o.ImagePullPolicy,
		TerminationMessagePolicy: o.TerminationMessagePolicy,
	}
	if o.Resources != nil {
		c.Resources = *o.Resources
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        SanitizeName(o.Name),
			Namespace:   o.Namespace,
			Labels:      o.Labels,
			Annotations: o.Annotations,
		},
		Spec: corev1.PodSpec{
			Containers:                    []corev1.Container{c},
			InitContainers:                o.InitContainers,
			Volumes:                       o.Volumes,
			Affinity:                      o.Affinity,
			NodeSelector:                  o.NodeSelector,
			Tolerations:                   o.Tolerations,
			SchedulerName:                 o.SchedulerName,
			PriorityClassName:             o.PriorityClassName,
			ImagePullSecrets:              o.ImagePullSecrets,
			ServiceAccountName:            o.ServiceAccountName,
			AutomountServiceAccountToken:  o.AutomountSAToken,
			HostNetwork:                   o.HostNetwork,
			HostAliases:                   o.HostAliases,
			DNSPolicy:                     o.DNSPolicy,
			DNSConfig:                     o.DNSConfig,
			Hostname:                      o.Hostname,
			Subdomain:                     o.Subdomain,
			TerminationGracePeriodSeconds: o.TerminationGracePeriod,
			ActiveDeadlineSeconds:         o.ActiveDeadlineSeconds,
			SecurityContext:               o.SecurityContext,
			RestartPolicy:                 corev1.RestartPolicyNever,
		},
	}
}

// baseContainer is the container named "base", else the first one.
func baseContainer(pod *corev1.Pod) *corev1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == BaseContainerName {
			return &pod.Spec.Containers[i]
		}
	}
	if len(pod.Spec.Containers) > 0 {
		return &pod.Spec.Containers[0]
	}
	return nil
}

// attachSecrets exposes Airflow-style secrets to the base container.
func attachSecrets(pod *corev1.Pod, base *corev1.Container, secrets []Secret) error {
	for i, s := range secrets {
		switch s.DeployType {
		case "env":
			if s.Key == "" {
				base.EnvFrom = append(base.EnvFrom, corev1.EnvFromSource{SecretRef: &corev1.SecretEnvSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: s.Secret}}})
				continue
			}
			base.Env = append(base.Env, corev1.EnvVar{
				Name: strings.ToUpper(s.DeployTarget),
				ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: s.Secret}, Key: s.Key}},
			})
		case "volume":
			vol := fmt.Sprintf("secretvol-%d", i)
			src := &corev1.SecretVolumeSource{SecretName: s.Secret}
			if s.Key != "" {
				src.Items = []corev1.KeyToPath{{Key: s.Key, Path: s.Key}}
			}
			pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: vol,
				VolumeSource: corev1.VolumeSource{Secret: src}})
			base.VolumeMounts = append(base.VolumeMounts, corev1.VolumeMount{Name: vol,
				MountPath: s.DeployTarget, ReadOnly: true})
		default:
			return fmt.Errorf("secrets[%d]: deploy_type must be env or volume, not %q", i, s.DeployType)
		}
	}
	return nil
}

// XCom sidecar shape, as Airflow's, stopped by a sentinel file instead of a
// signal.
const (
	SidecarContainerName = "airflow-xcom-sidecar"
	DefaultSidecarImage  = "alpine"
	XComVolumeName       = "xcom"
	XComDir              = "/airflow/xcom"
	XComReturnFile       = XComDir + "/return.json"
	XComDoneFile         = XComDir + "/.done"
)

// sidecarScript waits until the operator creates the sentinel file; SIGTERM
// (pod deletion) also ends it at once.
const sidecarScript = `trap "exit 0" INT TERM; while [ ! -f ` + XComDoneFile + ` ]; do sleep 0.1; done`

func addXComSidecar(pod *corev1.Pod, image string, resources *corev1.ResourceRequirements) {
	// First in the pod's volumes and in the base container's mounts, as
	// Airflow's add_xcom_sidecar inserts them.
	mount := corev1.VolumeMount{Name: XComVolumeName, MountPath: XComDir}
	pod.Spec.Volumes = append([]corev1.Volume{{Name: XComVolumeName,
		VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}, pod.Spec.Volumes...)
	base := baseContainer(pod)
	base.VolumeMounts = append([]corev1.VolumeMount{mount}, base.VolumeMounts...)
	res := corev1.ResourceRequirements{Requests: corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("1m"),
		corev1.ResourceMemory: resource.MustParse("10Mi"),
	}}
	if resources != nil {
		res = *resources.DeepCopy()
	}
	pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{
		Name:         SidecarContainerName,
		Image:        image,
		Command:      []string{"sh", "-c", sidecarScript},
		VolumeMounts: []corev1.VolumeMount{mount},
		Resources:    res,
	})
}

// mergePods merges src into dst as Airflow's reconcile_pods: scalars set in
// src win, maps are merged, lists are appended (dst first), nested Kubernetes
// objects are merged field by field, and containers are matched by name
// (src's "base" matches dst's "base", else dst's first container).
func mergePods(dst, src *corev1.Pod) {
	mergeValue(reflect.ValueOf(&dst.ObjectMeta).Elem(), reflect.ValueOf(src.ObjectMeta))
	mergeValue(reflect.ValueOf(&dst.Spec).Elem(), reflect.ValueOf(src.Spec))
}

// replacedLists are lists that are one value (a command line), not a set of
// items: src replaces them.
var replacedLists = map[string]bool{"Command": true, "Args": true}

func mergeValue(dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.Pointer:
		switch {
		case src.IsNil():
		case dst.IsNil() || !mergeable(src.Type().Elem()):
			dst.Set(src)
		default:
			mergeValue(dst.Elem(), src.Elem())
		}
	case reflect.Struct:
		if !mergeable(src.Type()) {
			if !src.IsZero() {
				dst.Set(src)
			}
			return
		}
		for i := 0; i < src.NumField(); i++ {
			name := src.Type().Field(i).Name
			if !src.Type().Field(i).IsExported() {
				continue
			}
			df, sf := dst.Field(i), src.Field(i)
			switch {
			case sf.Kind() == reflect.Slice && replacedLists[name]:
				if sf.Len() > 0 {
					df.Set(sf)
				}
			case sf.Type() == reflect.TypeOf([]corev1.Container{}) && name == "Containers":
				df.Set(reflect.ValueOf(mergeContainers(df.Interface().([]corev1.Container), sf.Interface().([]corev1.Container))))
			default:
				mergeValue(df, sf)
			}
		}
	case reflect.Slice:
		if src.Len() == 0 {
			return
		}
		dst.Set(reflect.AppendSlice(reflect.MakeSlice(dst.Type(), 0, dst.Len()+src.Len()), dst))
		dst.Set(reflect.AppendSlice(dst, src))
	case reflect.Map:
		if src.Len() == 0 {
			return
		}
		if dst.IsNil() {
			dst.Set(reflect.MakeMapWithSize(src.Type(), src.Len()))
		}
		iter := src.MapRange()
		for iter.Next() {
			dst.SetMapIndex(iter.Key(), iter.Value())
		}
	default:
		if !src.IsZero() {
			dst.Set(src)
		}
	}
}

// mergeable structs are merged field by field; others (Quantity,
// IntOrString, Time) are single values.
func mergeable(t reflect.Type) bool {
	return t.Kind() == reflect.Struct &&
		(t.PkgPath() == "k8s.io/api/core/v1" || t == reflect.TypeOf(metav1.ObjectMeta{}))
}

func mergeContainers(dst, src []corev1.Container) []corev1.Container {
	out := append([]corev1.Container(nil), dst...)
	for _, s := range src {
		i := containerIndex(out, s.Name)
		if i < 0 {
			out = append(out, s)
			continue
		}
		mergeValue(reflect.ValueOf(&out[i]).Elem(), reflect.ValueOf(s))
	}
	return out
}

func containerIndex(cs []corev1.Container, name string) int {
	for i := range cs {
		if cs[i].Name == name {
			return i
		}
	}
	if name == BaseContainerName && len(cs) > 0 && cs[0].Name != SidecarContainerName {
		return 0
	}
	return -1
}

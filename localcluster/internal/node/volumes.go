package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// volumes materialises a pod's volumes as host paths: emptyDir, configMap, secret, downwardAPI and projected
// volumes are written under the pod's directory; hostPath and PVCs bound to hostPath or local PVs resolve
// to their path on the host.
type volumes struct {
	client   kubernetes.Interface
	nodeName string
}

type projectedFile struct {
	data []byte
	mode os.FileMode
}

func (v volumes) materialize(ctx context.Context, pod *corev1.Pod, dir string) (map[string]string, error) {
	paths := map[string]string{}
	for _, vol := range pod.Spec.Volumes {
		path, err := v.materializeOne(ctx, pod, vol, filepath.Join(dir, vol.Name))
		if err != nil {
			return nil, fmt.Errorf("volume %q: %w", vol.Name, err)
		}
		paths[vol.Name] = path
	}
	return paths, nil
}

func (v volumes) materializeOne(ctx context.Context, pod *corev1.Pod, vol corev1.Volume, dir string) (string, error) {
	src := vol.VolumeSource
	switch {
	case src.EmptyDir != nil:
		return dir, os.MkdirAll(dir, 0o777)
	case src.HostPath != nil:
		return hostPath(src.HostPath)
	case src.PersistentVolumeClaim != nil:
		return v.claimPath(ctx, pod.Namespace, src.PersistentVolumeClaim.ClaimName)
	case src.ConfigMap != nil:
		files, err := v.configMapFiles(ctx, pod.Namespace, src.ConfigMap.Name, src.ConfigMap.Items,
			src.ConfigMap.Optional, src.ConfigMap.DefaultMode)
		if err != nil {
			return "", err
		}
		return dir, writeFiles(dir, files)
	case src.Secret != nil:
		files, err := v.secretFiles(ctx, pod.Namespace, src.Secret.SecretName, src.Secret.Items,
			src.Secret.Optional, src.Secret.DefaultMode)
		if err != nil {
			return "", err
		}
		return dir, writeFiles(dir, files)
	case src.DownwardAPI != nil:
		files, err := downwardFiles(pod, src.DownwardAPI.Items, src.DownwardAPI.DefaultMode)
		if err != nil {
			return "", err
		}
		return dir, writeFiles(dir, files)
	case src.Projected != nil:
		files, err := v.projectedFiles(ctx, pod, src.Projected)
		if err != nil {
			return "", err
		}
		return dir, writeFiles(dir, files)
	}
	return "", fmt.Errorf("volume type not supported by localcluster (supported: emptyDir, hostPath, " +
		"persistentVolumeClaim of a hostPath or local PV, configMap, secret, downwardAPI, projected)")
}

func hostPath(src *corev1.HostPathVolumeSource) (string, error) {
	kind := corev1.HostPathUnset
	if src.Type != nil {
		kind = *src.Type
	}
	switch kind {
	case corev1.HostPathDirectoryOrCreate:
		return src.Path, os.MkdirAll(src.Path, 0o755)
	case corev1.HostPathFileOrCreate:
		if err := os.MkdirAll(filepath.Dir(src.Path), 0o755); err != nil {
			return "", err
		}
		f, err := os.OpenFile(src.Path, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return "", err
		}
		return src.Path, f.Close()
	case corev1.HostPathUnset:
		return src.Path, nil
	}
	if _, err := os.Stat(src.Path); err != nil {
		return "", fmt.Errorf("hostPath type %s: %w", kind, err)
	}
	return src.Path, nil
}

func (v volumes) claimPath(ctx context.Context, namespace, claim string) (string, error) {
	pvc, err := v.client.CoreV1().PersistentVolumeClaims(namespace).Get(ctx, claim, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("get persistentVolumeClaim %s: %w", claim, err)
	}
	if pvc.Status.Phase != corev1.ClaimBound || pvc.Spec.VolumeName == "" {
		return "", fmt.Errorf("persistentVolumeClaim %s is not bound yet", claim)
	}
	pv, err := v.client.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("get persistentVolume %s: %w", pvc.Spec.VolumeName, err)
	}
	var path string
	switch {
	case pv.Spec.HostPath != nil:
		path = pv.Spec.HostPath.Path
	case pv.Spec.Local != nil:
		path = pv.Spec.Local.Path
	default:
		return "", fmt.Errorf("persistentVolume %s is neither hostPath nor local", pv.Name)
	}
	return path, os.MkdirAll(path, 0o755)
}

func (v volumes) configMapFiles(ctx context.Context, namespace, name string, items []corev1.KeyToPath,
	optional *bool, defaultMode *int32) (map[string]projectedFile, error) {
	cm, err := v.client.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && optional != nil && *optional {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("configmap %q: %w", name, err)
	}
	data := map[string][]byte{}
	for k, val := range cm.Data {
		data[k] = []byte(val)
	}
	for k, val := range cm.BinaryData {
		data[k] = val
	}
	return keyFiles(data, items, optional, defaultMode, "configmap "+name)
}

func (v volumes) secretFiles(ctx context.Context, namespace, name string, items []corev1.KeyToPath,
	optional *bool, defaultMode *int32) (map[string]projectedFile, error) {
	secret, err := v.client.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && optional != nil && *optional {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("secret %q: %w", name, err)
	}
	return keyFiles(secret.Data, items, optional, defaultMode, "secret "+name)
}

func keyFiles(data map[string][]byte, items []corev1.KeyToPath, optional *bool, defaultMode *int32,
	what string) (map[string]projectedFile, error) {
	mode := fileMode(defaultMode, 0o644)
	files := map[string]projectedFile{}
	if len(items) == 0 {
		for k, val := range data {
			files[k] = projectedFile{data: val, mode: mode}
		}
		return files, nil
	}
	for _, item := range items {
		val, ok := data[item.Key]
		if !ok {
			if optional != nil && *optional {
				continue
			}
			return nil, fmt.Errorf("%s has no key %q", what, item.Key)
		}
		files[item.Path] = projectedFile{data: val, mode: fileMode(item.Mode, mode)}
	}
	return files, nil
}

func (v volumes) projectedFiles(ctx context.Context, pod *corev1.Pod, src *corev1.ProjectedVolumeSource) (map[string]projectedFile, error) {
	files := map[string]projectedFile{}
	add := func(more map[string]projectedFile) {
		for k, f := range more {
			files[k] = f
		}
	}
	mode := src.DefaultMode
	for _, s := range src.Sources {
		switch {
		case s.ConfigMap != nil:
			more, err := v.configMapFiles(ctx, pod.Namespace, s.ConfigMap.Name, s.ConfigMap.Items, s.ConfigMap.Optional, mode)
			if err != nil {
				return nil, err
			}
			add(more)
		case s.Secret != nil:
			more, err := v.secretFiles(ctx, pod.Namespace, s.Secret.Name, s.Secret.Items, s.Secret.Optional, mode)
			if err != nil {
				return nil, err
			}
			add(more)
		case s.DownwardAPI != nil:
			more, err := downwardFiles(pod, s.DownwardAPI.Items, mode)
			if err != nil {
				return nil, err
			}
			add(more)
		case s.ServiceAccountToken != nil:
			token, err := v.serviceAccountToken(ctx, pod, s.ServiceAccountToken)
			if err != nil {
				return nil, err
			}
			files[s.ServiceAccountToken.Path] = projectedFile{data: []byte(token), mode: fileMode(mode, 0o600)}
		}
	}
	return files, nil
}

func (v volumes) serviceAccountToken(ctx context.Context, pod *corev1.Pod, src *corev1.ServiceAccountTokenProjection) (string, error) {
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	req := &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			ExpirationSeconds: src.ExpirationSeconds,
			BoundObjectRef: &authenticationv1.BoundObjectReference{
				Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID,
			},
		},
	}
	if src.Audience != "" {
		req.Spec.Audiences = []string{src.Audience}
	}
	resp, err := v.client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token for serviceaccount %s: %w", sa, err)
	}
	return resp.Status.Token, nil
}

func downwardFiles(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, defaultMode *int32) (map[string]projectedFile, error) {
	files := map[string]projectedFile{}
	mode := fileMode(defaultMode, 0o644)
	for _, item := range items {
		var value string
		var err error
		switch {
		case item.FieldRef != nil:
			value, err = podFieldValue(pod, item.FieldRef.FieldPath)
		case item.ResourceFieldRef != nil:
			value, err = resourceFieldValue(pod, item.ResourceFieldRef)
		}
		if err != nil {
			return nil, fmt.Errorf("downwardAPI %s: %w", item.Path, err)
		}
		files[item.Path] = projectedFile{data: []byte(value), mode: fileMode(item.Mode, mode)}
	}
	return files, nil
}

// podFieldValue resolves a downward-API fieldPath against the pod as this node runs it.
func podFieldValue(pod *corev1.Pod, fieldPath string) (string, error) {
	switch fieldPath {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP", "status.podIP", "status.hostIPs", "status.podIPs":
		return hostIP, nil
	}
	for _, prefix := range []string{"metadata.labels['", "metadata.annotations['"} {
		if strings.HasPrefix(fieldPath, prefix) && strings.HasSuffix(fieldPath, "']") {
			key := strings.TrimSuffix(strings.TrimPrefix(fieldPath, prefix), "']")
			if strings.HasPrefix(prefix, "metadata.labels") {
				return pod.Labels[key], nil
			}
			return pod.Annotations[key], nil
		}
	}
	return "", fmt.Errorf("unsupported fieldPath %q", fieldPath)
}

func resourceFieldValue(pod *corev1.Pod, ref *corev1.ResourceFieldSelector) (string, error) {
	var limits corev1.ResourceList
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		if c.Name == ref.ContainerName || (ref.ContainerName == "" && len(pod.Spec.Containers) == 1) {
			limits = c.Resources.Limits
			if strings.HasPrefix(ref.Resource, "requests.") {
				limits = c.Resources.Requests
			}
		}
	}
	name := corev1.ResourceName(strings.TrimPrefix(strings.TrimPrefix(ref.Resource, "limits."), "requests."))
	q, ok := limits[name]
	if !ok {
		switch name {
		case corev1.ResourceCPU:
			q = *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI)
		case corev1.ResourceMemory:
			q = *resource.NewQuantity(hostMemoryBytes(), resource.BinarySI)
		default:
			return "0", nil
		}
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	value := (q.MilliValue() + divisor.MilliValue() - 1) / divisor.MilliValue()
	return strconv.FormatInt(value, 10), nil
}

func formatMap(m map[string]string) string {
	lines := make([]string, 0, len(m))
	for k, v := range m {
		lines = append(lines, fmt.Sprintf("%s=%q", k, v))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func fileMode(mode *int32, fallback os.FileMode) os.FileMode {
	if mode == nil {
		return fallback
	}
	return os.FileMode(*mode) & os.ModePerm
}

func writeFiles(dir string, files map[string]projectedFile) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for rel, f := range files {
		clean := filepath.Clean("/" + rel)
		if clean == "/" {
			return errors.New("empty file path")
		}
		path := filepath.Join(dir, clean)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, f.data, f.mode); err != nil {
			return err
		}
		if err := os.Chmod(path, f.mode); err != nil {
			return err
		}
	}
	return nil
}

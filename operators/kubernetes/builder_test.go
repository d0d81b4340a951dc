package kubernetes

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Pod names follow Airflow's KubernetesPodOperator: cases from its
// test_pod.py (test_task_id_as_name*) and python-slugify's behaviour.
func TestPodName(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 250)
	tests := []struct {
		name, given, taskID, suffix string
		mapIndex                    int
		want                        string
		invalid                     bool // Airflow's own result is no DNS label
	}{
		{"task id as name", "", ".hi.-_09HI", "", -1, "hi-09hi", false},
		{"task id as name with suffix", "", ".hi.-_09HI", "abcd1234", -1, "hi-09hi-abcd1234", false},
		{"very long task id with suffix", "", long, "abcd1234", -1, strings.Repeat("a", 54) + "-abcd1234", false},
		{"very long task id", "", long, "", -1, strings.Repeat("a", 63), false},
		{"underscores", "", "pod_task_xcom_result", "abcd1234", -1, "pod-task-xcom-result-abcd1234", false},
		{"runs of punctuation collapse", "", "a__..__b", "", -1, "a-b", false},
		{"group prefix", "", "transform.Clean_Up", "", -1, "transform-clean-up", false},
		{"accents dropped", "", "Täsk_ünïcode", "", -1, "task-unicode", false},
		{"quotes", "", "it's", "", -1, "it-s", false},
		{"commas between digits", "", "rows_1,000", "", -1, "rows-1000", false},
		{"punctuation only", "", "___", "abcd1234", -1, "pod-abcd1234", false},
		{"cut leaves a dash", "", strings.Repeat("a", 53) + "-" + long, "abcd1234", -1, strings.Repeat("a", 53) + "-abcd1234", false},
		{"given name kept", "my-pod", "t", "", -1, "my-pod", false},
		{"given name with suffix", "my-pod", "t", "abcd1234", -1, "my-pod-abcd1234", false},
		{"given name edges trimmed before the suffix", "-my-pod.", "t", "abcd1234", -1, "my-pod-abcd1234", false},
		{"given name is not trimmed without a suffix", "my-pod-", "t", "", -1, "my-pod-", true},
		{"mapped instance without random suffix", "", "process", "", 3, "process-3", false},
		{"mapped instance with random suffix", "", "process", "abcd1234", 3, "process-abcd1234", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PodName(tt.given, tt.taskID, tt.suffix, tt.mapIndex)
			if got != tt.want {
				t.Errorf("PodName(%q, %q, %q, %d) = %q, want %q", tt.given, tt.taskID, tt.suffix, tt.mapIndex, got, tt.want)
			}
			if errs := validation.IsDNS1123Label(got); (len(errs) > 0) != tt.invalid {
				t.Errorf("PodName = %q: DNS label errors %v, want invalid %v", got, errs, tt.invalid)
			}
		})
	}
}

// The name option is kept as Airflow's _set_name keeps it.
func TestSanitizeName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"My_Pod.Name": "my-pod-name", "-x_": "-x-", "a__b": "a-b", "ok-1": "ok-1"} {
		if got := SanitizeName(in); got != want {
			t.Errorf("SanitizeName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRandomSuffix(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		s := RandomSuffix()
		if len(s) != 8 || strings.Trim(s, suffixAlphabet) != "" {
			t.Fatalf("RandomSuffix() = %q, want 8 characters of [a-z0-9]", s)
		}
		seen[s] = true
	}
	if len(seen) < 95 {
		t.Errorf("100 suffixes gave only %d distinct values", len(seen))
	}
}

// Label values follow Airflow's make_safe_label_value, with the vector of
// its test_pod_generator.py and values computed by its algorithm.
func TestSafeLabelValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		invalid  bool // Airflow's own result is no valid label value
	}{
		{"my_dag_id", "my_dag_id", false},
		{"my_dag_id_" + strings.Repeat("a", 64), "my_dag_id_" + strings.Repeat("a", 43) + "-0ce114c45", false},
		{"manual__2026-11-28T09:00:00.123456+00:00", "manual__2026-11-28T090000.1234560000-47ef2df7a", false},
		{"-task", "task-878fe02cf", false},
		{"täsk", "tsk-6beb685df", false},
		{"a-!", "a-1f2a98b6a", false},
		{"", "", false},
		{"v1.2-3_x", "v1.2-3_x", false},
		{"::++", "-a0cd38c76", true},
	}
	for _, tt := range tests {
		got := SafeLabelValue(tt.in)
		if got != tt.want {
			t.Errorf("SafeLabelValue(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if errs := validation.IsValidLabelValue(got); (len(errs) > 0) != tt.invalid {
			t.Errorf("SafeLabelValue(%q) = %q: errors %v, want invalid %v", tt.in, got, errs, tt.invalid)
		}
	}
	a, b := SafeLabelValue("manual__2026-11-28T09:00:00+00:00"), SafeLabelValue("manual__2026-11-28T09:00:00+01:00")
	if a == b {
		t.Errorf("run ids differing only in invalid characters collide: %q", a)
	}
}

func TestPodLabelsOfAMappedInstance(t *testing.T) {
	t.Parallel()
	got := PodLabels("d", "t", "r", 2, 7)
	want := map[string]string{"dag_id": "d", "task_id": "t", "run_id": "r", "try_number": "2", "kubernetes_pod_operator": "True", "map_index": "7"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("labels %v, want %v", got, want)
	}
	if _, ok := PodLabels("d", "t", "r", 2, -1)["map_index"]; ok {
		t.Error("an unmapped task's pod has a map_index label")
	}
}

func baseOptions(mut func(*PodOptions)) *PodOptions {
	o := defaultOptions()
	o.Image = "alpine"
	if mut != nil {
		mut(&o)
	}
	return &o
}

func build(t *testing.T, in BuildInput) *corev1.Pod {
	t.Helper()
	if in.TaskID == "" {
		in.DagID, in.TaskID, in.RunID, in.TryNumber = "dag", "task", "manual__2026-11-28T09:00:00+00:00", 1
	}
	if in.NameSuffix == "" {
		in.NameSuffix = "abcd1234"
	}
	pod, err := BuildPod(in)
	if err != nil {
		t.Fatalf("BuildPod: %v", err)
	}
	return pod
}

func TestBuildPodNamespace(t *testing.T) {
	t.Parallel()
	tmpl := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "from-template"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "base"}}}}
	full := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "from-full-spec"}}
	tests := []struct {
		name     string
		explicit string
		full     *corev1.Pod
		template *corev1.Pod
		conn     string
		cluster  string
		want     string
	}{
		{"explicit wins", "explicit", full, tmpl, "conn", "incluster", "explicit"},
		{"full_pod_spec over template", "", full, tmpl, "conn", "incluster", "from-full-spec"},
		{"template", "", nil, tmpl, "conn", "incluster", "from-template"},
		{"connection", "", nil, nil, "conn", "incluster", "conn"},
		{"in-cluster service account", "", nil, nil, "", "incluster", "incluster"},
		{"default", "", nil, nil, "", "", "default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := baseOptions(func(o *PodOptions) { o.Namespace = tt.explicit; o.FullPodSpec = tt.full })
			pod := build(t, BuildInput{Options: opts, Template: tt.template,
				Conn: Connection{Namespace: tt.conn}, InClusterNamespace: tt.cluster})
			if pod.Namespace != tt.want {
				t.Errorf("namespace = %q, want %q", pod.Namespace, tt.want)
			}
		})
	}
}

func TestBuildPodPrecedence(t *testing.T) {
	t.Parallel()
	template := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "template-name", Labels: map[string]string{"team": "template", "tier": "batch"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "main", Image: "template-image", Command: []string{"template-cmd"},
				Env:       []corev1.EnvVar{{Name: "FROM_TEMPLATE", Value: "1"}},
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}},
			}},
			Volumes:            []corev1.Volume{{Name: "template-vol"}},
			NodeSelector:       map[string]string{"pool": "template"},
			ServiceAccountName: "template-sa",
			RestartPolicy:      corev1.RestartPolicyAlways,
			Tolerations:        []corev1.Toleration{{Key: "template"}},
		},
	}
	full := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"team": "full"}},
		Spec: corev1.PodSpec{
			Containers:         []corev1.Container{{Name: "base", Env: []corev1.EnvVar{{Name: "FROM_FULL", Value: "2"}}}},
			ServiceAccountName: "full-sa",
			Tolerations:        []corev1.Toleration{{Key: "full"}},
		},
	}
	tests := []struct {
		name  string
		opts  func(*PodOptions)
		check func(t *testing.T, pod *corev1.Pod)
	}{
		{"args override scalars", func(o *PodOptions) { o.Image = "args-image"; o.ServiceAccountName = "args-sa" },
			func(t *testing.T, pod *corev1.Pod) {
				base := pod.Spec.Containers[0]
				expect(t, "image", base.Image, "args-image")
				expect(t, "serviceAccountName", pod.Spec.ServiceAccountName, "args-sa")
				expect(t, "base container name", base.Name, "base")
			}},
		{"unset args keep full_pod_spec over template", func(o *PodOptions) { o.Image = "" },
			func(t *testing.T, pod *corev1.Pod) {
				expect(t, "image", pod.Spec.Containers[0].Image, "template-image")
				expect(t, "serviceAccountName", pod.Spec.ServiceAccountName, "full-sa")
				expect(t, "command", pod.Spec.Containers[0].Command, []string{"template-cmd"})
			}},
		{"args command replaces template command", func(o *PodOptions) { o.Cmds = []string{"sh", "-c"}; o.Arguments = []string{"echo"} },
			func(t *testing.T, pod *corev1.Pod) {
				expect(t, "command", pod.Spec.Containers[0].Command, []string{"sh", "-c"})
				expect(t, "args", pod.Spec.Containers[0].Args, []string{"echo"})
			}},
		{"lists append template first", func(o *PodOptions) {
			o.EnvVars = EnvVars{{Name: "FROM_ARGS", Value: "3"}}
			o.Volumes = []corev1.Volume{{Name: "args-vol"}}
			o.Tolerations = []corev1.Toleration{{Key: "args"}}
		}, func(t *testing.T, pod *corev1.Pod) {
			var env []string
			for _, e := range pod.Spec.Containers[0].Env {
				env = append(env, e.Name)
			}
			expect(t, "env", env, []string{"FROM_TEMPLATE", "FROM_FULL", "FROM_ARGS"})
			expect(t, "volumes", []string{pod.Spec.Volumes[0].Name, pod.Spec.Volumes[1].Name}, []string{"template-vol", "args-vol"})
			var tol []string
			for _, x := range pod.Spec.Tolerations {
				tol = append(tol, x.Key)
			}
			expect(t, "tolerations", tol, []string{"template", "full", "args"})
		}},
		{"maps merge with args winning", func(o *PodOptions) {
			o.Labels = map[string]string{"team": "args"}
			o.NodeSelector = map[string]string{"disk": "ssd"}
			o.Resources = &corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}
		}, func(t *testing.T, pod *corev1.Pod) {
			expect(t, "team label", pod.Labels["team"], "args")
			expect(t, "tier label", pod.Labels["tier"], "batch")
			expect(t, "nodeSelector", pod.Spec.NodeSelector, map[string]string{"pool": "template", "disk": "ssd"})
			res := pod.Spec.Containers[0].Resources
			if res.Limits.Memory().String() != "1Gi" || res.Requests.Cpu().String() != "100m" {
				t.Errorf("resources = %v, want template limit and args request", res)
			}
		}},
		{"restart policy always Never", nil, func(t *testing.T, pod *corev1.Pod) {
			expect(t, "restartPolicy", pod.Spec.RestartPolicy, corev1.RestartPolicyNever)
		}},
		{"name from template, sanitised", nil, func(t *testing.T, pod *corev1.Pod) {
			expect(t, "name", pod.Name, "template-name-abcd1234")
		}},
		{"name option wins", func(o *PodOptions) { o.Name = "My_Pod" }, func(t *testing.T, pod *corev1.Pod) {
			expect(t, "name", pod.Name, "my-pod-abcd1234")
		}},
		{"one base container", nil, func(t *testing.T, pod *corev1.Pod) {
			expect(t, "containers", len(pod.Spec.Containers), 1)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := baseOptions(tt.opts)
			opts.FullPodSpec = full
			pod := build(t, BuildInput{Options: opts, Template: template})
			tt.check(t, pod)
		})
	}
	if template.Spec.Containers[0].Name != "main" || len(template.Spec.Volumes) != 1 {
		t.Errorf("BuildPod modified its template")
	}
}

func TestBuildPodDefaults(t *testing.T) {
	t.Parallel()
	grace := int64(7)
	opts := baseOptions(func(o *PodOptions) {
		o.Name = ""
		o.TerminationGracePeriod = &grace
		o.EnvVars = EnvVars{{Name: "A", Value: "1"}}
		o.ConfigMaps = []string{"cm-1"}
		o.EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}}}}
		o.RandomNameSuffix = false
	})
	pod := build(t, BuildInput{Options: opts, DagID: "Example DAG", TaskID: "Write_XCom", RunID: "manual__2026-11-28T09:00:00+00:00", TryNumber: 2})
	expect(t, "apiVersion", pod.APIVersion, "v1")
	expect(t, "kind", pod.Kind, "Pod")
	expect(t, "name", pod.Name, "write-xcom")
	expect(t, "terminationGracePeriodSeconds", *pod.Spec.TerminationGracePeriodSeconds, int64(7))
	base := pod.Spec.Containers[0]
	expect(t, "terminationMessagePolicy", base.TerminationMessagePolicy, corev1.TerminationMessageReadFile)
	expect(t, "env", base.Env, []corev1.EnvVar{{Name: "A", Value: "1"}})
	expect(t, "envFrom", len(base.EnvFrom), 2)
	expect(t, "configmap envFrom", base.EnvFrom[1].ConfigMapRef.Name, "cm-1")
	for k, v := range map[string]string{
		"dag_id": SafeLabelValue("Example DAG"), "task_id": "Write_XCom", "try_number": "2",
		"kubernetes_pod_operator": "True", "run_id": SafeLabelValue("manual__2026-11-28T09:00:00+00:00"),
	} {
		expect(t, "label "+k, pod.Labels[k], v)
	}
	for k, v := range pod.Labels {
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			t.Errorf("label %s=%q invalid: %v", k, v, errs)
		}
	}
	if len(pod.Spec.Volumes) != 0 || len(pod.Spec.Containers) != 1 {
		t.Errorf("do_xcom_push false added something: %d volumes, %d containers", len(pod.Spec.Volumes), len(pod.Spec.Containers))
	}
}

func TestBuildPodSecrets(t *testing.T) {
	t.Parallel()
	opts := baseOptions(func(o *PodOptions) {
		o.Secrets = []Secret{
			{DeployType: "volume", DeployTarget: "/etc/sql_conn", Secret: "airflow-secrets", Key: "sql_alchemy_conn"},
			{DeployType: "env", DeployTarget: "sql_conn", Secret: "airflow-secrets", Key: "sql_alchemy_conn"},
			{DeployType: "env", Secret: "airflow-secrets-2"},
			{DeployType: "volume", DeployTarget: "/etc/all", Secret: "whole"},
		}
	})
	pod := build(t, BuildInput{Options: opts})
	base := pod.Spec.Containers[0]
	expect(t, "env", base.Env, []corev1.EnvVar{{Name: "SQL_CONN", ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "airflow-secrets"}, Key: "sql_alchemy_conn"}}}})
	expect(t, "envFrom", base.EnvFrom, []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "airflow-secrets-2"}}}})
	expect(t, "volumes", pod.Spec.Volumes, []corev1.Volume{
		{Name: "secretvol-0", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: "airflow-secrets", Items: []corev1.KeyToPath{{Key: "sql_alchemy_conn", Path: "sql_alchemy_conn"}}}}},
		{Name: "secretvol-3", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "whole"}}},
	})
	expect(t, "volumeMounts", base.VolumeMounts, []corev1.VolumeMount{
		{Name: "secretvol-0", MountPath: "/etc/sql_conn", ReadOnly: true},
		{Name: "secretvol-3", MountPath: "/etc/all", ReadOnly: true},
	})
	if _, err := BuildPod(BuildInput{Options: baseOptions(func(o *PodOptions) {
		o.Secrets = []Secret{{DeployType: "file", Secret: "x"}}
	}), TaskID: "t"}); err == nil || !strings.Contains(err.Error(), "deploy_type") {
		t.Errorf("bad deploy_type: err = %v", err)
	}
}

func TestBuildPodXComSidecar(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		conn      Connection
		operator  string
		wantImage string
		wantReq   corev1.ResourceList
	}{
		{"default", Connection{}, "", "alpine", corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("1m"), corev1.ResourceMemory: resource.MustParse("10Mi")}},
		{"operator image", Connection{}, "busybox:1.36", "busybox:1.36", nil},
		{"connection image and resources win", Connection{SidecarImage: "registry/alpine:3",
			SidecarResources: &corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("5m")}}},
			"busybox:1.36", "registry/alpine:3", corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("5m")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := baseOptions(func(o *PodOptions) { o.DoXComPush = true })
			pod := build(t, BuildInput{Options: opts, Conn: tt.conn, SidecarImage: tt.operator})
			if len(pod.Spec.Containers) != 2 {
				t.Fatalf("containers = %d, want base and sidecar", len(pod.Spec.Containers))
			}
			base, side := pod.Spec.Containers[0], pod.Spec.Containers[1]
			expect(t, "sidecar name", side.Name, "airflow-xcom-sidecar")
			expect(t, "sidecar image", side.Image, tt.wantImage)
			if tt.wantReq != nil {
				expect(t, "sidecar requests", side.Resources.Requests.Cpu().String(), tt.wantReq.Cpu().String())
				expect(t, "sidecar requests", side.Resources.Requests.Memory().String(), tt.wantReq.Memory().String())
			}
			mount := corev1.VolumeMount{Name: "xcom", MountPath: "/airflow/xcom"}
			expect(t, "base mounts", base.VolumeMounts, []corev1.VolumeMount{mount})
			expect(t, "sidecar mounts", side.VolumeMounts, []corev1.VolumeMount{mount})
			expect(t, "volumes", pod.Spec.Volumes, []corev1.Volume{{Name: "xcom",
				VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}})
			script := strings.Join(side.Command, " ")
			if !strings.Contains(script, "/airflow/xcom/.done") || strings.Contains(script, "pgrep") {
				t.Errorf("sidecar command %q does not wait for the sentinel file", script)
			}
		})
	}
}

func expect[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

// The XCom volume and its mount come first, as Airflow's add_xcom_sidecar
// inserts them at index 0; the sidecar container comes last.
func TestXComVolumeComesFirst(t *testing.T) {
	t.Parallel()
	pod := build(t, BuildInput{Options: baseOptions(func(o *PodOptions) {
		o.DoXComPush = true
		o.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		o.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	})})
	if v := pod.Spec.Volumes; len(v) != 2 || v[0].Name != XComVolumeName || v[1].Name != "data" {
		t.Errorf("volumes %v", v)
	}
	base := pod.Spec.Containers[0]
	if m := base.VolumeMounts; len(m) != 2 || m[0].Name != XComVolumeName || m[1].Name != "data" {
		t.Errorf("base mounts %v", m)
	}
	if c := pod.Spec.Containers; c[len(c)-1].Name != SidecarContainerName {
		t.Errorf("sidecar is not last: %v", c[len(c)-1].Name)
	}
}

// A mapped instance's pod carries map_index and a name of its own even
// without a random suffix.
func TestBuildPodOfAMappedInstance(t *testing.T) {
	t.Parallel()
	pod := build(t, BuildInput{Options: baseOptions(func(o *PodOptions) { o.RandomNameSuffix = false }),
		DagID: "d", TaskID: "process_file", RunID: "r", TryNumber: 1, Mapped: true, MapIndex: 4})
	if pod.Name != "process-file-4" || pod.Labels["map_index"] != "4" {
		t.Errorf("name %q, labels %v", pod.Name, pod.Labels)
	}
}

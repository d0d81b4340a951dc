package deploy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/operators/builtin"
	"github.com/podflow/podflow/operators/kubernetes"
)

const (
	namespace      = "podflow"
	serviceAccount = "podflow"
	roleName       = "podflow-pod-operator"
	dagsConfigMap  = "podflow-dags"
	databaseSecret = "podflow-database"
	healthPort     = 8080
)

// object is one manifest, decoded strictly into its Go type.
type object struct {
	file string
	kind string
	name string
	ns   string
	obj  any
}

// manifests reads every manifest under deploy/kubernetes, as `kubectl apply
// -R` does (files ending in .yaml, .yml or .json; several documents a file).
func manifests(t *testing.T) []object {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "deploy", "kubernetes")
	var out []object
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		switch filepath.Ext(path) {
		case ".yaml", ".yml", ".json":
		default:
			t.Errorf("%s: not a manifest; kubectl apply -R skips it, so keep it out of deploy/kubernetes", rel)
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		dec := k8syaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			var raw json.RawMessage
			if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Errorf("%s: %v", rel, err)
				break
			}
			if len(bytes.TrimSpace(raw)) == 0 || string(raw) == "null" {
				continue
			}
			out = append(out, decodeObject(t, rel, raw))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("no manifests in deploy/kubernetes")
	}
	return out
}

func decodeObject(t *testing.T, file string, raw []byte) object {
	t.Helper()
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var obj any
	switch meta.APIVersion + " " + meta.Kind {
	case "v1 Namespace":
		obj = &corev1.Namespace{}
	case "v1 ServiceAccount":
		obj = &corev1.ServiceAccount{}
	case "v1 ConfigMap":
		obj = &corev1.ConfigMap{}
	case "v1 Secret":
		obj = &corev1.Secret{}
	case "rbac.authorization.k8s.io/v1 Role":
		obj = &rbacv1.Role{}
	case "rbac.authorization.k8s.io/v1 RoleBinding":
		obj = &rbacv1.RoleBinding{}
	case "apps/v1 Deployment":
		obj = &appsv1.Deployment{}
	case "v1 Service":
		obj = &corev1.Service{}
	default:
		t.Fatalf("%s: unexpected object %s %s (add it to the test)", file, meta.APIVersion, meta.Kind)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields() // a misspelt field is an error, not a silently dropped setting
	if err := dec.Decode(obj); err != nil {
		t.Fatalf("%s: %s: %v", file, meta.Kind, err)
	}
	type named interface {
		GetName() string
		GetNamespace() string
	}
	n := obj.(named)
	return object{file: file, kind: meta.Kind, name: n.GetName(), ns: n.GetNamespace(), obj: obj}
}

func find[T any](t *testing.T, objs []object, kind, name string) T {
	t.Helper()
	for _, o := range objs {
		if o.kind == kind && o.name == name {
			return o.obj.(T)
		}
	}
	t.Fatalf("no %s %s in deploy/kubernetes", kind, name)
	var zero T
	return zero
}

func TestManifestsNamespaces(t *testing.T) {
	objs := manifests(t)
	var inNamespaceFile []string
	for _, o := range objs {
		if o.file == "namespace.yaml" {
			inNamespaceFile = append(inNamespaceFile, o.kind+"/"+o.name)
			continue
		}
		if o.kind == "Namespace" {
			t.Errorf("%s: Namespace %s outside namespace.yaml", o.file, o.name)
		} else if o.ns != namespace {
			t.Errorf("%s: %s %s is in namespace %q, want %q", o.file, o.kind, o.name, o.ns, namespace)
		}
	}
	if !slices.Equal(inNamespaceFile, []string{"Namespace/" + namespace}) {
		t.Errorf("namespace.yaml holds %v, want the Namespace %s alone", inNamespaceFile, namespace)
	}
}

// The Role grants exactly the kubernetes_pod operator's least rights.
func TestManifestsRoleLeastRights(t *testing.T) {
	want := []string{
		"pods create", "pods get", "pods list", "pods watch", "pods delete",
		"pods/log get",
		"pods/exec create",
		"events list",
	}
	objs := manifests(t)
	role := find[*rbacv1.Role](t, objs, "Role", roleName)
	var got []string
	for _, r := range role.Rules {
		if !slices.Equal(r.APIGroups, []string{""}) {
			t.Errorf("rule %+v: want the core API group only", r)
		}
		if len(r.ResourceNames) != 0 || len(r.NonResourceURLs) != 0 {
			t.Errorf("rule %+v: unexpected resourceNames or nonResourceURLs", r)
		}
		for _, res := range r.Resources {
			for _, verb := range r.Verbs {
				got = append(got, res+" "+verb)
			}
		}
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("Role %s grants\n  %v\nwant exactly\n  %v", roleName, got, want)
	}

	rb := find[*rbacv1.RoleBinding](t, objs, "RoleBinding", roleName)
	if rb.RoleRef != (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: roleName}) {
		t.Errorf("RoleBinding roleRef = %+v", rb.RoleRef)
	}
	if len(rb.Subjects) != 1 || rb.Subjects[0] != (rbacv1.Subject{Kind: "ServiceAccount", Name: serviceAccount, Namespace: namespace}) {
		t.Errorf("RoleBinding subjects = %+v, want the ServiceAccount %s/%s alone", rb.Subjects, namespace, serviceAccount)
	}
	find[*corev1.ServiceAccount](t, objs, "ServiceAccount", serviceAccount)
}

func TestManifestsDeployments(t *testing.T) {
	objs := manifests(t)
	secret := find[*corev1.Secret](t, objs, "Secret", databaseSecret)
	dockerfile := string(readRepoFile(t, "Dockerfile"))
	for _, component := range []string{"scheduler", "triggerer"} {
		t.Run(component, func(t *testing.T) {
			d := find[*appsv1.Deployment](t, objs, "Deployment", "podflow-"+component)
			pod := d.Spec.Template.Spec
			if d.Spec.Selector == nil || len(d.Spec.Selector.MatchLabels) == 0 {
				t.Fatal("no selector")
			}
			for k, v := range d.Spec.Selector.MatchLabels {
				if d.Spec.Template.Labels[k] != v {
					t.Errorf("selector %s=%s does not match the pod template's labels %v", k, v, d.Spec.Template.Labels)
				}
			}
			if pod.ServiceAccountName != serviceAccount {
				t.Errorf("serviceAccountName = %q, want %q", pod.ServiceAccountName, serviceAccount)
			}
			if pod.AutomountServiceAccountToken != nil && !*pod.AutomountServiceAccountToken {
				t.Error("automountServiceAccountToken is false: in_cluster needs the token")
			}
			sc := pod.SecurityContext
			if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
				t.Error("the pod's securityContext must set runAsNonRoot: true")
			}
			if sc != nil && sc.RunAsUser != nil && !strings.Contains(dockerfile, "USER "+itoa(*sc.RunAsUser)) {
				t.Errorf("runAsUser %d is not the image's USER", *sc.RunAsUser)
			}
			if len(pod.Containers) != 1 {
				t.Fatalf("%d containers, want 1", len(pod.Containers))
			}
			c := pod.Containers[0]
			if c.Image == "" {
				t.Error("no image")
			}
			if len(c.Command) != 0 {
				t.Errorf("command %v replaces the image's tini entrypoint; use args", c.Command)
			}
			if len(c.Args) == 0 || c.Args[0] != component || !slices.Contains(c.Args, "--health-addr=0.0.0.0:8080") {
				t.Errorf("args = %v, want [%s --health-addr=0.0.0.0:8080]", c.Args, component)
			}
			if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
				t.Errorf("resources %+v: want cpu and memory requests and a memory limit", c.Resources)
			}
			for name, p := range map[string]*corev1.Probe{"readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe} {
				if p == nil || p.HTTPGet == nil {
					t.Errorf("%s: want an httpGet probe on /healthz", name)
					continue
				}
				if p.HTTPGet.Path != "/healthz" || containerPort(c, p.HTTPGet.Port) != healthPort {
					t.Errorf("%s: %s on port %s, want /healthz on %d", name, p.HTTPGet.Path, p.HTTPGet.Port.String(), healthPort)
				}
			}

			env := map[string]corev1.EnvVar{}
			for _, e := range c.Env {
				env[e.Name] = e
			}
			db := env["DATABASE_URL"].ValueFrom
			if db == nil || db.SecretKeyRef == nil || db.SecretKeyRef.Name != databaseSecret {
				t.Errorf("DATABASE_URL must come from the Secret %s: %+v", databaseSecret, env["DATABASE_URL"])
			} else if _, ok := secret.StringData[db.SecretKeyRef.Key]; !ok {
				if _, ok := secret.Data[db.SecretKeyRef.Key]; !ok {
					t.Errorf("the Secret %s has no key %s", databaseSecret, db.SecretKeyRef.Key)
				}
			}
			var raw map[string]any
			if err := json.Unmarshal([]byte(env["PODFLOW_CONN_KUBERNETES_DEFAULT"].Value), &raw); err != nil {
				t.Fatalf("PODFLOW_CONN_KUBERNETES_DEFAULT: %v", err)
			}
			conn, err := kubernetes.ParseConnection(raw)
			if err != nil {
				t.Fatalf("PODFLOW_CONN_KUBERNETES_DEFAULT: %v", err)
			}
			if conn.InCluster == nil || !*conn.InCluster || conn.Namespace != namespace {
				t.Errorf("kubernetes_default connection = in_cluster %v, namespace %q; want in_cluster true in %s (the Role's namespace)",
					conn.InCluster, conn.Namespace, namespace)
			}

			// The DAGs ConfigMap is mounted where PODFLOW_DAGS_FOLDER points.
			dagsFolder := env["PODFLOW_DAGS_FOLDER"].Value
			var dagsVolume string
			for _, v := range pod.Volumes {
				if v.ConfigMap != nil && v.ConfigMap.Name == dagsConfigMap {
					dagsVolume = v.Name
				}
			}
			if dagsVolume == "" {
				t.Fatalf("no volume from the ConfigMap %s", dagsConfigMap)
			}
			mounted := false
			for _, m := range c.VolumeMounts {
				if m.Name == dagsVolume && m.MountPath == dagsFolder && m.ReadOnly {
					mounted = true
				}
			}
			if dagsFolder == "" || !mounted {
				t.Errorf("the ConfigMap %s must be mounted read-only at PODFLOW_DAGS_FOLDER (%q): %+v", dagsConfigMap, dagsFolder, c.VolumeMounts)
			}
			find[*corev1.ConfigMap](t, objs, "ConfigMap", dagsConfigMap)
		})
	}
}

// The webserver: stateless replicas behind a Service, logins on, no
// Kubernetes rights.
func TestManifestsWebserver(t *testing.T) {
	objs := manifests(t)
	d := find[*appsv1.Deployment](t, objs, "Deployment", "podflow-webserver")
	pod := d.Spec.Template.Spec
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		t.Errorf("replicas = %v: the webserver is stateless, run at least 2", d.Spec.Replicas)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the webserver needs no Kubernetes API: set automountServiceAccountToken: false")
	}
	if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Error("the pod's securityContext must set runAsNonRoot: true")
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	if len(c.Command) != 0 || len(c.Args) < 3 || c.Args[0] != "podflow" || c.Args[1] != "webserver" ||
		!slices.Contains(c.Args, "--addr=0.0.0.0:8080") {
		t.Errorf("command %v args %v, want args [podflow webserver --addr=0.0.0.0:8080]", c.Command, c.Args)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	if env["PODFLOW_AUTH"].Value != "builtin" {
		t.Errorf("PODFLOW_AUTH = %q: a reachable API needs logins (builtin)", env["PODFLOW_AUTH"].Value)
	}
	if db := env["DATABASE_URL"].ValueFrom; db == nil || db.SecretKeyRef == nil || db.SecretKeyRef.Name != databaseSecret {
		t.Errorf("DATABASE_URL must come from the Secret %s", databaseSecret)
	}
	for name, p := range map[string]*corev1.Probe{"readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || containerPort(c, p.HTTPGet.Port) != healthPort {
			t.Errorf("%s: want an httpGet probe on /healthz port %d", name, healthPort)
		}
	}
	if c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Error("readOnlyRootFilesystem: true")
	}
	svc := find[*corev1.Service](t, objs, "Service", "podflow-webserver")
	for k, v := range svc.Spec.Selector {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("Service selector %s=%s does not select the webserver pods %v", k, v, d.Spec.Template.Labels)
		}
	}
	if len(svc.Spec.Selector) == 0 || len(svc.Spec.Ports) != 1 || containerPort(c, svc.Spec.Ports[0].TargetPort) != healthPort {
		t.Errorf("Service %+v: want one port to the container's http port", svc.Spec)
	}
}

func containerPort(c corev1.Container, p intstr.IntOrString) int {
	if p.Type == intstr.Int {
		return p.IntValue()
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort)
		}
	}
	return -1
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// The DAGs in the ConfigMap parse with the daemons' own parser and operators.
func TestManifestsDAGsParse(t *testing.T) {
	cm := find[*corev1.ConfigMap](t, manifests(t), "ConfigMap", dagsConfigMap)
	if len(cm.Data) == 0 {
		t.Fatalf("the ConfigMap %s holds no DAG", dagsConfigMap)
	}
	valid := regexp.MustCompile(`^[-._a-zA-Z0-9]+\.ya?ml$`)
	parse := func(t *testing.T, p *dag.Parser) {
		for key, src := range cm.Data {
			if !valid.MatchString(key) {
				t.Errorf("key %q: the scheduler reads only *.yaml and *.yml files", key)
				continue
			}
			d, errs := p.ParseBytes("/dags/"+key, []byte(src))
			if len(errs) > 0 {
				t.Errorf("%s: %v", key, errs)
				continue
			}
			ops := map[string]bool{}
			for _, task := range d.Tasks {
				ops[task.Operator] = true
			}
			if !ops[kubernetes.OperatorName] || !ops["bash"] {
				t.Errorf("%s: operators %v; the example shows a bash task and a kubernetes_pod task", key, ops)
			}
		}
	}
	// What the scheduler and triggerer accept: the built-in registry.
	t.Run("builtin", func(t *testing.T) {
		reg := builtin.Registry(builtin.Deps{})
		if _, ok := reg.Lookup(kubernetes.OperatorName); !ok {
			t.Fatalf("operators/builtin does not register %s yet: the daemons would reject this DAG", kubernetes.OperatorName)
		}
		parse(t, dag.NewParser(reg.Schemas()))
	})
	// The kubernetes_pod operator's own schema, whether or not builtin has it.
	t.Run("kubernetes_pod", func(t *testing.T) {
		reg := builtin.Registry(builtin.Deps{})
		if _, ok := reg.Lookup(kubernetes.OperatorName); !ok {
			reg.Register(kubernetes.New())
		}
		parse(t, dag.NewParser(reg.Schemas()))
	})
}

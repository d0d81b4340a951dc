package kubernetes

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/flowtest"
	"github.com/podflow/podflow/operators"
)

// TestCheckErrorPositions: strict checks report the offending key or value at
// its own line and column, with the field path.
func TestCheckErrorPositions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		src        string
		option     string
		line, col  int
		msgContain string
	}{
		{"unknown field in affinity", `
affinity:
  nodeAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 1
        preferenceX:
          matchExpressions: []
`, "affinity", 6, 9, `unknown field "preferenceX" in affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0] (did you mean "preference"?)`},
		{"misspelt top field", `
affinity:
  nodeAfinity: {}
`, "affinity", 3, 3, `(did you mean "nodeAffinity"?)`},
		{"wrong type", `
affinity:
  nodeAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: heavy
`, "affinity", 5, 17, `affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: wants an integer, got "heavy"`},
		{"list wanted", `
tolerations:
  key: a
`, "tolerations", 3, 3, "tolerations: wants a list, got a mapping"},
		{"bad quantity", `
container_resources:
  limits:
    memory: lots
`, "container_resources", 4, 13, "container_resources.limits.memory: invalid value"},
		{"volume unknown field", `
volumes:
  - name: v
    persistentVolumeClaim:
      claimNam: x
`, "volumes", 5, 7, `unknown field "claimNam"`},
		{"init container", `
init_containers:
  - name: init
    image: busybox
    comand: [sh]
`, "init_containers", 5, 5, `(did you mean "command"?)`},
		{"env var list", `
env_vars:
  - name: A
    valu: x
`, "env_vars", 4, 5, `(did you mean "value"?)`},
		{"secret deploy type", `
secrets:
  - {deploy_type: file, deploy_target: /x, secret: s}
`, "secrets", 3, 19, "secrets[0].deploy_type: wants env or volume"},
		{"secret unknown key", `
secrets:
  - {deploy_type: env, secret: s, keys: x}
`, "secrets", 3, 35, `unknown field "keys"`},
		{"on_finish_action", `
on_finish_action: delete
`, "on_finish_action", 2, 19, "wants one of delete_pod"},
		{"full_pod_spec", `
full_pod_spec:
  spec:
    containers:
      - name: base
        imagePullPolicy: Always
        resources: {limits: {cpu: 1}}
        securityContext: {runAsUser: root}
`, "full_pod_spec", 8, 38, "runAsUser: wants an integer"},
		{"container_logs", `
container_logs: {base: true}
`, "container_logs", 2, 17, "wants a container name"},
	}
	op := New()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			task := parseTask(t, "t", tt.src)
			opt, ok := op.Schema().Option(tt.option)
			if !ok || opt.Check == nil {
				t.Fatalf("option %s has no Check", tt.option)
			}
			errs := opt.Check(task.Nodes[tt.option])
			if len(errs) != 1 {
				t.Fatalf("errors = %v, want exactly one", dag.Errors(errs))
			}
			e := errs[0]
			if e.Line != tt.line || e.Column != tt.col || !strings.Contains(e.Msg, tt.msgContain) {
				t.Errorf("error = %d:%d %s\nwant    %d:%d …%s…", e.Line, e.Column, e.Msg, tt.line, tt.col, tt.msgContain)
			}
		})
	}
}

func TestCheckAcceptsValidObjects(t *testing.T) {
	t.Parallel()
	task := parseTask(t, "t", `
env_vars: {A: "1", B: 2, C: '{{ params.c }}'}
container_resources:
  limits: {memory: '{{ params.mem }}', cpu: 1}
  requests: {cpu: 100m}
affinity:
  podAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 1
        podAffinityTerm:
          labelSelector:
            matchExpressions: [{key: security, operator: In, values: [S1]}]
          topologyKey: zone
ports: [{name: http, containerPort: 80}]
image_pull_secrets: "a, b"
skip_on_exit_code: 3
container_logs: true
init_container_logs: [init]
security_context: {runAsUser: 1000, fsGroup: 2000}
full_pod_spec:
  apiVersion: v1
  kind: Pod
  metadata: {labels: {a: b}}
  spec:
    containers:
      - name: base
        livenessProbe: {httpGet: {port: http, path: /}}
        readinessProbe: {tcpSocket: {port: 8080}}
`)
	op := New()
	for name, n := range task.Nodes {
		opt, ok := op.Schema().Option(name)
		if !ok {
			t.Fatalf("unknown option %s", name)
		}
		if opt.Check == nil {
			continue
		}
		if errs := opt.Check(n); len(errs) > 0 {
			t.Errorf("%s: %v", name, dag.Errors(errs))
		}
	}
}

// TestRenderBeforeDecode: templated strings inside Kubernetes objects are
// rendered first and then read as the field's type.
func TestRenderBeforeDecode(t *testing.T) {
	t.Parallel()
	op := New(WithNameSuffix(func() string { return "abcd1234" }), WithInClusterNamespace(func() string { return "" }))
	op.render = fakeRender(map[string]string{"params.mem": "512Mi", "params.ns": "jobs", "params.port": "8080", "ds": "2026-11-28"})
	task := parseTask(t, "templated", `
image: alpine
namespace: '{{ params.ns }}'
arguments: ['{{ ds }}']
env_vars: {DS: '{{ ds }}'}
container_resources: {limits: {memory: '{{ params.mem }}'}}
volumes: [{name: v, hostPath: {path: '/data/{{ ds }}'}}]
labels: {day: '{{ ds }}'}
affinity: {nodeAffinity: {}}
`)
	pod, err := op.Plan(context.Background(), &operators.TaskContext{DAG: &dag.DAG{ID: "d"}, Task: task, RunID: "r", TryNumber: 1})
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	base := pod.Spec.Containers[0]
	expect(t, "namespace", pod.Namespace, "jobs")
	expect(t, "args", base.Args, []string{"2026-11-28"})
	expect(t, "env", base.Env[0].Value, "2026-11-28")
	expect(t, "memory", base.Resources.Limits.Memory().String(), "512Mi")
	expect(t, "hostPath", pod.Spec.Volumes[0].HostPath.Path, "/data/2026-11-28")
	expect(t, "label", pod.Labels["day"], "2026-11-28")

	bad := parseTask(t, "bad", `
image: alpine
container_resources: {limits: {memory: '{{ params.port }}x'}}
`)
	_, err = op.Plan(context.Background(), &operators.TaskContext{DAG: &dag.DAG{ID: "d", Path: "d.yaml"}, Task: bad, RunID: "r"})
	if err == nil || !strings.Contains(err.Error(), "d.yaml:3:40: container_resources.limits.memory: invalid value \"8080x\"") {
		t.Errorf("rendered invalid quantity: err = %v", err)
	}
	undefined := parseTask(t, "undefined", `
check_templates: false
image: '{{ nope }}'
`)
	_, err = op.Plan(context.Background(), &operators.TaskContext{DAG: &dag.DAG{ID: "d"}, Task: undefined, RunID: "r"})
	if err == nil || !strings.Contains(err.Error(), "render image") {
		t.Errorf("undefined template name: err = %v", err)
	}
}

// TestOptionsDefaults: Airflow's defaults, and the old is_delete_operator_pod.
func TestOptionsDefaults(t *testing.T) {
	t.Parallel()
	op := New()
	tc := &operators.TaskContext{DAG: &dag.DAG{ID: "d"}, Task: parseTask(t, "t", "image: alpine\n")}
	o, err := op.options(context.Background(), tc)
	if err != nil {
		t.Fatal(err)
	}
	expect(t, "random_name_suffix", o.RandomNameSuffix, true)
	expect(t, "do_xcom_push", o.DoXComPush, false)
	expect(t, "get_logs", o.GetLogs, true)
	expect(t, "container_logs", o.ContainerLogs.Wants("base"), true)
	expect(t, "reattach_on_restart", o.ReattachOnRestart, true)
	expect(t, "startup_timeout_seconds", o.StartupTimeout, int64(120))
	expect(t, "schedule_timeout_seconds", *o.ScheduleTimeout, int64(120))
	expect(t, "on_finish_action", o.finishAction(), DeletePod)
	expect(t, "kubernetes_conn_id", o.ConnID, DefaultConnID)

	tc.Task = parseTask(t, "t", "image: alpine\nis_delete_operator_pod: false\nskip_on_exit_code: [1, 3]\nimage_pull_secrets: [a, {name: b}]\n")
	o, err = op.options(context.Background(), tc)
	if err != nil {
		t.Fatal(err)
	}
	expect(t, "on_finish_action", o.finishAction(), KeepPod)
	expect(t, "skip_on_exit_code", []int32(o.SkipOnExitCode), []int32{1, 3})
	expect(t, "image_pull_secrets", len(o.ImagePullSecrets), 2)

	for src, want := range map[string][2]bool{ // wants base, wants other
		"container_logs: false":         {false, false},
		"container_logs: true":          {true, true},
		"container_logs: other":         {false, true},
		"container_logs: [base, other]": {true, true},
	} {
		tc.Task = parseTask(t, "t", "image: alpine\n"+src+"\n")
		o, err := op.options(context.Background(), tc)
		if err != nil {
			t.Fatal(err)
		}
		expect(t, src, [2]bool{o.ContainerLogs.Wants("base"), o.ContainerLogs.Wants("other")}, want)
	}
}

// TestParserReportsPositions: through the DAG parser, a bad field inside a
// Kubernetes object is reported as file:line:col.
func TestParserReportsPositions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.yaml")
	src := `dag_id: bad
start_date: 2026-01-01
tasks:
  - task_id: pod
    operator: kubernetes_pod
    image: alpine
    tolerations:
      - key: a
        efect: NoSchedule
    is_delete_operator_pod: true
    on_finish_action: keep_pod
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errs := dag.NewParser(schemaRegistry(New())).ParseFile(path)
	got := errs.Error()
	if !strings.Contains(got, path+`:9:9: unknown field "efect" in tolerations[0] (did you mean "effect"?)`) {
		t.Errorf("errors:\n%s", got)
	}
}

// TestRenderWithTemplating renders through the real template engine.
func TestRenderWithTemplating(t *testing.T) {
	t.Parallel()
	op := New(WithNameSuffix(func() string { return "abcd1234" }), WithInClusterNamespace(func() string { return "" }))
	d := &dag.DAG{ID: "d", Params: map[string]any{"mem": "256Mi"}}
	task := parseTask(t, "t", `
image: alpine
arguments: ['{{ ds }}', '{{ params.mem }}', '{{ dag_run.conf.get("k", 1) }}']
container_resources: {limits: {memory: '{{ params.mem }}'}}
`)
	now := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	tc := DryRunContext(d, task, map[string]any{"k": "v"}, now, nil, flowtest.NewLog())
	pod, err := op.DryRun(context.Background(), tc)
	if err != nil {
		t.Fatalf("DryRun: %v", err)
	}
	expect(t, "args", pod.Spec.Containers[0].Args, []string{"2026-11-28", "256Mi", "v"})
	expect(t, "memory", pod.Spec.Containers[0].Resources.Limits.Memory().String(), "256Mi")
	expect(t, "run_id", tc.RunID, "manual__2026-11-28T09:00:00Z")
}

package kubernetes

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/flowtest"
	"github.com/podflow/podflow/operators"
)

func TestReadPodTemplateNeverQuotesOtherFiles(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"key":    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----\n",
		"passwd": "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n",
		"secret": "apiVersion: v1\nkind: Secret\ndata: {password: aHVudGVyMg==}\n",
		"config": "token: hunter2\nusers: [{name: admin, password: hunter2}]\n",
	}
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := ReadPodTemplate(path)
		if err == nil {
			t.Errorf("%s: read as a pod template", name)
			continue
		}
		for _, secret := range []string{"b3Bl", "root:x", "aHVudGVy", "hunter2", "daemon", "BEGIN"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: the error quotes the file: %v", name, err)
			}
		}
	}
	pod := filepath.Join(dir, "pod.yaml")
	if err := os.WriteFile(pod, []byte("apiVersion: v1\nkind: Pod\nspec:\n  contaners: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPodTemplate(pod); err == nil || !strings.Contains(err.Error(), "contaners") {
		t.Errorf("a Pod manifest's own mistake is not named: %v", err)
	}
}

func TestFileRootsConfineTemplateAndKubeconfig(t *testing.T) {
	root := t.TempDir()
	dags := filepath.Join(root, "dags")
	shared := filepath.Join(root, "shared")
	outside := filepath.Join(root, "outside")
	for _, d := range []string{filepath.Join(dags, "team"), shared, outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	manifest := []byte("apiVersion: v1\nkind: Pod\nspec:\n  containers: [{name: base, image: alpine}]\n")
	for _, p := range []string{filepath.Join(dags, "pod.yaml"), filepath.Join(shared, "pod.yaml"), filepath.Join(outside, "pod.yaml")} {
		if err := os.WriteFile(p, manifest, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A link inside the DAGs folder that points outside it.
	if err := os.Symlink(filepath.Join(outside, "pod.yaml"), filepath.Join(dags, "link.yaml")); err != nil {
		t.Fatal(err)
	}
	op := New(WithFileRoots(dags, shared))
	tests := []struct {
		option, value string
		ok            bool
	}{
		{"pod_template_file", "../pod.yaml", true},             // relative to dags/team/dag.yaml
		{"pod_template_file", shared + "/pod.yaml", true},      // allowed_paths
		{"pod_template_file", "../../outside/pod.yaml", false}, // climbs out
		{"pod_template_file", outside + "/pod.yaml", false},
		{"pod_template_file", "../link.yaml", false}, // a link out
		{"pod_template_file", "/etc/passwd", false},
		{"config_file", "/root/.kube/config", false},
		{"config_file", shared + "/kubeconfig", true},
	}
	for _, tt := range tests {
		task := parseTask(t, "t", "image: alpine\n"+tt.option+": "+tt.value+"\n")
		tc := &operators.TaskContext{DAG: &dag.DAG{ID: "d", Path: filepath.Join(dags, "team", "dag.yaml")}, Task: task, Log: flowtest.NewLog()}
		opts, err := op.options(context.Background(), tc)
		if err != nil {
			t.Fatal(err)
		}
		err = op.checkFiles(tc, opts)
		if tt.ok != (err == nil) {
			t.Errorf("%s: %s: err = %v, want ok=%v", tt.option, tt.value, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "outside the DAGs folder and allowed_paths") {
			t.Errorf("%s: %s: unclear error %v", tt.option, tt.value, err)
		}
	}
	if err := New().checkFiles(&operators.TaskContext{Task: &dag.Task{ID: "t"}}, &PodOptions{ConfigFile: "/etc/passwd"}); err != nil {
		t.Errorf("an operator without roots confined a file: %v", err)
	}
}

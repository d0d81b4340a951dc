// Package deploy_test checks podflow's packaging: the Dockerfile, the
// docker-compose stack and the Kubernetes manifests in deploy/kubernetes.
package deploy_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// repoRoot is the root of the podflow module (the folder above deploy/).
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			strings.Contains(string(b), "module github.com/podflow/podflow\n") {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("the podflow module root (go.mod) was not found above the test's folder")
		}
		dir = parent
	}
}

func readRepoFile(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), rel))
	if err != nil {
		t.Fatalf("read %s: %v", rel, err)
	}
	return b
}

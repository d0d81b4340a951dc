package main

import (
	"context"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/podflow/podflow/internal/flowtest"
	"github.com/podflow/podflow/operators/builtin"
)

// freeAddr is a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// podflow standalone serves the REST API, and a user without database
// access triggers and waits through it: podflow trigger --api with an API
// key in PODFLOW_API_TOKEN.
func TestStandaloneServesTheAPI(t *testing.T) {
	b := flowtest.New(t, builtin.Registry(builtin.Deps{}))
	b.DAG("hello", `dag_id: hello
tasks:
  - {task_id: say, operator: bash, bash_command: 'echo "{{ dag_run.conf.get(''fail'', ''no'') }}" | grep -q no'}
`)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	addr := freeAddr(t)
	startStandalone(t, "--database-url", b.URL, "--dags-folder", b.Dir, "--webserver-addr", addr)
	flowtest.Eventually(t, "the webserver answers /healthz", time.Minute, func() bool {
		res, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
	// The API triggers the DAGs the scheduler has synced (it reads no folder).
	flowtest.Eventually(t, "the scheduler syncs hello", time.Minute, func() bool {
		_, err := b.Store.Dag(ctx, "hello")
		return err == nil
	})
	db := []string{"--database-url", b.URL, "--dags-folder", b.Dir}
	cli := func(args ...string) (string, int) {
		out, err := runCLI(t, ctx, args...)
		if err != nil {
			out += err.Error()
		}
		return out, exitCode(err)
	}
	newKey := func(role, name string) string {
		out, code := cli(append([]string{"api-keys", "create", "--role", role, "--name", name}, db...)...)
		key := regexp.MustCompile(`pfk_\S+`).FindString(out)
		if code != 0 || key == "" {
			t.Fatalf("api-keys create: exit %d\n%s", code, out)
		}
		return key
	}
	api := "http://" + addr

	t.Setenv("PODFLOW_API_TOKEN", newKey("op", "ci"))
	// No --database-url: this user reaches podflow only through the API.
	out, code := cli("trigger", "hello", "--api", api, "--wait")
	if code != 0 || !regexp.MustCompile(`run \S+ success`).MatchString(out) {
		t.Fatalf("trigger --api --wait: exit %d\n%s", code, out)
	}
	if out, code = cli("trigger", "hello", "--api", api, "--wait", "--conf", `{"fail": "yes"}`); code != 1 {
		t.Errorf("trigger --api --wait of a failing run: exit %d, want 1\n%s", code, out)
	}
	if out, code = cli("trigger", "nope", "--api", api); code != 2 || !strings.Contains(out, "404") {
		t.Errorf("trigger --api of an unknown DAG: exit %d, want 2 and the 404\n%s", code, out)
	}
	t.Setenv("PODFLOW_API_TOKEN", newKey("viewer", "dashboard"))
	if out, code = cli("trigger", "hello", "--api", api); code != 2 || !strings.Contains(out, "403") {
		t.Errorf("trigger --api as a viewer: exit %d, want 2 and 403\n%s", code, out)
	}
	t.Setenv("PODFLOW_API_TOKEN", "")
	if out, code = cli("trigger", "hello", "--api", api); code != 2 || !strings.Contains(out, "401") || !strings.Contains(out, "PODFLOW_API_TOKEN") {
		t.Errorf("trigger --api without a token: exit %d, want 2, 401 and a hint\n%s", code, out)
	}

	// The audit log names the key that triggered, from the API.
	out, _ = cli(append([]string{"events", "list", "--event", "trigger"}, db...)...)
	if !strings.Contains(out, "api-key:ci") {
		t.Errorf("events list lacks the API trigger by api-key:ci:\n%s", out)
	}

	// auth: none is for loopback only.
	t.Setenv("PODFLOW_AUTH", "none")
	out, code = cli(append([]string{"webserver", "--addr", "0.0.0.0:0"}, db...)...)
	if code == 0 || !strings.Contains(out, "not a loopback address") {
		t.Errorf("webserver with auth none on 0.0.0.0: exit %d\n%s", code, out)
	}
}

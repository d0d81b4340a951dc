package api

import (
	"strings"
	"testing"
	"time"

	"github.com/podflow/podflow/internal/api/gen"
	"github.com/podflow/podflow/internal/auth"
	"github.com/podflow/podflow/internal/flowtest"
	"github.com/podflow/podflow/internal/scheduler"
	"github.com/podflow/podflow/internal/secrets"
)

// Variables and connections through the API: admin writes, op reads with
// secret values as ***, viewer cannot read them at all; logs and XComs that
// hold a secret (here stored by a scheduler that did not mask) are shown
// masked to everyone.
func TestVariablesAndConnectionsAPI(t *testing.T) {
	spec, err := secrets.GenerateKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := secrets.ParseKeyring(spec)
	if err != nil {
		t.Fatal(err)
	}
	var res *secrets.Resolver
	b := setupOptions(t, func(*flowtest.Bundle) auth.Authenticator { return tokenAuth{} }, func(fb *flowtest.Bundle, o *Options) {
		m := secrets.NewMasker(nil)
		res = &secrets.Resolver{Masker: m, Vault: &secrets.Vault{Store: fb.Store, Keys: keys, Masker: m}}
		o.Secrets = res
	})
	const token, password, apiKey = "tok-abcdef123456", "pw-secret-1", "k-7777777"
	noSecret := func(what string, body []byte) {
		t.Helper()
		for _, s := range []string{token, password, apiKey} {
			if strings.Contains(string(body), s) {
				t.Errorf("%s shows %q: %s", what, s, body)
			}
		}
	}

	var v gen.Variable
	r := b.must(200, "POST", "/variables", "admin", map[string]any{"key": "api_token", "value": token})
	r.json(t, &v)
	noSecret("POST /variables", r.Body)
	if !v.IsSecret || v.Value != secrets.Masked {
		t.Errorf("created %+v", v)
	}
	b.must(200, "POST", "/variables", "admin", map[string]any{"key": "bucket", "value": "public-b"})
	b.must(403, "POST", "/variables", "op", map[string]any{"key": "x", "value": "y"})
	b.must(403, "GET", "/variables", "viewer", nil)
	b.must(403, "GET", "/variables/bucket", "viewer", nil)
	var vars gen.VariableCollection
	r = b.must(200, "GET", "/variables", "op", nil)
	r.json(t, &vars)
	noSecret("GET /variables", r.Body)
	if vars.TotalEntries != 2 || vars.Variables[1].Key != "bucket" || vars.Variables[1].Value != "public-b" {
		t.Errorf("variables %+v", vars)
	}

	var c gen.Connection
	r = b.must(200, "POST", "/connections", "admin", map[string]any{"connection_id": "wh", "conn_type": "postgres", "host": "db",
		"port": 5432, "password": password, "extra": `{"api_key": "` + apiKey + `", "region": "eu"}`})
	r.json(t, &c)
	noSecret("POST /connections", r.Body)
	b.must(400, "POST", "/connections", "admin", map[string]any{"connection_id": "bad", "conn_type": "x", "extra": "not json"})
	b.must(403, "GET", "/connections/wh", "viewer", nil)
	r = b.must(200, "GET", "/connections/wh", "op", nil)
	r.json(t, &c)
	noSecret("GET /connections/wh", r.Body)
	if c.Password == nil || *c.Password != secrets.Masked || c.Extra == nil || !strings.Contains(*c.Extra, `"region":"eu"`) {
		t.Errorf("connection %+v", c)
	}
	r = b.must(200, "GET", "/connections", "op", nil)
	noSecret("GET /connections", r.Body)
	// Stored encrypted: the tasks' resolver reads them in clear.
	got, found, err := res.Connection(b.Ctx, "wh")
	if err != nil || !found || got.Password != password {
		t.Fatalf("resolver: %+v %v %v", got, found, err)
	}

	b.DAG("leak", "dag_id: leak\ntasks:\n  - {task_id: t, operator: bash, bash_command: \"echo 'x {{ var.value.api_token }}'\"}\n"+
		"  - {task_id: u, operator: bash, upstream: [t], bash_command: \"echo 'y {{ ti.xcom_pull(\\\"t\\\") }}'\"}\n")
	b.Scheduler(func(c *scheduler.Config) { c.Connections = res.ForTasks() }) // no Mask: the stored log holds the token
	b.WaitFor("leak is synced", 30*time.Second, func() bool { return b.call("GET", "/dags/leak", "viewer", nil).Status == 200 })
	var run gen.DAGRun
	b.must(200, "POST", "/dags/leak/dagRuns", "op", map[string]any{}).json(t, &run)
	if l := b.waitLines("leak", run.DagRunId, "interval=1"); l[len(l)-1].State != "success" {
		t.Fatalf("run %+v", l)
	}
	var stored int
	if err := b.Store.Pool.QueryRow(b.Ctx, `SELECT count(*) FROM task_logs WHERE line LIKE '%'||$1||'%'`, token).Scan(&stored); err != nil || stored == 0 {
		t.Fatalf("the unmasked line is not in the table (%d, %v): the test shows nothing", stored, err)
	}
	base := "/dags/leak/dagRuns/" + run.DagRunId + "/taskInstances/t"
	r = b.must(200, "GET", base+"/logs/1", "viewer", nil)
	noSecret("GET logs", r.Body)
	if !strings.Contains(string(r.Body), "x ***") {
		t.Errorf("log: %s", r.Body)
	}
	// The tail read (what the web UI's log page asks for) masks too.
	r = b.must(200, "GET", base+"/logs/1?tail=true&limit=50", "viewer", nil)
	noSecret("GET logs?tail=true", r.Body)
	if !strings.Contains(string(r.Body), "x ***") {
		t.Errorf("log tail: %s", r.Body)
	}
	r = b.must(200, "GET", base+"/xcomEntries/return_value", "viewer", nil)
	noSecret("GET xcom", r.Body)
	if !strings.Contains(string(r.Body), "***") {
		t.Errorf("xcom: %s", r.Body)
	}
	// u's command is rendered from t's stored (unmasked) XCom: the rendered
	// fields show it masked.
	r = b.must(200, "GET", "/dags/leak/dagRuns/"+run.DagRunId+"/taskInstances/u/rendered", "viewer", nil)
	noSecret("GET renderedFields", r.Body)
	if !strings.Contains(string(r.Body), "y x ***") {
		t.Errorf("rendered fields: %s", r.Body)
	}

	b.must(204, "DELETE", "/variables/api_token", "admin", nil)
	b.must(404, "DELETE", "/variables/api_token", "admin", nil)
	b.must(404, "GET", "/variables/api_token", "op", nil)
	b.must(403, "DELETE", "/connections/wh", "op", nil)
	b.must(204, "DELETE", "/connections/wh", "admin", nil)
}

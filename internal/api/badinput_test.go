package api

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// checksum digests every table the API reads or writes.
func (b *testBundle) checksum() string {
	b.T.Helper()
	var parts []string
	for _, table := range []string{"dags", "dag_files", "dag_versions", "dag_runs", "task_instances", "task_logs", "xcom", "pools", "event_log", "triggers"} {
		var sum string
		err := b.Store.Pool.QueryRow(b.Ctx, `SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM `+table+` t`).Scan(&sum)
		if err != nil {
			b.T.Fatal(err)
		}
		parts = append(parts, table+"="+sum)
	}
	return strings.Join(parts, " ")
}

var sqlish = []string{`x' OR 1=1--`, `%27;DROP TABLE dags;--`, `1; DELETE FROM dag_runs`, `"; SELECT pg_sleep(10); --`}

// TestBadInput: malformed, unknown, mistyped, oversized and unknown-object
// requests, and SQL-looking strings in every path and query parameter of
// every operation, each get a 4xx problem naming what is wrong; the
// database is unchanged and the server keeps answering.
func TestBadInput(t *testing.T) {
	b := setup(t)
	b.DAG("etl", etlDAG)
	runID := b.Trigger("etl", `{"who": "x"}`)
	run := "/dags/etl/dagRuns/" + url.PathEscape(runID)
	before := b.checksum()

	cases := []struct {
		name, method, path string
		body               any
		status             int
		detail             string // the detail names this
	}{
		{"malformed JSON", "POST", "/dags/etl/dagRuns", `{"conf": {`, 400, "not valid JSON"},
		{"not JSON at all", "PATCH", "/dags/etl", `is_paused=true`, 400, "request body"},
		{"unknown field", "POST", "/dags/etl/dagRuns", `{"confx": {}}`, 400, "confx"},
		{"unknown nested field", "POST", "/pools", `{"name": "p", "slots": 1, "colour": "red"}`, 400, "colour"},
		{"wrong type", "PATCH", "/dags/etl", `{"is_paused": "yes"}`, 400, "is_paused"},
		{"wrong type in a list", "POST", "/dags/etl/clearTaskInstances", `{"dag_run_id": "r", "task_ids": [1]}`, 400, "task_ids"},
		{"missing required field", "PATCH", run, `{}`, 400, "state"},
		{"bad enum", "PATCH", run, `{"state": "running"}`, 400, "state"},
		{"conf not an object", "POST", "/dags/etl/dagRuns", `{"conf": [1, 2]}`, 400, "conf"},
		{"conf a string", "POST", "/dags/etl/dagRuns", `{"conf": "{}"}`, 400, "conf"},
		{"run id with a slash", "POST", "/dags/etl/dagRuns", `{"dag_run_id": "a/b"}`, 400, "dag_run_id"},
		{"bad date", "POST", "/dags/etl/dagRuns", `{"logical_date": "yesterday"}`, 400, "logical_date"},
		{"oversized body", "POST", "/dags/etl/dagRuns", `{"conf": {"x": "` + strings.Repeat("a", MaxBodyBytes) + `"}}`, 413, "limit"},
		{"limit not a number", "GET", "/dags?limit=abc", nil, 400, "limit"},
		{"limit zero", "GET", "/dags?limit=0", nil, 400, "limit"},
		{"offset negative", "GET", "/dags/~/dagRuns?offset=-1", nil, 400, "offset"},
		{"unknown order_by", "GET", "/dags/~/dagRuns?order_by=-nope", nil, 400, "order_by"},
		{"bad state filter", "GET", "/dags/etl/dagRuns?state=sleeping", nil, 400, "state"},
		{"bad date filter", "GET", "/dags/etl/dagRuns?logical_date_gte=monday", nil, 400, "logical_date_gte"},
		{"unknown DAG", "GET", "/dags/nope", nil, 404, "nope"},
		{"trigger unknown DAG", "POST", "/dags/nope/dagRuns", `{}`, 404, "nope"},
		{"runs of unknown DAG", "GET", "/dags/nope/dagRuns", nil, 404, "nope"},
		{"unknown run", "GET", "/dags/etl/dagRuns/nope", nil, 404, "nope"},
		{"mark unknown run", "PATCH", "/dags/etl/dagRuns/nope", `{"state": "failed"}`, 404, "nope"},
		{"delete unknown run", "DELETE", "/dags/etl/dagRuns/nope", nil, 404, "nope"},
		{"unknown task", "GET", run + "/taskInstances/nope", nil, 404, "nope"},
		{"clear unknown task", "POST", "/dags/etl/clearTaskInstances", `{"dag_run_id": "` + runID + `", "task_ids": ["nope"], "dry_run": false}`, 404, "nope"},
		{"unknown pool", "PATCH", "/pools/nope", `{"slots": 3}`, 404, "nope"},
		{"delete default_pool", "DELETE", "/pools/default_pool", nil, 400, "default_pool"},
		{"existing pool", "POST", "/pools", `{"name": "default_pool", "slots": 3}`, 409, "default_pool"},
		{"unknown operation", "GET", "/nothing/here", nil, 404, "/nothing/here"},
		{"bad login", "POST", "/auth/token", `{"username": "admin", "password": "wrong"}`, 401, "password"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := b.call(c.method, c.path, "admin", c.body)
			var p problem
			r.json(t, &p)
			if r.Status != c.status || r.Header.Get("Content-Type") != "application/problem+json" || p.Status != c.status ||
				p.Type == "" || p.Title == "" || !strings.Contains(p.Detail, c.detail) {
				t.Errorf("%s %s: %d %s %+v, want %d naming %q", c.method, c.path, r.Status, r.Header.Get("Content-Type"), p, c.status, c.detail)
			}
		})
	}

	// SQL-looking strings in every path and query parameter of every
	// operation, the other path parameters naming things that exist.
	valid := map[string]string{"dag_id": "etl", "dag_run_id": runID, "task_id": "extract", "try_number": "1",
		"xcom_key": "return_value", "pool_name": "default_pool"}
	n := 0
	for _, path := range b.doc.Paths.InMatchingOrder() {
		item := b.doc.Paths.Value(path)
		for method, op := range item.Operations() {
			var params openapi3.Parameters
			params = append(append(params, item.Parameters...), op.Parameters...)
			for _, target := range params {
				for _, bad := range sqlish {
					p := path
					query := ""
					for _, prm := range params {
						if prm.Value.In != openapi3.ParameterInPath {
							continue
						}
						v := valid[prm.Value.Name]
						if prm.Value == target.Value {
							v = bad
						}
						p = strings.Replace(p, "{"+prm.Value.Name+"}", url.PathEscape(v), 1)
					}
					if target.Value.In == openapi3.ParameterInQuery {
						query = "?" + url.Values{target.Value.Name: {bad}}.Encode()
					}
					var body any
					if op.RequestBody != nil {
						body = `{}`
					}
					r := b.call(method, p+query, "admin", body)
					n++
					if r.Status < 400 || r.Status >= 500 || r.Header.Get("Content-Type") != "application/problem+json" {
						t.Errorf("%s %s (%s = %q): %d %s", method, p+query, target.Value.Name, bad, r.Status, r.Body)
					}
				}
			}
		}
	}
	t.Logf("%d requests with SQL-looking parameters", n)

	if after := b.checksum(); after != before {
		t.Errorf("the database changed:\nbefore %s\nafter  %s", before, after)
	}
	b.must(http.StatusOK, "GET", "/version", "", nil)
	if res, err := http.Get(b.srv.URL + "/healthz"); err != nil || res.StatusCode != http.StatusOK {
		t.Errorf("/healthz: %v %v", res, err)
	}
	b.must(http.StatusOK, "GET", "/dags/etl", "viewer", nil)
}

package web_test

import (
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/podflow/podflow/internal/auth"
	"github.com/podflow/podflow/internal/config"
	"github.com/podflow/podflow/internal/flowtest"
	"github.com/podflow/podflow/internal/webserver"
	"github.com/podflow/podflow/operators"
	"github.com/podflow/podflow/operators/bash"
)

// TestAssetsPage: the Assets page shows which DAG produces and which
// consumes an asset, and an asset's events (plain HTTP, no browser).
func TestAssetsPage(t *testing.T) {
	t.Parallel()
	b := flowtest.New(t, operators.NewRegistry(bash.New()))
	b.DAG("producer", "dag_id: producer\ntasks:\n  - {task_id: load, operator: bash, bash_command: echo hi, outlets: [{uri: 's3://b/orders', extra: {rows: '7'}}]}\n")
	b.DAG("consumer", "dag_id: consumer\nschedule: {assets: ['s3://b/orders']}\ntasks:\n  - {task_id: r, operator: bash, bash_command: echo r}\n")
	b.Scheduler(nil)
	base, c := viewerSession(t, b)
	get := func(path string) string {
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d\n%s", path, resp.StatusCode, body)
		}
		return string(body)
	}
	b.WaitFor("both DAGs synced", 30*time.Second, func() bool {
		p := get("/assets")
		return strings.Contains(p, `href="/dags/producer">producer</a>.load`) && strings.Contains(p, `href="/dags/consumer">consumer</a>`)
	})
	runID := b.Trigger("producer", "")
	if got := b.WaitRun("producer", runID, time.Minute); got != "success" {
		t.Fatalf("producer run %s", got)
	}
	page := get("/assets?uri=" + url.QueryEscape("s3://b/orders"))
	for _, want := range []string{"Events of <code>s3://b/orders</code>", runID, "rows", `aria-current="page">Assets</a>`} {
		if !strings.Contains(page, want) {
			t.Errorf("assets page lacks %q:\n%s", want, page)
		}
	}
}

// viewerSession serves the webserver (webserver.New, built-in auth) on
// the bundle's database and returns its URL and an HTTP client logged in as
// a viewer.
func viewerSession(t *testing.T, b *flowtest.Bundle) (string, *http.Client) {
	t.Helper()
	hash, err := auth.HashPassword("vic-password")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Store.CreateUser(b.Ctx, "vic", hash, "viewer"); err != nil {
		t.Fatal(err)
	}
	addr := make(chan net.Addr, 1)
	serve, err := webserver.New(b.Ctx, b.Store, &config.Config{DatabaseURL: b.URL, DagsFolder: b.Dir, Auth: auth.ModeBuiltin},
		"127.0.0.1:0", prometheus.NewRegistry(), flowtest.Logger(), func(a net.Addr) { addr <- a })
	if err != nil {
		t.Fatal(err)
	}
	b.Go("webserver", serve)
	base := "http://" + (<-addr).String()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.PostForm(base+"/login", url.Values{"username": {"vic"}, "password": {"vic-password"}, "next": {"/"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return base, c
}

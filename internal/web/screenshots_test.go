//go:build screenshots

package web_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// screenshotDir is where `make screenshots` writes the PNGs.
var screenshotDir = flag.String("screenshots", "../../docs/screenshots", "folder for the screenshots")

// extraDir, when set, also gets the other pages (run, task, source, audit,
// pools, login, dark theme) to look at.
var extraDir = flag.String("screenshots-extra", "", "folder for screenshots of the other pages")

// TestScreenshots (build tag screenshots; `make screenshots`) runs the
// examples' DAGs that need no cluster, then photographs the DAG list, grid,
// graph, a task log and the trigger form in the same headless Chromium the
// browser tests use.
func TestScreenshots(t *testing.T) {
	b := setup(t)
	for _, name := range []string{"etl_xcom", "params_and_trigger_rules", "nightly_berlin"} {
		src, err := os.ReadFile(filepath.Join("../../examples/dags", name+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		b.DAG(name, string(src))
	}
	b.WaitFor("the examples parsed", 30*time.Second, func() bool {
		_, err := b.Store.Dag(b.Ctx, "params_and_trigger_rules")
		return err == nil
	})
	if err := b.Store.SetPaused(b.Ctx, "nightly_berlin", true); err != nil {
		t.Fatal(err)
	}
	var last string
	for i, conf := range []string{`{"name": "Ada"}`, `{"should_fail": "no"}`, `{"name": "Grace"}`, `{"should_fail": "no", "name": "Linus"}`, ``} {
		last = b.Trigger("params_and_trigger_rules", conf)
		b.WaitRun("params_and_trigger_rules", last, time.Minute)
		if i < 3 {
			b.WaitRun("etl_xcom", b.Trigger("etl_xcom", ""), time.Minute)
			b.WaitRun("greet", b.Trigger("greet", fmt.Sprintf(`{"name": "run %d"}`, i)), time.Minute)
		}
	}
	// One failed run, as an operator marking it would leave it, for colour.
	if marked, err := b.Store.MarkRun(b.Ctx, b.Run("greet", b.Trigger("greet", "")).PK, "failed"); err != nil || !marked {
		t.Fatalf("mark a greet run failed: %v", err)
	}
	b.WaitRun("nightly_berlin", b.Trigger("nightly_berlin", ""), time.Minute)
	etl := b.Trigger("etl_xcom", "")
	b.WaitRun("etl_xcom", etl, time.Minute)

	ctx := b.browser()
	b.login(ctx, "ada")
	if err := os.MkdirAll(*screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	shots := []struct{ name, path, ready string }{
		{"dags", "/", "#live table"},
		{"grid", "/dags/params_and_trigger_rules", "#grid"},
		{"graph", "/dags/params_and_trigger_rules/graph", "svg.graph"},
		{"log", "/dags/etl_xcom/runs/" + etl + "/tasks/extract/logs/1?line=2#L2", "#log"},
		{"trigger", "/dags/params_and_trigger_rules/trigger", "#trigger"},
	}
	if *extraDir != "" {
		greetRun := b.Run("greet", b.Trigger("greet", `{"name": "extra"}`)).RunID
		b.WaitRun("greet", greetRun, time.Minute)
		shots = append(shots,
			struct{ name, path, ready string }{*extraDir + "/run", "/dags/greet/runs/" + greetRun, "#run-state"},
			struct{ name, path, ready string }{*extraDir + "/task", "/dags/etl_xcom/runs/" + etl + "/tasks/transform", "#task-state"},
			struct{ name, path, ready string }{*extraDir + "/source", "/dags/etl_xcom/source", "#src"},
			struct{ name, path, ready string }{*extraDir + "/audit", "/audit", "table"},
			struct{ name, path, ready string }{*extraDir + "/pools", "/pools", "table"},
		)
	}
	if *extraDir != "" {
		defer func() { // the grid again, in the dark theme
			var png []byte
			b.run(ctx, "dark grid",
				emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}),
				chromedp.Navigate(b.base+"/dags/params_and_trigger_rules/graph"),
				chromedp.WaitVisible("svg.graph"),
				chromedp.CaptureScreenshot(&png))
			if err := os.WriteFile(filepath.Join(*extraDir, "dark-graph.png"), png, 0o644); err != nil {
				t.Error(err)
			}
		}()
	}
	for _, s := range shots {
		var png []byte
		b.run(ctx, "screenshot "+s.name,
			chromedp.Navigate(b.base+s.path),
			chromedp.WaitVisible(s.ready),
			chromedp.CaptureScreenshot(&png),
		)
		out := filepath.Join(*screenshotDir, s.name+".png")
		if filepath.IsAbs(s.name) {
			out = s.name + ".png"
		}
		if err := os.WriteFile(out, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", out, len(png))
	}
}

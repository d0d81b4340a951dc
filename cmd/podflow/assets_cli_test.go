package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/podflow/podflow/internal/flowtest"
	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/operators/builtin"
)

// podflow assets list / events show what the DAGs produce and consume and
// the events a producer's success recorded; validate warns about an asset
// nothing produces.
func TestAssetsCLI(t *testing.T) {
	b := flowtest.New(t, builtin.Registry(builtin.Deps{}))
	b.DAG("producer", "dag_id: producer\ntasks:\n  - {task_id: load, operator: bash, bash_command: echo hi, outlets: [{uri: 's3://b/orders', extra: {rows: '7'}}]}\n")
	b.DAG("consumer", "dag_id: consumer\nschedule: {assets: ['s3://b/orders']}\ntasks:\n  - {task_id: r, operator: bash, bash_command: echo r}\n")
	b.DAG("orphan", "dag_id: orphan\nschedule: {assets: {any: ['s3://nobody/makes']}}\ntasks:\n  - {task_id: r, operator: bash, bash_command: echo r}\n")
	b.Scheduler(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := []string{"--database-url", b.URL, "--dags-folder", b.Dir}
	b.WaitFor("DAGs synced", 30*time.Second, func() bool {
		out, err := runCLI(t, ctx, append([]string{"assets", "list"}, db...)...)
		return err == nil && strings.Contains(out, "producer.load") && strings.Contains(out, "consumer")
	})
	runID := b.Trigger("producer", "")
	if got := b.WaitRun("producer", runID, time.Minute); got != runstate.RunSuccess {
		t.Fatalf("producer run %s", got)
	}
	out, err := runCLI(t, ctx, append([]string{"assets", "list"}, db...)...)
	if err != nil || !strings.Contains(out, "s3://b/orders") || !strings.Contains(out, "s3://nobody/makes") {
		t.Fatalf("assets list: %v\n%s", err, out)
	}
	out, err = runCLI(t, ctx, append([]string{"assets", "events", "s3://b/orders"}, db...)...)
	if err != nil || !strings.Contains(out, runID) || !strings.Contains(out, `"rows": "7"`) {
		t.Fatalf("assets events: %v\n%s", err, out)
	}
	out, err = runCLI(t, ctx, "validate", b.Dir)
	if exitCode(err) != 0 || !strings.Contains(out, "warning:") || !strings.Contains(out, "s3://nobody/makes") ||
		strings.Contains(out, "asset s3://b/orders") {
		t.Errorf("validate: exit %d, want 0 with one warning about s3://nobody/makes:\n%s", exitCode(err), out)
	}
}

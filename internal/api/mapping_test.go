package api

import (
	"testing"
	"time"

	"github.com/podflow/podflow/internal/api/gen"
	"github.com/podflow/podflow/internal/runstate"
)

// Mapped instances through the API: each is addressed by map_index, shows
// its map_index_template name, and one of them is cleared alone.
func TestMappedInstancesThroughTheAPI(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.DAG("fan", `
dag_id: fan
tasks:
  - task_id: each
    operator: bash
    bash_command: echo item
    expand: {cwd: [/, /tmp, /var]}
    map_index_template: "dir {{ task.cwd }}"
`)
	b.Scheduler(nil)
	runID := b.Trigger("fan", "")
	if got := b.WaitRun("fan", runID, time.Minute); got != runstate.RunSuccess {
		t.Fatalf("run %s", got)
	}
	var ti gen.TaskInstance
	b.must(200, "GET", "/dags/fan/dagRuns/"+runID+"/taskInstances/each?map_index=1", "viewer", nil).json(t, &ti)
	if ti.MapIndex != 1 || ti.RenderedMapIndex == nil || *ti.RenderedMapIndex != "dir /tmp" {
		t.Fatalf("instance 1: %+v", ti)
	}
	b.must(404, "GET", "/dags/fan/dagRuns/"+runID+"/taskInstances/each?map_index=3", "viewer", nil)
	b.must(200, "POST", "/dags/fan/clearTaskInstances", "op",
		map[string]any{"dag_run_id": runID, "task_ids": []string{"each"}, "map_index": 1, "dry_run": false})
	b.WaitFor("instance 1 rerun", time.Minute, func() bool {
		var got gen.TaskInstance
		b.must(200, "GET", "/dags/fan/dagRuns/"+runID+"/taskInstances/each?map_index=1", "viewer", nil).json(t, &got)
		return got.TryNumber == 2 && got.State == "success"
	})
	var other gen.TaskInstance
	b.must(200, "GET", "/dags/fan/dagRuns/"+runID+"/taskInstances/each?map_index=0", "viewer", nil).json(t, &other)
	if other.TryNumber != 1 {
		t.Errorf("instance 0 ran again: try %d", other.TryNumber)
	}
	b.must(400, "POST", "/dags/fan/clearTaskInstances", "op",
		map[string]any{"dag_run_id": runID, "task_ids": []string{"each", "each"}, "map_index": 1, "dry_run": false})
}

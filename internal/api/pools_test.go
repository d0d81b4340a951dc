package api

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/podflow/podflow/internal/api/gen"
	"github.com/podflow/podflow/internal/scheduler"
	"github.com/podflow/podflow/internal/store"
)

// TestPoolsFromTheAPI: a pool created through the API limits the tasks that
// name it (the scheduler reads pool slots from the table); podflow.yaml's
// pools are saved at scheduler start; pools CRUD answers as the spec says.
func TestPoolsFromTheAPI(t *testing.T) {
	b := setup(t)
	var p gen.Pool
	b.must(200, "POST", "/pools", "admin", map[string]any{"name": "single", "slots": 1, "description": "one at a time"}).json(t, &p)
	if p.Slots != 1 || p.OpenSlots != 1 || p.Description == nil {
		t.Fatalf("created pool %+v", p)
	}
	// Each task holds a directory while it runs: two at once would fail one.
	lock := filepath.Join(t.TempDir(), "lock")
	src := "dag_id: pooled\ntasks:\n"
	for _, id := range []string{"a", "b", "c", "d"} {
		src += "  - {task_id: " + id + ", operator: bash, pool: single, bash_command: 'mkdir " + lock + " && sleep 0.2 && rmdir " + lock + "'}\n"
	}
	b.DAG("pooled", src)
	b.Scheduler(func(c *scheduler.Config) {
		c.Limits = store.Limits{Pools: map[string]int{"from_config": 7}, DefaultSlot: 128}
	})
	b.WaitFor("pooled is synced", 30*time.Second, func() bool { return b.call("GET", "/dags/pooled", "viewer", nil).Status == 200 })
	var run gen.DAGRun
	b.must(200, "POST", "/dags/pooled/dagRuns", "op", map[string]any{}).json(t, &run)
	if l := b.waitLines("pooled", run.DagRunId, "interval=1"); l[len(l)-1].State != "success" {
		t.Fatalf("pooled run %+v: %v", l, b.States("pooled", run.DagRunId))
	}

	var pools gen.PoolCollection
	b.must(200, "GET", "/pools", "viewer", nil).json(t, &pools)
	names := map[string]int{}
	for _, p := range pools.Pools {
		names[p.Name] = p.Slots
	}
	if pools.TotalEntries != 3 || names["default_pool"] != 128 || names["single"] != 1 || names["from_config"] != 7 {
		t.Errorf("pools %+v", pools)
	}
	b.must(200, "PATCH", "/pools/single", "admin", map[string]any{"slots": 4}).json(t, &p)
	if p.Slots != 4 || p.Description == nil || *p.Description != "one at a time" {
		t.Errorf("patched pool %+v", p)
	}
	b.must(204, "DELETE", "/pools/single", "admin", nil)
	b.must(404, "GET", "/pools/single", "viewer", nil)
	var evs gen.EventLogCollection
	b.must(200, "GET", "/eventLogs?owner=admin-user", "viewer", nil).json(t, &evs)
	if evs.TotalEntries != 3 || evs.EventLogs[0].Event != "pool_delete" || evs.EventLogs[2].Event != "pool_create" {
		t.Errorf("event log %+v", evs)
	}
}

package store_test

import (
	"errors"
	"testing"

	"github.com/podflow/podflow/internal/store"
)

// TestMarkRun: by hand, failed fails the running and deferred task
// instances and skips those waiting; success makes every unfinished one
// success; finished ones keep their state; marking twice changes nothing.
func TestMarkRun(t *testing.T) {
	b := setup(t)
	tasks := []string{"done", "broke", "running", "deferred", "waiting", "queued"}
	for _, c := range []struct {
		state string
		want  map[string]string
	}{
		{"failed", map[string]string{"done": "success", "broke": "failed", "running": "failed", "deferred": "failed", "waiting": "skipped", "queued": "skipped"}},
		{"success", map[string]string{"done": "success", "broke": "failed", "running": "success", "deferred": "success", "waiting": "success", "queued": "success"}},
	} {
		r := b.runningRun("mark_"+c.state, tasks, "queued")
		b.force(r, "done", "success")
		b.force(r, "broke", "failed")
		b.force(r, "running", "running")
		b.force(r, "deferred", "deferred")
		changed, err := b.st.MarkRun(b.ctx, r.PK, c.state)
		if err != nil || !changed {
			t.Fatalf("mark %s: %v %v", c.state, changed, err)
		}
		if got := b.run(r.DagID, r.RunID); got.State != c.state || got.EndedAt == nil {
			t.Errorf("run marked %s: %s, ended %v", c.state, got.State, got.EndedAt)
		}
		got := b.states(r)
		for id, want := range c.want {
			if got[id] != want {
				t.Errorf("mark %s: %s is %s, want %s", c.state, id, got[id], want)
			}
		}
		if changed, err := b.st.MarkRun(b.ctx, r.PK, c.state); err != nil || changed {
			t.Errorf("marking again: changed %v, %v", changed, err)
		}
	}
	if _, err := b.st.MarkRun(b.ctx, 1, "running"); !errors.Is(err, store.ErrBadInput) {
		t.Errorf("mark running: %v", err)
	}
}

// TestListRunsOrderBy: order_by takes only the allowed fields; anything
// else is refused by name before any SQL is built.
func TestListRunsOrderBy(t *testing.T) {
	b := setup(t)
	b.dag("d", "h")
	b.queuedRun("d", "h", "r1")
	for _, c := range []struct {
		order string
		ok    bool
	}{{"", true}, {"logical_date", true}, {"-start_date", true}, {"dag_run_id", true},
		{"nope", false}, {"logical_date; DROP TABLE dags", false}, {"--logical_date", false}, {"id DESC", false}} {
		runs, total, err := b.st.ListRuns(b.ctx, store.RunFilter{OrderBy: c.order, Limit: 10})
		if c.ok && (err != nil || total != 1 || len(runs) != 1) {
			t.Errorf("order_by %q: %d runs of %d, %v", c.order, len(runs), total, err)
		}
		if !c.ok && !errors.Is(err, store.ErrBadInput) {
			t.Errorf("order_by %q: %v, want a bad-input error", c.order, err)
		}
	}
}

// TestPools: default_pool exists and stays; config pools upsert; CRUD.
func TestPools(t *testing.T) {
	b := setup(t)
	if err := b.st.UpsertPools(b.ctx, map[string]int{"default_pool": 64, "etl": 2}); err != nil {
		t.Fatal(err)
	}
	if err := b.st.CreatePool(b.ctx, "etl", 3, ""); !errors.Is(err, store.ErrExists) {
		t.Errorf("create existing: %v", err)
	}
	five := 5
	if err := b.st.UpdatePool(b.ctx, "etl", &five, nil); err != nil {
		t.Fatal(err)
	}
	slots, err := b.st.PoolSlots(b.ctx)
	if err != nil || slots["default_pool"] != 64 || slots["etl"] != 5 || len(slots) != 2 {
		t.Errorf("slots %v %v", slots, err)
	}
	if err := b.st.DeletePool(b.ctx, "default_pool"); err == nil {
		t.Error("default_pool deleted")
	}
	if err := b.st.DeletePool(b.ctx, "etl"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.st.PoolByName(b.ctx, "etl"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted pool: %v", err)
	}
}

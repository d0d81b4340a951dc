package scheduler

import (
	"context"
	"fmt"
	"testing"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/operators"
	"github.com/podflow/podflow/operators/bash"
	"github.com/podflow/podflow/operators/empty"
)

// The cache holds parsed only what runs use: a prune demotes the other
// current versions to their source once unused for a whole interval, parses them again from it (no
// database: the zero store.Q would fail) when asked, warms many at once,
// and forgets versions that are neither current nor used.
func TestDagCacheKeepsParsedOnlyWhatRunsUse(t *testing.T) {
	t.Parallel()
	p := dag.NewParser(operators.NewRegistry(bash.New(), empty.New()).Schemas())
	c := newDagCache(p)
	var hashes []string
	for i := 0; i < 4; i++ {
		src := fmt.Sprintf("dag_id: d%d\ntasks:\n  - {task_id: a, operator: bash, bash_command: 'echo %d'}\n  - {task_id: b, operator: empty, upstream: [a]}\n", i, i)
		d, errs := p.ParseBytes(fmt.Sprintf("d%d.yaml", i), []byte(src))
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		c.put(d)
		hashes = append(hashes, d.Hash)
	}
	if hot, cold := c.sizes(); hot != 4 || cold != 4 {
		t.Fatalf("after put: %d parsed, %d source, want 4 and 4", hot, cold)
	}

	// d0's version is used by a run; d0–d2 are current; d3's is neither.
	current := map[string]bool{hashes[0]: true, hashes[1]: true, hashes[2]: true}
	running := map[string]bool{hashes[0]: true}
	if n := c.prune(current, running); n != 0 {
		t.Errorf("the first prune dropped %d parsed versions just put, want 0", n)
	}
	if n := c.prune(current, running); n != 3 {
		t.Errorf("the second prune dropped %d parsed versions, want 3", n)
	}
	if hot, cold := c.sizes(); hot != 1 || cold != 3 {
		t.Fatalf("after prune: %d parsed, %d source, want 1 and 3", hot, cold)
	}

	ctx := context.Background()
	d1, err := c.get(ctx, store.Q{}, hashes[1])
	if err != nil || d1.ID != "d1" || d1.Hash != hashes[1] || len(d1.Tasks) != 2 || d1.Task("a").Options["bash_command"] != "echo 1" {
		t.Fatalf("get d1 from its source: %+v, %v", d1, err)
	}
	if again, _ := c.get(ctx, store.Q{}, hashes[1]); again != d1 {
		t.Error("a version parsed from its source is not held parsed")
	}
	c.warm(hashes)
	if hot, _ := c.sizes(); hot != 3 {
		t.Errorf("after warm: %d parsed, want 3 (d3's source is gone)", hot)
	}
	if d2, err := c.get(ctx, store.Q{}, hashes[2]); err != nil || d2.ID != "d2" {
		t.Errorf("warmed d2: %+v, %v", d2, err)
	}

	// A version asked for since the last prune survives it.
	c.prune(current, running)
	c.get(ctx, store.Q{}, hashes[2])
	c.prune(current, running)
	if hot, _ := c.sizes(); hot != 2 {
		t.Errorf("d0 (running) and d2 (just used) should stay parsed: %d parsed", hot)
	}

	// Nothing runs and d1 alone stays current.
	c.prune(map[string]bool{hashes[1]: true}, nil)
	c.prune(map[string]bool{hashes[1]: true}, nil)
	if hot, cold := c.sizes(); hot != 0 || cold != 1 {
		t.Errorf("after the runs: %d parsed, %d source, want 0 and 1", hot, cold)
	}
}

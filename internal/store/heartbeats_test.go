package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/podflow/podflow/internal/runstate"
)

// A running task instance whose owner has no fresh heartbeat is a zombie;
// its owner learns it no longer runs it once someone else finished it.
func TestHeartbeatsZombiesAndStats(t *testing.T) {
	b := setup(t)
	r := b.runningRun("r", []string{"a", "b", "c"}, "a", "b")
	if err := b.st.Heartbeat(b.ctx, "alive", "scheduler", "host", 1); err != nil {
		t.Fatal(err)
	}
	if age, ok, err := b.st.HeartbeatAge(b.ctx, "alive"); err != nil || !ok || age > time.Minute {
		t.Fatalf("HeartbeatAge = %s, %v, %v", age, ok, err)
	}
	a := b.claim("alive", 1)[0]
	d := b.claim("dead", 1)[0] // "dead" never heartbeats
	zs, err := b.st.Zombies(b.ctx, time.Minute)
	if err != nil || len(zs) != 1 || zs[0].ID != d.ID || zs[0].Owner != "dead" || zs[0].RunPK != r.PK {
		t.Fatalf("Zombies = %+v, %v; want only %s's task", zs, err, d.TaskID)
	}
	counts, err := b.st.TaskStateCounts(b.ctx)
	if err != nil || fmt.Sprint(counts) != fmt.Sprint(map[string]int{runstate.Running: 2, runstate.None: 1}) {
		t.Errorf("TaskStateCounts = %v, %v", counts, err)
	}

	if gone, err := b.st.NotRunningAnyMore(b.ctx, "alive", []int64{a.ID, d.ID}); err != nil || fmt.Sprint(gone) != fmt.Sprint([]int64{d.ID}) {
		t.Errorf("NotRunningAnyMore(alive) = %v, %v; want the task it does not own", gone, err)
	}
	if err := b.st.RemoveHeartbeat(b.ctx, "alive"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := b.st.HeartbeatAge(b.ctx, "alive"); ok {
		t.Error("heartbeat still there after RemoveHeartbeat")
	}
	if zs, err := b.st.Zombies(b.ctx, time.Minute); err != nil || len(zs) != 2 {
		t.Errorf("Zombies after the owner left = %+v, %v; want both", zs, err)
	}
}

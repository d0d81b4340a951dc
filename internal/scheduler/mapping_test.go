package scheduler_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/scheduler"
	"github.com/podflow/podflow/internal/store"
)

// Given a task that lists 20 items, when a mapped bash task maps over them
// with max_active_tis_per_dagrun 4, then 20 instances run, never more than
// 4 at once (by their own start and end times), and a collector receives
// the 20 values in map_index order.
func TestMappingOverXCom(t *testing.T) {
	t.Parallel()
	b := setupDynamic(t)
	b.DAG("fanout", `
dag_id: fanout
tasks:
  - task_id: list_items
    operator: bash
    bash_command: |
      s=""; for i in $(seq 0 19); do s="$s${s:+,}{\"ITEM\": \"item-$i\"}"; done; echo "[$s]"
  - task_id: process
    operator: bash
    upstream: [list_items]
    max_active_tis_per_dagrun: 4
    bash_command: "sleep 0.3; echo done-$ITEM-{{ ti.map_index }}"
    append_env: true
    expand:
      env: "{{ ti.xcom_pull('list_items') }}"
  - task_id: collect
    operator: bash
    upstream: [process]
    bash_command: "echo collected {{ ti.xcom_pull('process') | length }}: {{ ti.xcom_pull('process') | join(',') }}; echo third={{ ti.xcom_pull('process', map_indexes=2) }}"
`)
	b.Scheduler(nil)
	runID := b.Trigger("fanout", "")
	if got := b.WaitRun("fanout", runID, 2*time.Minute); got != runstate.RunSuccess {
		t.Fatalf("run %s: %v", got, b.States("fanout", runID))
	}
	var insts []store.TaskInstance
	for _, ti := range b.TIs("fanout", runID) {
		if ti.TaskID == "process" {
			insts = append(insts, ti)
		}
	}
	if len(insts) != 20 {
		t.Fatalf("%d instances of process, want 20", len(insts))
	}
	if peak := peakConcurrency(t, insts); peak > 4 || peak < 2 {
		t.Errorf("%d instances ran at once, want 2 to 4 (the limit)", peak)
	}
	want := make([]string, 20)
	for i := range want {
		want[i] = fmt.Sprintf("done-item-%d-%d", i, i)
	}
	log := b.Log("fanout", runID, "collect")
	if !strings.Contains(log, "collected 20: "+strings.Join(want, ",")) || !strings.Contains(log, "third=done-item-2-2") {
		t.Errorf("collect's log:\n%s", log)
	}
}

// peakConcurrency is how many of the instances ran at once at most, from
// their own start and end times.
func peakConcurrency(t *testing.T, insts []store.TaskInstance) int {
	t.Helper()
	type ev struct {
		at    time.Time
		delta int
	}
	var evs []ev
	for _, ti := range insts {
		if ti.StartedAt == nil || ti.EndedAt == nil {
			t.Fatalf("instance %d has no start or end", ti.MapIndex)
		}
		evs = append(evs, ev{*ti.StartedAt, 1}, ev{*ti.EndedAt, -1})
	}
	sort.Slice(evs, func(i, j int) bool {
		if !evs[i].at.Equal(evs[j].at) {
			return evs[i].at.Before(evs[j].at)
		}
		return evs[i].delta < evs[j].delta
	})
	cur, peak := 0, 0
	for _, e := range evs {
		cur += e.delta
		peak = max(peak, cur)
	}
	return peak
}

// An empty list skips the mapped task (its downstream follows its trigger
// rule); a list over max_map_length fails it with the length and the limit.
func TestMappingEmptyAndTooLong(t *testing.T) {
	t.Parallel()
	b := setupDynamic(t)
	b.DAG("edges", `
dag_id: edges
params: {n: 0}
tasks:
  - {task_id: list_items, operator: bash, bash_command: "if [ {{ params.n }} -eq 0 ]; then echo '[]'; else echo \"[$(seq -s, 1 {{ params.n }})]\"; fi"}
  - task_id: each
    operator: bash
    upstream: [list_items]
    expand: {bash_command: "{{ ti.xcom_pull('list_items') }}"}
  - {task_id: after, operator: empty, upstream: [each]}
  - {task_id: always, operator: empty, upstream: [each], trigger_rule: all_done}
`)
	b.Scheduler(nil)
	empty := b.Trigger("edges", `{"n": 0}`)
	if got := b.WaitRun("edges", empty, time.Minute); got != runstate.RunSuccess {
		t.Fatalf("empty: run %s: %v", got, b.States("edges", empty))
	}
	states := b.States("edges", empty)
	if states["each"] != "skipped" || states["after"] != "skipped" || states["always"] != "success" {
		t.Errorf("empty list: %v", states)
	}
	long := b.Trigger("edges", `{"n": 1025}`)
	if got := b.WaitRun("edges", long, time.Minute); got != runstate.RunFailed {
		t.Fatalf("1,025: run %s: %v", got, b.States("edges", long))
	}
	ti := b.TI("edges", long, "each")
	if ti.State != "failed" || !strings.Contains(ti.Error, "mapping over 1025 instances is more than max_map_length 1024") {
		t.Errorf("each: %s %q", ti.State, ti.Error)
	}
	if n := len(b.TIs("edges", long)); n != 4 {
		t.Errorf("%d task instances after a refused expansion, want 4 (nothing created)", n)
	}
	if s := b.States("edges", long)["after"]; s != "upstream_failed" {
		t.Errorf("after is %s", s)
	}
}

// Literal lists map as a cartesian product (first key slowest), options not
// expanded are shared, map_index_template names instances, and clearing one
// instance (--map-index) reruns only it.
func TestMappingLiteralProductAndClearOneInstance(t *testing.T) {
	t.Parallel()
	b := setupDynamic(t)
	b.DAG("prod", `
dag_id: prod
tasks:
  - task_id: each
    operator: bash
    bash_command: "echo $X-$Y"
    append_env: true
    expand:
      env: [{X: a, Y: "1"}, {X: b, Y: "2"}]
      cwd: [/, /tmp]
    map_index_template: "{{ task.env.X }} in {{ task.cwd }}"
  - task_id: kw
    operator: bash
    expand_kwargs:
      - {bash_command: "echo one"}
      - {bash_command: "echo two"}
  - {task_id: collect, operator: bash, upstream: [each, kw], bash_command: "echo {{ ti.xcom_pull('each') | join(' ') }} / {{ ti.xcom_pull('kw') | join(' ') }}"}
`)
	s := b.Scheduler(nil)
	_ = s
	runID := b.Trigger("prod", "")
	if got := b.WaitRun("prod", runID, time.Minute); got != runstate.RunSuccess {
		t.Fatalf("run %s: %v", got, b.States("prod", runID))
	}
	names := map[int]string{}
	for _, ti := range b.TIs("prod", runID) {
		if ti.TaskID == "each" {
			names[ti.MapIndex] = ti.RenderedMapIndex
		}
	}
	wantNames := map[int]string{0: "a in /", 1: "a in /tmp", 2: "b in /", 3: "b in /tmp"}
	for i, w := range wantNames {
		if names[i] != w {
			t.Errorf("instance %d named %q, want %q (all: %v)", i, names[i], w, names)
		}
	}
	if log := b.Log("prod", runID, "collect"); !strings.Contains(log, "a-1 a-1 b-2 b-2 / one two") {
		t.Errorf("collect's log:\n%s", log)
	}

	two := 2
	run := b.Run("prod", runID)
	if _, err := scheduler.ClearRunVersion(b.Ctx, b.Store, b.Parser, run, scheduler.ClearRequest{TaskIDs: []string{"each"}, MapIndex: &two, IncludeDownstream: true}); err != nil {
		t.Fatal(err)
	}
	if got := b.WaitRun("prod", runID, time.Minute); got != runstate.RunSuccess {
		t.Fatalf("after clear: run %s: %v", got, b.States("prod", runID))
	}
	for _, ti := range b.TIs("prod", runID) {
		if ti.TaskID != "each" {
			continue
		}
		want := 1
		if ti.MapIndex == 2 {
			want = 2
		}
		if ti.TryNumber != want || ti.State != "success" {
			t.Errorf("instance %d: try %d %s, want try %d success", ti.MapIndex, ti.TryNumber, ti.State, want)
		}
	}
	if ti, err := b.Store.TaskInstanceAt(b.Ctx, run.PK, "collect", -1); err != nil || ti.TryNumber != 2 {
		t.Errorf("collect (downstream of the cleared instance): try %d, %v", ti.TryNumber, err)
	}
}

// Given a task mapped over 600 instances that may run one at a time, when
// another DAG's task is queued after them, then it starts at once: the
// throttled instances waiting their turn do not fill the claim's window.
func TestThrottledInstancesDoNotStarveOthers(t *testing.T) {
	t.Parallel()
	b := setupDynamic(t)
	kwargs := strings.TrimSuffix(strings.Repeat("{}, ", 600), ", ")
	b.DAG("slow", "dag_id: slow\ntasks:\n  - {task_id: each, operator: empty, max_active_tis_per_dagrun: 1, expand_kwargs: ["+kwargs+"]}\n")
	b.DAG("other", "dag_id: other\ntasks:\n  - {task_id: quick, operator: empty}\n")
	b.Scheduler(nil)
	slow := b.Trigger("slow", "")
	b.WaitFor("slow expanded", time.Minute, func() bool { return len(b.TIs("slow", slow)) == 600 })
	other := b.Trigger("other", "")
	if got := b.WaitRun("other", other, time.Minute); got != runstate.RunSuccess {
		t.Fatalf("other: %s", got)
	}
	started := b.TI("other", other, "quick").StartedAt
	if got := b.WaitRun("slow", slow, 2*time.Minute); got != runstate.RunSuccess {
		t.Fatalf("slow: %s", got)
	}
	ended := 0
	insts := b.TIs("slow", slow)
	for _, ti := range insts {
		if ti.EndedAt != nil && ti.EndedAt.Before(*started) {
			ended++
		}
	}
	if peak := peakConcurrency(t, insts); peak != 1 {
		t.Errorf("%d instances ran at once, limit 1", peak)
	}
	if ended > 60 {
		t.Errorf("the other DAG's task started after %d of 600 throttled instances had run: it waited behind them", ended)
	}
}

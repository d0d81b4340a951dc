package scheduler_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/flowtest"
	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/scheduler"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/operators"
	"github.com/podflow/podflow/operators/bash"
	"github.com/podflow/podflow/operators/empty"
)

func setupAssets(t *testing.T) *testBundle {
	t.Helper()
	return &testBundle{flowtest.New(t, operators.NewRegistry(bash.New(), empty.New()))}
}

const (
	ordersURI    = "s3://bucket/orders/"
	customersURI = "postgres://warehouse/public/customers"
)

func producerDAG(id, uri string) string {
	return `
dag_id: ` + id + `
tasks:
  - task_id: load
    operator: bash
    bash_command: echo loaded
    outlets:
      - uri: ` + uri + `
        extra: {rows: "{{ 40 + 2 }}", day: "{{ ds }}"}
`
}

// assetRuns are a DAG's asset-triggered runs.
func (b *testBundle) assetRuns(dagID string) []store.Run {
	b.T.Helper()
	runs, err := b.Store.Runs(b.Ctx, dagID, 100)
	if err != nil {
		b.T.Fatal(err)
	}
	var out []store.Run
	for _, r := range runs {
		if r.RunType == "asset_triggered" {
			out = append(out, r)
		}
	}
	return out
}

// waitConsumerKnown waits until the scheduler synced a consumer DAG (its
// asset progress starts at the events that exist then).
func (b *testBundle) waitConsumerKnown(dagID string, uris ...string) {
	b.T.Helper()
	b.WaitFor(dagID+" is a known consumer", 30*time.Second, func() bool {
		assets, err := b.Store.Assets(b.Ctx)
		if err != nil {
			b.T.Fatal(err)
		}
		n := 0
		for _, a := range assets {
			for _, c := range a.Consumers {
				if c == dagID {
					n++
				}
			}
		}
		return n == len(uris)
	})
}

// Given a producer with an outlet and a consumer scheduled on it, when the
// producer's task succeeds, then an asset event with the rendered extra is
// recorded and the consumer gets one asset-triggered run whose template
// context lists the event.
func TestAssetProducerTriggersConsumer(t *testing.T) {
	t.Parallel()
	b := setupAssets(t)
	b.DAG("producer", producerDAG("producer", ordersURI))
	b.DAG("consumer", `
dag_id: consumer
schedule: {assets: ["`+ordersURI+`"]}
tasks:
  - task_id: report
    operator: bash
    bash_command: "echo from={{ triggering_asset_events['`+ordersURI+`'][0].source_dag_id }} rows={{ triggering_asset_events['`+ordersURI+`'][0].extra.rows }}"
`)
	b.Scheduler(nil)
	b.waitConsumerKnown("consumer", ordersURI)
	runID := b.Trigger("producer", "")
	if got := b.WaitRun("producer", runID, time.Minute); got != runstate.RunSuccess {
		t.Fatalf("producer run %s: %v", got, b.States("producer", runID))
	}
	evs, err := b.Store.AssetEvents(b.Ctx, ordersURI, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].SourceDagID != "producer" || evs[0].SourceRunID != runID || evs[0].SourceTaskID != "load" ||
		!strings.Contains(string(evs[0].Extra), `"rows": "42"`) {
		t.Fatalf("asset events = %+v, want one from producer/%s/load with rows 42", evs, runID)
	}
	b.WaitFor("a consumer run", 30*time.Second, func() bool { return len(b.assetRuns("consumer")) == 1 })
	run := b.assetRuns("consumer")[0]
	if got := b.WaitRun("consumer", run.RunID, time.Minute); got != runstate.RunSuccess {
		t.Fatalf("consumer run %s: %v", got, b.States("consumer", run.RunID))
	}
	if log := b.Log("consumer", run.RunID, "report"); !strings.Contains(log, "from=producer rows=42") {
		t.Errorf("consumer's log lacks the triggering event:\n%s", log)
	}
	if n := len(b.assetRuns("consumer")); n != 1 {
		t.Errorf("%d consumer runs, want 1", n)
	}
}

// A consumer of two assets runs only once both were updated.
func TestAssetConsumerWaitsForEveryAsset(t *testing.T) {
	t.Parallel()
	b := setupAssets(t)
	b.DAG("orders", producerDAG("orders", ordersURI))
	b.DAG("customers", producerDAG("customers", customersURI))
	b.DAG("both", `
dag_id: both
schedule: {assets: ["`+ordersURI+`", "`+customersURI+`"]}
tasks:
  - task_id: report
    operator: bash
    bash_command: "echo {{ triggering_asset_events | length }} assets"
`)
	b.Scheduler(nil)
	b.waitConsumerKnown("both", ordersURI, customersURI)
	if got := b.WaitRun("orders", b.Trigger("orders", ""), time.Minute); got != runstate.RunSuccess {
		t.Fatalf("orders run %s", got)
	}
	// Decided right now, from the database: one of two assets is not due.
	if runID, err := scheduler.CreateAssetRun(b.Ctx, b.Store, b.Parser, "both", time.Now()); err != nil || runID != "" {
		t.Fatalf("with one asset updated: run %q, %v; want none", runID, err)
	}
	if n := len(b.assetRuns("both")); n != 0 {
		t.Fatalf("%d runs of both after one asset, want 0", n)
	}
	if got := b.WaitRun("customers", b.Trigger("customers", ""), time.Minute); got != runstate.RunSuccess {
		t.Fatalf("customers run %s", got)
	}
	b.WaitFor("a run of both", 30*time.Second, func() bool { return len(b.assetRuns("both")) == 1 })
	run := b.assetRuns("both")[0]
	if got := b.WaitRun("both", run.RunID, time.Minute); got != runstate.RunSuccess {
		t.Fatalf("both run %s", got)
	}
	if log := b.Log("both", run.RunID, "report"); !strings.Contains(log, "2 assets") {
		t.Errorf("log lacks both assets' events:\n%s", log)
	}
}

// Three schedulers against one database produce exactly one consumer run
// per set of events; so do ten concurrent decisions on the same events.
func TestAssetRunOncePerEventSet(t *testing.T) {
	t.Parallel()
	b := setupAssets(t)
	b.DAG("producer", producerDAG("producer", ordersURI))
	b.DAG("consumer", `
dag_id: consumer
schedule: {assets: {any: ["`+ordersURI+`"]}}
tasks:
  - {task_id: report, operator: empty}
`)
	for range 3 {
		b.Scheduler(nil)
	}
	b.waitConsumerKnown("consumer", ordersURI)
	for i := 1; i <= 3; i++ {
		if got := b.WaitRun("producer", b.Trigger("producer", ""), time.Minute); got != runstate.RunSuccess {
			t.Fatalf("producer run %s", got)
		}
		b.WaitFor("consumer runs", 30*time.Second, func() bool { return len(b.assetRuns("consumer")) >= i })
		events := 0
		for _, r := range b.assetRuns("consumer") {
			evs, err := b.Store.RunAssetEvents(b.Ctx, r.PK)
			if err != nil {
				t.Fatal(err)
			}
			events += len(evs)
		}
		if n := len(b.assetRuns("consumer")); n != i || events != i {
			t.Fatalf("after %d producer runs: %d consumer runs consuming %d events, want %d and %d", i, n, events, i, i)
		}
	}

	// Ten deciders racing the three schedulers on one new event: one run.
	var wg sync.WaitGroup
	created := make(chan string, 10)
	before := len(b.assetRuns("consumer"))
	if got := b.WaitRun("producer", b.Trigger("producer", ""), time.Minute); got != runstate.RunSuccess {
		t.Fatalf("producer run %s", got)
	}
	for range 10 {
		wg.Go(func() {
			runID, err := scheduler.CreateAssetRun(b.Ctx, b.Store, b.Parser, "consumer", time.Now())
			if err != nil {
				t.Error(err)
			}
			if runID != "" {
				created <- runID
			}
		})
	}
	wg.Wait()
	close(created)
	if len(created) > 1 {
		t.Errorf("%d deciders created a run for one event", len(created))
	}
	b.WaitFor("the consumer run", 30*time.Second, func() bool { return len(b.assetRuns("consumer")) >= before+1 })
	if n := len(b.assetRuns("consumer")); n != before+1 {
		t.Errorf("%d consumer runs after one more event, want %d", n, before+1)
	}
}

func TestAssetRunDue(t *testing.T) {
	t.Parallel()
	ev := func(id int64, uri string) store.AssetEvent { return store.AssetEvent{ID: id, URI: uri} }
	a, c := ordersURI, customersURI
	for _, tc := range []struct {
		name     string
		schedule *dag.AssetSchedule
		pending  map[string][]store.AssetEvent
		due      bool
		ids      []int64
		upTo     map[string]int64
	}{
		{"no schedule", nil, map[string][]store.AssetEvent{a: {ev(1, a)}}, false, nil, nil},
		{"all-of, nothing new", &dag.AssetSchedule{URIs: []string{a, c}}, map[string][]store.AssetEvent{}, false, nil, nil},
		{"all-of, one of two", &dag.AssetSchedule{URIs: []string{a, c}}, map[string][]store.AssetEvent{a: {ev(1, a), ev(3, a)}}, false, nil, nil},
		{"all-of, both", &dag.AssetSchedule{URIs: []string{a, c}}, map[string][]store.AssetEvent{a: {ev(1, a), ev(3, a)}, c: {ev(2, c)}},
			true, []int64{1, 2, 3}, map[string]int64{a: 3, c: 2}},
		{"any-of, one of two", &dag.AssetSchedule{URIs: []string{a, c}, Any: true}, map[string][]store.AssetEvent{c: {ev(5, c)}},
			true, []int64{5}, map[string]int64{c: 5}},
		{"any-of, nothing new", &dag.AssetSchedule{URIs: []string{a, c}, Any: true}, map[string][]store.AssetEvent{a: nil}, false, nil, nil},
		{"events of assets not consumed are ignored", &dag.AssetSchedule{URIs: []string{a}}, map[string][]store.AssetEvent{c: {ev(7, c)}}, false, nil, nil},
	} {
		evs, upTo, due := scheduler.AssetRunDue(tc.schedule, tc.pending)
		if due != tc.due {
			t.Errorf("%s: due = %v, want %v", tc.name, due, tc.due)
			continue
		}
		var ids []int64
		for _, e := range evs {
			ids = append(ids, e.ID)
		}
		if !slicesEqual(ids, tc.ids) || len(upTo) != len(tc.upTo) {
			t.Errorf("%s: events %v upTo %v, want %v %v", tc.name, ids, upTo, tc.ids, tc.upTo)
		}
		for k, v := range tc.upTo {
			if upTo[k] != v {
				t.Errorf("%s: upTo[%s] = %d, want %d", tc.name, k, upTo[k], v)
			}
		}
	}
}

func slicesEqual(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The asset examples run end to end: the producer's run triggers the
// consumer, whose log names both assets' producing tasks.
func TestAssetExamplesRunEndToEnd(t *testing.T) {
	t.Parallel()
	b := setupAssets(t)
	for _, name := range []string{"assets_producer", "assets_consumer"} {
		src, err := os.ReadFile(filepath.Join("..", "..", "examples", "dags", name+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		b.DAG(name, string(src))
	}
	b.Scheduler(nil)
	b.waitConsumerKnown("assets_consumer", "s3://warehouse/orders/", "postgres://warehouse/public/customers")
	if got := b.WaitRun("assets_producer", b.Trigger("assets_producer", ""), time.Minute); got != runstate.RunSuccess {
		t.Fatalf("producer run %s", got)
	}
	b.WaitFor("a consumer run", 30*time.Second, func() bool { return len(b.assetRuns("assets_consumer")) == 1 })
	run := b.assetRuns("assets_consumer")[0]
	if got := b.WaitRun("assets_consumer", run.RunID, time.Minute); got != runstate.RunSuccess {
		t.Fatalf("consumer run %s: %s", got, b.Log("assets_consumer", run.RunID, "report"))
	}
	log := b.Log("assets_consumer", run.RunID, "report")
	for _, want := range []string{"s3://warehouse/orders/ updated by assets_producer.refresh_orders (", "event(s), rows 1234)",
		"postgres://warehouse/public/customers updated by assets_producer.refresh_customers ("} {
		if !strings.Contains(log, want) {
			t.Errorf("consumer log lacks %q:\n%s", want, log)
		}
	}
}

package api

import (
	"net/url"
	"testing"
	"time"

	"github.com/podflow/podflow/internal/api/gen"
)

// TestAssetsFromTheAPI: the API lists an asset with its producing task and
// consuming DAG, and the event the producer's success recorded.
func TestAssetsFromTheAPI(t *testing.T) {
	b := setup(t)
	b.DAG("producer", "dag_id: producer\ntasks:\n  - {task_id: load, operator: bash, bash_command: echo hi, outlets: [{uri: 's3://b/orders', extra: {day: '{{ ds }}'}}]}\n")
	b.DAG("consumer", "dag_id: consumer\nschedule: {assets: ['s3://b/orders']}\ntasks:\n  - {task_id: r, operator: bash, bash_command: echo r}\n")
	b.Scheduler(nil)
	var assets gen.AssetCollection
	b.WaitFor("both DAGs synced", 30*time.Second, func() bool {
		b.must(200, "GET", "/assets", "viewer", nil).json(t, &assets)
		return len(assets.Assets) == 1 && len(assets.Assets[0].Producers) == 1 && len(assets.Assets[0].Consumers) == 1
	})
	a := assets.Assets[0]
	if a.Uri != "s3://b/orders" || a.Producers[0].DagId != "producer" || a.Producers[0].TaskId != "load" || a.Consumers[0] != "consumer" || a.Events != 0 {
		t.Fatalf("asset %+v", a)
	}
	runID := b.Trigger("producer", "")
	if got := b.WaitRun("producer", runID, time.Minute); got != "success" {
		t.Fatalf("producer run %s", got)
	}
	var evs gen.AssetEventCollection
	b.must(200, "GET", "/assets/events?uri="+url.QueryEscape("s3://b/orders"), "viewer", nil).json(t, &evs)
	if len(evs.AssetEvents) != 1 || evs.AssetEvents[0].SourceRunId != runID || evs.AssetEvents[0].Extra["day"] == nil {
		t.Fatalf("events %+v", evs)
	}
	b.must(400, "GET", "/assets/events", "viewer", nil)
}

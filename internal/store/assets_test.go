package store_test

import (
	"encoding/json"
	"testing"

	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/store"
)

// A try's outlets become asset events only with the success that applies:
// a late report by a former owner records none. A consumer's progress
// starts after the events that exist when it starts consuming, and its
// references follow the DAG's current version.
func TestAssetEventsOnlyWithAppliedSuccess(t *testing.T) {
	b := setup(t)
	if err := b.st.SaveAssetRefs(b.ctx, "consumer", store.AssetRefs{Consumers: []string{"s3://x"}}); err != nil {
		t.Fatal(err)
	}
	r := b.runningRun("r1", []string{"a", "b"})
	b.force(r, "a", runstate.Running)
	b.force(r, "b", runstate.Running)
	events := []store.NewAssetEvent{{URI: "s3://x", Extra: json.RawMessage(`{"n": 1}`)}}
	if ok := b.finish(store.Outcome{ID: b.ti(r, "a").ID, TryNumber: 1, Owner: "someone-else", State: runstate.Success,
		DagID: r.DagID, RunID: r.RunID, TaskID: "a", MapIndex: -1, AssetEvents: events}); ok {
		t.Fatal("a success from a former owner applied")
	}
	if evs, err := b.st.AssetEvents(b.ctx, "s3://x", 10); err != nil || len(evs) != 0 {
		t.Fatalf("events after a success that did not apply: %+v, %v", evs, err)
	}
	if ok := b.finish(store.Outcome{ID: b.ti(r, "b").ID, TryNumber: 1, Owner: "w", State: runstate.Success,
		DagID: r.DagID, RunID: r.RunID, TaskID: "b", MapIndex: -1, AssetEvents: events}); !ok {
		t.Fatal("the owner's success did not apply")
	}
	evs, err := b.st.AssetEvents(b.ctx, "s3://x", 10)
	if err != nil || len(evs) != 1 || evs[0].SourceTaskID != "b" || evs[0].SourceRunID != "r1" || string(evs[0].Extra) != `{"n": 1}` {
		t.Fatalf("events = %+v, %v", evs, err)
	}

	// The existing consumer sees the event; one that starts consuming now does not.
	if err := b.st.SaveAssetRefs(b.ctx, "late", store.AssetRefs{Consumers: []string{"s3://x"}}); err != nil {
		t.Fatal(err)
	}
	for dagID, want := range map[string]int{"consumer": 1, "late": 0} {
		var pending map[string][]store.AssetEvent
		if err := b.st.InTx(b.ctx, func(q store.Q) error {
			var err error
			pending, err = q.LockNewAssetEvents(b.ctx, dagID)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if got := len(pending["s3://x"]); got != want {
			t.Errorf("%s: %d pending events, want %d", dagID, got, want)
		}
	}
	// A new version that consumes nothing drops the references.
	if err := b.st.SaveAssetRefs(b.ctx, "late", store.AssetRefs{}); err != nil {
		t.Fatal(err)
	}
	assets, err := b.st.Assets(b.ctx)
	if err != nil || len(assets) != 1 || len(assets[0].Consumers) != 1 || assets[0].Consumers[0] != "consumer" || assets[0].Events != 1 {
		t.Fatalf("assets = %+v, %v", assets, err)
	}
}

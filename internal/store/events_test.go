package store_test

import (
	"encoding/json"
	"testing"

	"github.com/podflow/podflow/internal/store"
)

func TestEventLogRecordsAndFilters(t *testing.T) {
	b := setup(t)
	for _, e := range []store.EventLog{
		{Actor: "alice", Source: "10.0.0.1", Event: "trigger", DagID: "etl", RunID: "manual__1"},
		{Actor: "cli:root", Source: "cli@host", Event: "pause", DagID: "etl"},
		{Actor: "bob", Source: "10.0.0.2", Event: "user_create", Extra: json.RawMessage(`{"username":"carol"}`)},
	} {
		if err := b.st.RecordEvent(b.ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	all, total, err := b.st.ListEvents(b.ctx, store.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if total != 3 || len(all) != 3 || all[0].Event != "user_create" || all[2].Event != "trigger" {
		t.Fatalf("newest first, 3 in all: total %d %+v", total, all)
	}
	if string(all[0].Extra) != `{"username": "carol"}` || all[0].DagID != "" {
		t.Fatalf("extra/dag of user_create: %s %q", all[0].Extra, all[0].DagID)
	}
	etl, total, err := b.st.ListEvents(b.ctx, store.EventFilter{DagID: "etl", Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if total != 2 || len(etl) != 1 || etl[0].Event != "pause" {
		t.Fatalf("etl page of 1: total %d %+v", total, etl)
	}
	byActor, _, err := b.st.ListEvents(b.ctx, store.EventFilter{Actor: "alice", Event: "trigger"})
	if err != nil {
		t.Fatal(err)
	}
	if len(byActor) != 1 || byActor[0].RunID != "manual__1" || byActor[0].Source != "10.0.0.1" {
		t.Fatalf("alice's trigger: %+v", byActor)
	}
}

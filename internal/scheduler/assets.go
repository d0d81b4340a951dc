package scheduler

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/store"
)

// Asset-triggered runs: a producing task's success records asset events in
// its own transaction (store.FinishTasks); the runs loop then looks for
// consumer DAGs with events they have not consumed and, per DAG, in one
// transaction: locks the DAG's progress rows (a second scheduler doing the
// same waits on the lock and then finds nothing new), decides with
// AssetRunDue, creates the run and advances the progress.
//
//	event ──▶ progress(dag, uri).last_event_id < event.id ──▶ AssetRunDue ──▶ run + progress advanced

// AssetRunDue decides whether a consumer is due, from the events of each of
// its assets it has not consumed yet: with all-of (Airflow's default) when
// every asset has one, with any-of when one has. It returns the events the
// run consumes, oldest first, and the newest consumed event per asset.
func AssetRunDue(s *dag.AssetSchedule, pending map[string][]store.AssetEvent) (events []store.AssetEvent, upTo map[string]int64, due bool) {
	if s == nil || len(s.URIs) == 0 {
		return nil, nil, false
	}
	updated := 0
	for _, uri := range s.URIs {
		if len(pending[uri]) > 0 {
			updated++
		}
	}
	if updated == 0 || (!s.Any && updated < len(s.URIs)) {
		return nil, nil, false
	}
	upTo = map[string]int64{}
	for _, uri := range s.URIs {
		evs := pending[uri]
		if len(evs) == 0 {
			continue
		}
		events = append(events, evs...)
		upTo[uri] = evs[len(evs)-1].ID
	}
	sortEvents(events)
	return events, upTo, true
}

func sortEvents(evs []store.AssetEvent) {
	slices.SortFunc(evs, func(a, b store.AssetEvent) int { return cmp.Compare(a.ID, b.ID) })
}

// assetRefs are what a DAG produces and consumes, as the store keeps them.
func assetRefs(d *dag.DAG) store.AssetRefs {
	refs := store.AssetRefs{Producers: d.Produced()}
	if d.Consumes() {
		refs.Consumers = d.Assets.URIs
	}
	return refs
}

// createAssetRuns creates the runs of consumer DAGs whose assets were
// updated.
func (s *Scheduler) createAssetRuns(ctx context.Context) error {
	ids, err := s.store.DagsWithNewAssetEvents(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		runID, err := CreateAssetRun(ctx, s.store, s.dags.parser, id, time.Now())
		if err != nil {
			s.log.Error("create asset-triggered run", "dag_id", id, "error", err)
			continue
		}
		if runID != "" {
			s.log.Info("run created", "dag_id", id, "run_id", runID, "run_type", "asset_triggered")
		}
	}
	return nil
}

// CreateAssetRun creates one asset-triggered run of a consumer DAG if its
// pending events make it due ("" when not). Safe to call from any number of
// schedulers at once: one set of events makes one run.
func CreateAssetRun(ctx context.Context, st *store.Store, p *dag.Parser, dagID string, now time.Time) (string, error) {
	var runID string
	err := st.InTx(ctx, func(q store.Q) error {
		pending, err := q.LockNewAssetEvents(ctx, dagID)
		if err != nil {
			return err
		}
		d, err := CurrentDAG(ctx, q, p, dagID)
		if err != nil {
			return err
		}
		events, upTo, due := AssetRunDue(d.Assets, pending)
		if !due {
			return nil
		}
		logical := now.UTC().Truncate(time.Microsecond)
		start, end := d.DataInterval(logical)
		id := dag.RunID("asset_triggered", logical)
		pk, created, err := q.CreateRun(ctx, store.NewRun{DagID: d.ID, RunID: id, Hash: d.Hash, RunType: "asset_triggered",
			LogicalDate: logical, DataIntervalStart: start, DataIntervalEnd: end, MaxActiveTasks: d.MaxActiveTasks})
		if err != nil {
			return err
		}
		if !created {
			return fmt.Errorf("a run %s of %s already exists", id, d.ID)
		}
		if err := q.ConsumeAssetEvents(ctx, d.ID, pk, upTo, events); err != nil {
			return err
		}
		runID = id
		return q.Notify(ctx, store.ChannelSchedulerWake, d.ID)
	})
	return runID, err
}

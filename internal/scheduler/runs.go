package scheduler

import (
	"context"
	"fmt"
	"time"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/store"
)

// Run creation: the scheduling loop creates scheduled runs, `podflow
// trigger` and tests create manual ones. Both go through CreateRun, which
// checks the conf against the DAG's params and wakes the schedulers.

// createRun creates one queued run of d.
func (s *Scheduler) createRun(ctx context.Context, d *dag.DAG, runType string, logical time.Time, conf []byte) (bool, error) {
	runID, created, err := CreateRun(ctx, s.store.Q, d, runType, logical, conf)
	if created {
		s.log.Info("run created", "dag_id", d.ID, "run_id", runID)
	}
	return created, err
}

// CreateRun creates a queued run of d with the given logical date and
// conf (JSON object, nil = {}) and wakes the schedulers. created is false
// when a run with the same run id exists.
func CreateRun(ctx context.Context, q store.Q, d *dag.DAG, runType string, logical time.Time, conf []byte) (runID string, created bool, err error) {
	return CreateRunWithID(ctx, q, d, runType, "", logical, conf)
}

// CreateRunWithID is CreateRun with a run id of the caller's choosing ("" =
// dag.RunID's), as the API's trigger takes one.
func CreateRunWithID(ctx context.Context, q store.Q, d *dag.DAG, runType, runID string, logical time.Time, conf []byte) (string, bool, error) {
	if len(conf) > 0 {
		m, err := dag.ParseConf(conf)
		if err != nil {
			return "", false, &ConfError{fmt.Errorf("run of %s: %w", d.ID, err)}
		}
		if err := d.CheckConf(m); err != nil {
			return "", false, &ConfError{err}
		}
	}
	start, end := d.DataInterval(logical)
	if runID == "" {
		runID = dag.RunID(runType, logical)
	}
	_, created, err := q.CreateRun(ctx, store.NewRun{
		DagID: d.ID, RunID: runID, Hash: d.Hash, RunType: runType,
		LogicalDate: logical, DataIntervalStart: start, DataIntervalEnd: end, Conf: conf,
		MaxActiveTasks: d.MaxActiveTasks,
	})
	if err != nil || !created {
		return runID, created, err
	}
	return runID, true, q.Notify(ctx, store.ChannelSchedulerWake, d.ID)
}

// RegisterDAG stores a parsed DAG's version and makes it the DAG's current
// one (what the scheduler does when it syncs the DAGs folder).
func RegisterDAG(ctx context.Context, q store.Q, d *dag.DAG) error {
	if err := q.SaveDagVersion(ctx, d.Hash, d.ID, d.Path, d.Source); err != nil {
		return err
	}
	if err := saveAlertRules(ctx, q, d); err != nil {
		return err
	}
	if err := q.SaveAssetRefs(ctx, d.ID, assetRefs(d)); err != nil {
		return err
	}
	if err := q.SetDagCurrent(ctx, d.ID, d.Path, d.Hash, d.Schedule, d.PausedAtCreation); err != nil {
		return err
	}
	return q.SetDagTags(ctx, d.ID, d.Tags)
}

// TriggerRun registers d's version and creates a manual run of it at
// logical, in one transaction: `podflow trigger` for code and tests.
func TriggerRun(ctx context.Context, st *store.Store, d *dag.DAG, logical time.Time, conf []byte) (runID string, err error) {
	err = st.InTx(ctx, func(q store.Q) error {
		if err := RegisterDAG(ctx, q, d); err != nil {
			return err
		}
		var created bool
		runID, created, err = CreateRun(ctx, q, d, "manual", logical, conf)
		if err == nil && !created {
			err = fmt.Errorf("a run %s of %s already exists", runID, d.ID)
		}
		return err
	})
	return runID, err
}

// ConfError is a run's conf that its DAG refuses (not an object, too big,
// not matching params): the caller's mistake, not the database's.
type ConfError struct{ Err error }

func (e *ConfError) Error() string { return e.Err.Error() }
func (e *ConfError) Unwrap() error { return e.Err }

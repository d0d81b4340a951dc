package store_test

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/podflow/podflow/internal/localenv/pgtest"
	"github.com/podflow/podflow/internal/store"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// testBundle is one test's store on its own freshly migrated database.
type testBundle struct {
	t   *testing.T
	ctx context.Context
	st  *store.Store
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	st, err := store.Open(ctx, pgtest.NewMigratedDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return &testBundle{t: t, ctx: ctx, st: st}
}

// listen LISTENs on channel from now on and returns a function that waits
// (up to 10 s) for the next notification on it and returns its payload.
func (b *testBundle) listen(channel string) func() string {
	b.t.Helper()
	conn, err := pgx.ConnectConfig(b.ctx, b.st.Pool.Config().ConnConfig.Copy())
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { _ = conn.Close(context.Background()) })
	if _, err := conn.Exec(b.ctx, "LISTEN "+channel); err != nil {
		b.t.Fatal(err)
	}
	return func() string {
		b.t.Helper()
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		defer cancel()
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			b.t.Fatalf("no notification on %s: %v", channel, err)
		}
		return n.Payload
	}
}

// dag registers a DAG version (hash) as dagID's current one.
func (b *testBundle) dag(dagID, hash string) {
	b.t.Helper()
	err := b.st.InTx(b.ctx, func(q store.Q) error {
		if err := q.SaveDagVersion(b.ctx, hash, dagID, dagID+".yaml", []byte("dag_id: "+dagID)); err != nil {
			return err
		}
		return q.SetDagCurrent(b.ctx, dagID, dagID+".yaml", hash, "", false)
	})
	if err != nil {
		b.t.Fatal(err)
	}
}

// queuedRun creates a queued run of a registered DAG version.
func (b *testBundle) queuedRun(dagID, hash, runID string) store.Run {
	b.t.Helper()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	_, created, err := b.st.CreateRun(b.ctx, store.NewRun{DagID: dagID, RunID: runID, Hash: hash, RunType: "manual",
		LogicalDate: at, DataIntervalStart: at, DataIntervalEnd: at})
	if err != nil || !created {
		b.t.Fatalf("create run %s: created %v, %v", runID, created, err)
	}
	return b.run(dagID, runID)
}

// runningRun creates a running run of a new DAG "d_<runID>" with task
// instances in state none (or queued, for the ids in queued).
func (b *testBundle) runningRun(runID string, tasks []string, queued ...string) store.Run {
	b.t.Helper()
	dagID, hash := "d_"+runID, "h_"+runID
	b.dag(dagID, hash)
	r := b.queuedRun(dagID, hash, runID)
	if ok, err := b.st.StartRun(b.ctx, r.PK); err != nil || !ok {
		b.t.Fatalf("start run: %v %v", ok, err)
	}
	specs := make([]store.TaskSpec, len(tasks))
	for i, id := range tasks {
		specs[i] = store.TaskSpec{TaskID: id, Pool: "default_pool", Queued: contains(queued, id)}
	}
	if err := b.st.InsertTaskInstances(b.ctx, r, specs); err != nil {
		b.t.Fatal(err)
	}
	return b.run(dagID, runID)
}

func (b *testBundle) run(dagID, runID string) store.Run {
	b.t.Helper()
	r, err := b.st.Run(b.ctx, dagID, runID)
	if err != nil {
		b.t.Fatal(err)
	}
	return r
}

func (b *testBundle) ti(r store.Run, taskID string) store.TaskInstance {
	b.t.Helper()
	ti, err := b.st.TaskInstance(b.ctx, r.PK, taskID)
	if err != nil {
		b.t.Fatal(err)
	}
	return ti
}

func (b *testBundle) states(r store.Run) map[string]string {
	b.t.Helper()
	s, err := b.st.TaskStates(b.ctx, r.PK)
	if err != nil {
		b.t.Fatal(err)
	}
	return s
}

// force puts a task instance straight into a state, as if earlier
// transitions had happened (a running one gets try 1 and owner "w").
func (b *testBundle) force(r store.Run, taskID, state string) {
	b.t.Helper()
	_, err := b.st.Pool.Exec(b.ctx, `UPDATE task_instances SET state = $3,
		try_number = CASE WHEN $3 IN ('running', 'deferred') THEN 1 ELSE try_number END,
		owner_id = CASE WHEN $3 = 'running' THEN 'w' END,
		next_retry_at = CASE WHEN $3 = 'up_for_retry' THEN now() + interval '1 hour' END
		WHERE run_pk = $1 AND task_id = $2`, r.PK, taskID, state)
	if err != nil {
		b.t.Fatal(err)
	}
}

// claim claims up to n queued task instances for owner in one transaction.
func (b *testBundle) claim(owner string, n int) []store.Claimed {
	b.t.Helper()
	var c []store.Claimed
	err := b.st.InTx(b.ctx, func(q store.Q) error {
		var err error
		c, err = q.ClaimTasks(b.ctx, owner, n, store.Limits{DefaultSlot: 1000})
		return err
	})
	if err != nil {
		b.t.Fatal(err)
	}
	return c
}

func (b *testBundle) finish(o store.Outcome) bool {
	b.t.Helper()
	var ok bool
	err := b.st.InTx(b.ctx, func(q store.Q) error {
		var err error
		ok, err = q.FinishTask(b.ctx, o)
		return err
	})
	if err != nil {
		b.t.Fatal(err)
	}
	return ok
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func sortedIDs(ids []int64) []int64 {
	out := append([]int64(nil), ids...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func wantStates(t *testing.T, got, want map[string]string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("task states = %v\nwant          %v", got, want)
	}
}

// ScheduledDags lists only what run creation may act on: unpaused DAGs
// with a cron schedule, in dag_id order.
func TestScheduledDagsSkipsPausedAndUnscheduled(t *testing.T) {
	b := setup(t)
	err := b.st.InTx(b.ctx, func(q store.Q) error {
		for _, d := range []struct {
			id, schedule string
			paused       bool
		}{{"b_hourly", "@hourly", false}, {"a_daily", "0 3 * * *", false}, {"c_paused", "@hourly", true}, {"d_manual", "", false}} {
			if err := q.SetDagCurrent(b.ctx, d.id, d.id+".yaml", "hash-"+d.id, d.schedule, d.paused); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := b.st.ScheduledDags(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rows {
		got = append(got, fmt.Sprintf("%s %s %s", r.DagID, r.Hash, r.Schedule))
	}
	want := []string{"a_daily hash-a_daily 0 3 * * *", "b_hourly hash-b_hourly @hourly"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("scheduled DAGs %q, want %q", got, want)
	}
}

// The schema check works whatever the client encoding: a server whose
// databases are SQL_ASCII (the compose stack's stand-in) gives pgx a
// client encoding it refuses the simple protocol under.
func TestCheckSchemaWithAClientEncodingOtherThanUTF8(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, db := range []struct {
		url      string
		migrated bool
	}{{pgtest.NewMigratedDatabase(t), true}, {pgtest.NewDatabase(t), false}} {
		cfg, err := pgxpool.ParseConfig(db.url)
		if err != nil {
			t.Fatal(err)
		}
		cfg.ConnConfig.RuntimeParams["client_encoding"] = "LATIN1"
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		err = store.New(pool).CheckSchema(ctx)
		pool.Close()
		switch {
		case db.migrated && err != nil:
			t.Errorf("schema check of a migrated database, client_encoding LATIN1: %v", err)
		case !db.migrated && (err == nil || !strings.Contains(err.Error(), "podflow db migrate")):
			t.Errorf("schema check of an empty database, client_encoding LATIN1: %v; want the schema's version 0 and `podflow db migrate`", err)
		}
	}
}

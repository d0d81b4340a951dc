package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/podflow/podflow/internal/store"
)

// Claiming takes the highest priority first, then the oldest, within pool
// slots; running task instances count against their pool.
func TestClaimTasksOrderAndPools(t *testing.T) {
	b := setup(t)
	b.dag("d", "h")
	r := b.queuedRun("d", "h", "r")
	if _, err := b.st.StartRun(b.ctx, r.PK); err != nil {
		t.Fatal(err)
	}
	specs := []store.TaskSpec{
		{TaskID: "low", Pool: "p", Priority: 1, Queued: true},
		{TaskID: "high", Pool: "p", Priority: 5, Queued: true},
		{TaskID: "mid", Pool: "p", Priority: 3, Queued: true},
		{TaskID: "small1", Pool: "small", Priority: 9, Queued: true},
		{TaskID: "small2", Pool: "small", Priority: 8, Queued: true},
	}
	if err := b.st.InsertTaskInstances(b.ctx, r, specs); err != nil {
		t.Fatal(err)
	}
	lim := store.Limits{Pools: map[string]int{"small": 1}, DefaultSlot: 100}
	claim := func(n int) []string {
		t.Helper()
		var ids []string
		err := b.st.InTx(b.ctx, func(q store.Q) error {
			c, err := q.ClaimTasks(b.ctx, "w", n, lim)
			for _, x := range c {
				ids = append(ids, x.TaskID)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	// small2 waits for small1's slot.
	if got := fmt.Sprint(claim(2)); got != "[small1 high]" {
		t.Errorf("first claim %s, want [small1 high]", got)
	}
	if got := fmt.Sprint(claim(10)); got != "[mid low]" {
		t.Errorf("second claim %s, want [mid low] (small is full)", got)
	}
	if got := claim(10); len(got) != 0 {
		t.Errorf("third claim %v, want nothing while small1 runs", got)
	}
}

// A run's max_active_tasks bounds how many of its task instances run.
func TestClaimTasksMaxActiveTasks(t *testing.T) {
	b := setup(t)
	b.dag("d", "h")
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	pk, _, err := b.st.CreateRun(b.ctx, store.NewRun{DagID: "d", RunID: "r", Hash: "h", RunType: "manual",
		LogicalDate: at, DataIntervalStart: at, DataIntervalEnd: at, MaxActiveTasks: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.st.StartRun(b.ctx, pk); err != nil {
		t.Fatal(err)
	}
	var specs []store.TaskSpec
	for i := range 5 {
		specs = append(specs, store.TaskSpec{TaskID: fmt.Sprint("t", i), Pool: "default_pool", Queued: true})
	}
	if err := b.st.InsertTaskInstances(b.ctx, b.run("d", "r"), specs); err != nil {
		t.Fatal(err)
	}
	if c := b.claim("w", 10); len(c) != 2 {
		t.Errorf("claimed %d, want 2 (max_active_tasks)", len(c))
	}
	if c := b.claim("w", 10); len(c) != 0 {
		t.Errorf("claimed %d more, want 0", len(c))
	}
}

// A queued task instance locked by another transaction is skipped, not
// waited for (FOR UPDATE SKIP LOCKED).
func TestClaimTasksSkipsLockedRows(t *testing.T) {
	b := setup(t)
	r := b.runningRun("r", []string{"locked", "free"}, "locked", "free")
	locked := b.ti(r, "locked")
	tx, err := b.st.Pool.Begin(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck
	if _, err := tx.Exec(b.ctx, `SELECT 1 FROM task_instances WHERE id = $1 FOR UPDATE`, locked.ID); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second) // waiting on the lock would hit this
	defer cancel()
	var got []store.Claimed
	err = b.st.InTx(ctx, func(q store.Q) error {
		got, err = q.ClaimTasks(ctx, "w", 10, store.Limits{DefaultSlot: 10})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].TaskID != "free" {
		t.Fatalf("claimed %+v, want only free", got)
	}
	if err := tx.Rollback(b.ctx); err != nil {
		t.Fatal(err)
	}
	if c := b.claim("w", 10); len(c) != 1 || c[0].TaskID != "locked" {
		t.Errorf("after the lock went: claimed %+v, want locked", c)
	}
}

// Concurrent claimers never get the same task instance, and together they
// get every one; each row's owner is the claimer that got it.
func TestClaimTasksConcurrent(t *testing.T) {
	b := setup(t)
	const tasks, claimers = 120, 6
	ids := make([]string, tasks)
	for i := range ids {
		ids[i] = fmt.Sprintf("t%03d", i)
	}
	r := b.runningRun("r", ids, ids...)
	var mu sync.Mutex
	got := map[int64]string{} // task instance → claimer
	var dup []int64
	var wg sync.WaitGroup
	errs := make(chan error, claimers)
	for w := range claimers {
		owner := fmt.Sprint("w", w)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				var c []store.Claimed
				err := b.st.InTx(b.ctx, func(q store.Q) error {
					var err error
					c, err = q.ClaimTasks(b.ctx, owner, 7, store.Limits{DefaultSlot: tasks})
					return err
				})
				if err != nil {
					errs <- err
					return
				}
				if len(c) == 0 {
					return
				}
				mu.Lock()
				for _, x := range c {
					if _, seen := got[x.ID]; seen {
						dup = append(dup, x.ID)
					}
					got[x.ID] = owner
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(dup) > 0 {
		t.Fatalf("claimed twice: %v", sortedIDs(dup))
	}
	if len(got) != tasks {
		t.Fatalf("claimed %d of %d", len(got), tasks)
	}
	tis, err := b.st.TaskInstances(b.ctx, r.PK)
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range tis {
		if ti.State != "running" || ti.TryNumber != 1 || ti.OwnerID != got[ti.ID] {
			t.Errorf("%s: %s try %d owner %q; want running, try 1, owner %q", ti.TaskID, ti.State, ti.TryNumber, ti.OwnerID, got[ti.ID])
		}
	}
}

// A claim reads what it takes, not the whole queue: with thousands queued
// and statistics that have not seen them (no ANALYZE since), it must still
// walk the queued index in order and stop at its limit, and move the
// claimed rows by primary key. Reading every queued row on every claim made
// a backlog quadratic (25 ms per claim at 20,000 queued).
func TestClaimReadsOnlyWhatItTakes(t *testing.T) {
	b := setup(t)
	b.dag("d", "h")
	const queued = 5000
	specs := make([]store.TaskSpec, queued)
	for i := range specs {
		specs[i] = store.TaskSpec{TaskID: fmt.Sprint("t", i), Pool: "default_pool", Priority: i % 7, Queued: true}
	}
	b.startedRun("r", specs)
	lim := store.Limits{DefaultSlot: 100000}
	err := b.st.InTx(b.ctx, func(q store.Q) error {
		c, err := q.ClaimTasks(b.ctx, "w", 8, lim)
		if err != nil {
			return err
		}
		if len(c) != 8 {
			t.Errorf("claimed %d, want 8", len(c))
		}
		for _, x := range c {
			if x.Priority != 6 {
				t.Errorf("claimed %s of priority %d before the priority-6 ones", x.TaskID, x.Priority)
			}
		}
		read := b.xactReads(q)
		t.Logf("claiming 8 of %d queued read %d rows and index entries", queued, read)
		if read > 400 {
			t.Errorf("claiming 8 of %d queued read %d rows and index entries of task_instances, want a few dozen", queued, read)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// startedRun is a running run of DAG d (version h) with these task
// instances.
func (b *testBundle) startedRun(runID string, specs []store.TaskSpec) store.Run {
	b.t.Helper()
	r := b.queuedRun("d", "h", runID)
	if _, err := b.st.StartRun(b.ctx, r.PK); err != nil {
		b.t.Fatal(err)
	}
	if err := b.st.InsertTaskInstances(b.ctx, r, specs); err != nil {
		b.t.Fatal(err)
	}
	return r
}

// xactReads is what q's transaction has read of task_instances so far:
// rows of the table and entries of its indexes.
func (b *testBundle) xactReads(q store.Q) int64 {
	b.t.Helper()
	var heap, index int64
	if err := q.QueryRowForTest(b.ctx, `SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)
		FROM pg_stat_xact_user_tables WHERE relname = 'task_instances'`).Scan(&heap); err != nil {
		b.t.Fatal(err)
	}
	if err := q.QueryRowForTest(b.ctx, `SELECT coalesce(sum(pg_stat_get_xact_tuples_returned(indexrelid)), 0)::bigint
		FROM pg_index WHERE indrelid = 'task_instances'::regclass`).Scan(&index); err != nil {
		b.t.Fatal(err)
	}
	return heap + index
}

// The claim and the finish find their rows by key however stale their
// plans are: a generic plan cached while task_instances was small stays
// cached as the table grows, and must not scan the table once it holds
// thousands of rows (it did: 12 ms per claim, 1 ms per finished task at
// 20,000 rows).
func TestClaimAndFinishReadOnlyTheirRowsAfterTheTableGrew(t *testing.T) {
	b := setup(t)
	cfg := b.st.Pool.Config().Copy()
	cfg.MaxConns = 1 // one connection: every plan is cached on it
	pool, err := pgxpool.NewWithConfig(b.ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	st := store.New(pool)
	b.dag("d", "h")
	queue := func(runID string, n int) {
		specs := make([]store.TaskSpec, n)
		for i := range specs {
			specs[i] = store.TaskSpec{TaskID: fmt.Sprint("t", i), Pool: "default_pool", Queued: true}
		}
		b.startedRun(runID, specs)
	}
	lim := store.Limits{DefaultSlot: 100000}
	claimAndFinish := func(n int) (claimReads, finishReads int64) {
		t.Helper()
		err := st.InTx(b.ctx, func(q store.Q) error {
			c, err := q.ClaimTasks(b.ctx, "w", n, lim)
			if err != nil {
				return err
			}
			if len(c) != n {
				t.Fatalf("claimed %d, want %d", len(c), n)
			}
			claimReads = b.xactReads(q)
			outs := make([]store.Outcome, len(c))
			for i, x := range c {
				outs[i] = store.Outcome{ID: x.ID, TryNumber: x.TryNumber, Owner: "w", State: "success",
					DagID: x.DagID, RunID: x.RunID, TaskID: x.TaskID, MapIndex: x.MapIndex}
			}
			ok, err := q.FinishTasks(b.ctx, outs)
			if err != nil {
				return err
			}
			for i, applied := range ok {
				if !applied {
					t.Fatalf("finish of %s did not apply", c[i].TaskID)
				}
			}
			finishReads = b.xactReads(q) - claimReads
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return claimReads, finishReads
	}
	queue("small", 12)
	for range 10 { // more than five executions: the plans are generic now
		claimAndFinish(1)
	}
	queue("big", 5000)
	claimReads, finishReads := claimAndFinish(8)
	t.Logf("with %d rows: the claim of 8 read %d rows and index entries, their finish %d", 5012, claimReads, finishReads)
	// What they read does not grow with the table (the same with 15,000
	// rows); a scan reads it all.
	if claimReads > 1000 || finishReads > 1000 {
		t.Errorf("with 5,012 rows the claim of 8 read %d rows and index entries and their finish %d, want a few hundred at most: a plan scans the table",
			claimReads, finishReads)
	}
}

package scheduler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/alerts"
	"github.com/podflow/podflow/internal/executor"
	"github.com/podflow/podflow/internal/heartbeat"
	"github.com/podflow/podflow/internal/metrics"
	"github.com/podflow/podflow/internal/notifier"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/operators"
)

// Config tunes a scheduler.
type Config struct {
	DagsFolder string
	Workers    int
	// PausedAtCreation: DAGs new to the database start paused unless they
	// say is_paused_upon_creation: false (dags_are_paused_at_creation).
	PausedAtCreation bool
	// Limits are the pools of podflow.yaml, saved to the pools table at
	// start (the file wins for its names), and the slots of a pool in
	// neither. The workers claim under the table's slots, read each loop pass.
	Limits          store.Limits
	ZombieThreshold time.Duration // a running task whose owner is silent this long is a zombie
	// HeartbeatInterval is how often it beats and then stops the tries it
	// no longer owns (default a sixth of ZombieThreshold, at most 5 s).
	HeartbeatInterval time.Duration
	LoopInterval      time.Duration // scheduling loop period (also woken by NOTIFY)
	SyncInterval      time.Duration // how often the DAGs folder is checked for changes
	ShutdownGrace     time.Duration // how long running tasks get on SIGTERM before they are stopped
	// MaxMapLength bounds how many instances a mapped task may expand
	// into (max_map_length; mapping.DefaultMaxMapLength when zero).
	MaxMapLength int
	// Connections resolves named connections for operators.
	Connections operators.Connections
	// Mask hides secrets (internal/secrets.Masker) in every log line and
	// error a try writes, before it reaches the database; nil: none.
	Mask   func(string) string
	Logger hclog.Logger
	// Metrics, if set, receives scheduling latency and finished tries.
	Metrics *metrics.Metrics
	// Notifier is the process's LISTEN connection; it must listen on
	// store.ChannelTaskQueued, store.ChannelSchedulerWake and
	// store.ChannelTaskStopped. When nil, the
	// scheduler runs a notifier of its own.
	Notifier *notifier.Notifier
	// Alerts, if set, delivers the alert outbox from this scheduler, in
	// goroutines of its own (see internal/alerts); its Store defaults to
	// the scheduler's.
	Alerts *alerts.Deliverer
}

func (c *Config) defaults() {
	if c.Workers <= 0 {
		c.Workers = 16
	}
	if c.ZombieThreshold <= 0 {
		c.ZombieThreshold = 30 * time.Second
	}
	if c.LoopInterval <= 0 {
		c.LoopInterval = time.Second
	}
	if c.SyncInterval <= 0 {
		c.SyncInterval = 2 * time.Second
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = 30 * time.Second
	}
	if c.Limits.DefaultSlot <= 0 {
		c.Limits.DefaultSlot = 128
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
}

// Scheduler is one scheduler process's engine: the loop and the workers.
type Scheduler struct {
	cfg    Config
	store  *store.Store
	ops    *operators.Registry
	parser *dag.Parser
	dags   *dagCache
	exec   *executor.Executor
	log    hclog.Logger
	id     string

	loopWake  chan struct{}
	claimWake chan struct{}
	outcomes  chan *finished

	mu      sync.Mutex
	running map[int64]*runningTask // by task instance id
	slots   *slots

	beat *heartbeat.Heartbeat

	stopping atomic.Bool // set when shutdown begins: claim nothing more
	gate     startGate   // held by a start pass during a storm: claim later
	folder   *folderState
	// pools is the pool slots the workers claim under: the pools table,
	// read each loop pass (cfg.Limits until the first read).
	pools atomic.Pointer[store.Limits]
}

// New returns a scheduler; Run starts it.
func New(st *store.Store, ops *operators.Registry, cfg Config) *Scheduler {
	cfg.defaults()
	parser := dag.NewParser(ops.Schemas())
	parser.PausedAtCreation = cfg.PausedAtCreation
	dags := newDagCache(parser)
	id := newInstanceID()
	return &Scheduler{
		cfg:    cfg,
		store:  st,
		ops:    ops,
		parser: parser,
		dags:   dags,
		exec: &executor.Executor{Operators: ops, Connections: cfg.Connections,
			LoadDAG: func(ctx context.Context, hash string) (*dag.DAG, error) { return dags.get(ctx, st.Q, hash) }},
		log:       cfg.Logger,
		id:        id,
		beat:      heartbeat.New(st, id, "scheduler", cfg.ZombieThreshold, cfg.HeartbeatInterval, cfg.Logger),
		loopWake:  make(chan struct{}, 1),
		claimWake: make(chan struct{}, 1),
		outcomes:  make(chan *finished, 1024),
		running:   map[int64]*runningTask{},
		slots:     &slots{free: cfg.Workers},
		folder:    newFolderState(parser),
	}
}

// ID is this scheduler's instance id (its heartbeat row, the owner of the
// task instances it runs).
func (s *Scheduler) ID() string { return s.id }

func newInstanceID() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("scheduler-%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Run runs the scheduler until ctx is cancelled, then shuts down cleanly:
// it stops claiming, gives running tasks the grace period, stops the rest
// (they go up_for_retry) and removes its heartbeat. No task it ran is left
// running.
func (s *Scheduler) Run(ctx context.Context) error {
	n, ownNotifier := s.cfg.Notifier, s.cfg.Notifier == nil
	if ownNotifier {
		n = notifier.New(s.store.Pool.Config().ConnConfig, s.log, store.ChannelTaskQueued, store.ChannelSchedulerWake, store.ChannelTaskStopped)
	}
	subs, err := s.subscribe(n)
	if err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	defer subs.close()
	if err := s.beat.Beat(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it started
		}
		return err
	}
	if err := s.store.UpsertPools(ctx, s.cfg.Limits.Pools); err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	s.log.Info("scheduler started", "id", s.id, "workers", s.cfg.Workers, "dags_folder", s.cfg.DagsFolder)

	// Tasks run under their own context so a shutdown can grant them grace.
	taskCtx, stopTasks := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stopTasks(nil)

	var bg sync.WaitGroup
	completerCtx, stopCompleter := context.WithCancel(context.WithoutCancel(ctx))
	completerDone := make(chan struct{})
	go func() { defer close(completerDone); s.completer(completerCtx, taskCtx) }()

	if ownNotifier {
		bg.Add(1)
		go func() { defer bg.Done(); n.Run(ctx) }()
	}
	bg.Add(5)
	go func() { defer bg.Done(); s.syncLoop(ctx) }()
	go func() { defer bg.Done(); s.listen(ctx, subs) }()
	// After each beat, stop tasks that are no longer ours to run (cleared,
	// or failed as zombies by another scheduler after a long pause).
	go func() { defer bg.Done(); s.beat.Run(ctx, s.stopLostTasks) }()
	go func() { defer bg.Done(); s.loop(ctx, taskCtx) }()
	go func() { defer bg.Done(); s.claimer(ctx, taskCtx) }()
	if d := s.cfg.Alerts; d != nil {
		if d.Store == nil {
			d.Store = s.store
		}
		bg.Add(1)
		go func() { defer bg.Done(); d.Run(ctx) }()
	}
	logFlusherDone := make(chan struct{})
	go func() { defer close(logFlusherDone); s.flushLogsLoop(completerCtx) }()

	<-ctx.Done()
	s.stopping.Store(true) // the completer stops claiming too
	bg.Wait()
	s.log.Info("scheduler stopping", "running_tasks", s.runningCount(), "grace", s.cfg.ShutdownGrace)
	if !s.waitIdle(s.cfg.ShutdownGrace) {
		stopTasks(executor.ErrShutdown)
		s.waitIdle(time.Minute)
	}
	stopCompleter()
	<-completerDone
	<-logFlusherDone
	cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.beat.Remove(cleanup); err != nil {
		s.log.Warn("remove heartbeat", "error", err)
	}
	s.log.Info("scheduler stopped")
	return nil
}

// Running is how many tries this scheduler runs now.
func (s *Scheduler) Running() int { return s.runningCount() }

func (s *Scheduler) runningCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.running)
}

// waitIdle waits until no task runs, up to d; it reports whether that happened.
func (s *Scheduler) waitIdle(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if s.runningCount() == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stopLostTasks stops running tasks whose rows say they are no longer ours.
func (s *Scheduler) stopLostTasks(ctx context.Context) {
	s.mu.Lock()
	ids := make([]int64, 0, len(s.running))
	for id := range s.running {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	lost, err := s.store.NotRunningAnyMore(ctx, s.id, ids)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range lost {
		if rt, ok := s.running[id]; ok && rt.claimedAt.Before(time.Now().Add(-time.Second)) {
			rt.cancel(errKilled)
		}
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// slots counts free worker slots. Claims reserve slots before they ask the
// database for work, so the claimer and the completer (which claims the next
// tasks in the transaction that queued them) never start more than Workers
// tasks, and never block each other.
//
// A release wakes the claimer only when a claim found no slot free since
// the last such wake (wanted): then queued tasks may be waiting for the
// slot. Waking it at every release made it claim (and hold every free slot)
// while the completer was queueing a finished task's downstream, so the
// completer's own claim found no slot and a chain's every step waited for
// another claim.
type slots struct {
	mu     sync.Mutex
	free   int
	wanted bool // a claim found no free slot since the last release that woke the claimer
}

// reserve takes up to n free slots and returns how many it took.
func (s *slots) reserve(n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n > 0 && s.free == 0 {
		s.wanted = true
	}
	n = min(n, s.free)
	s.free -= n
	return n
}

// release gives n slots back and reports whether the claimer should be
// woken: a claim wanted slots while none were free.
func (s *slots) release(n int) (wake bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.free += n
	wake = s.wanted && n > 0
	if wake {
		s.wanted = false
	}
	return wake
}

// releaseSlots gives n slots back and wakes the claimer if a claim wanted
// them.
func (s *Scheduler) releaseSlots(n int) {
	if s.slots.release(n) {
		signal(s.claimWake)
	}
}

// available is how many slots are free now.
func (s *slots) available() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.free
}

// Package daemon wires podflow's long-running processes — the scheduler and
// (later) the triggerer — from configuration, for cmd/scheduler,
// cmd/triggerer and `podflow standalone` alike, so they take the same flags.
package daemon

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/podflow/podflow/internal/alerts"
	"github.com/podflow/podflow/internal/config"
	"github.com/podflow/podflow/internal/dagwatch"
	"github.com/podflow/podflow/internal/health"
	"github.com/podflow/podflow/internal/kube"
	"github.com/podflow/podflow/internal/metrics"
	"github.com/podflow/podflow/internal/notifier"
	"github.com/podflow/podflow/internal/scheduler"
	"github.com/podflow/podflow/internal/secrets"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/internal/triggerer"
	"github.com/podflow/podflow/operators"
	"github.com/podflow/podflow/operators/builtin"
)

// BindCommonFlags binds the flags every podflow process takes.
func BindCommonFlags(fs *pflag.FlagSet, f *config.Flags) {
	fs.StringVar(&f.Config, "config", "", "podflow.yaml to read (default ./podflow.yaml when present; env PODFLOW_CONFIG)")
	fs.StringVar(&f.DagsFolder, "dags-folder", "", "DAGs folder (env PODFLOW_DAGS_FOLDER, default ./dags)")
	fs.StringVar(&f.DatabaseURL, "database-url", "", "PostgreSQL URL (env DATABASE_URL)")
}

// BindSchedulerFlags binds the scheduler's own flags.
func BindSchedulerFlags(fs *pflag.FlagSet, f *config.Flags) {
	fs.IntVar(&f.Workers, "workers", 0, "worker slots: task instances run at once by this scheduler (env PODFLOW_WORKERS, default 16)")
	fs.DurationVar(&f.ZombieThreshold, "zombie-threshold", 0, "a running task whose scheduler is silent this long is failed or retried (default 30s)")
	fs.StringVar(&f.HealthAddr, "health-addr", "", "address for /healthz and /metrics, e.g. :8080 (env PODFLOW_HEALTH_ADDR; off when empty)")
}

// Logger is the daemons' logger: PODFLOW_LOG_LEVEL (default info), JSON
// when PODFLOW_LOG_JSON is set.
func Logger(name string) hclog.Logger {
	level := hclog.LevelFromString(os.Getenv("PODFLOW_LOG_LEVEL"))
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: level, JSONFormat: os.Getenv("PODFLOW_LOG_JSON") != "", Output: os.Stderr})
}

// Connections adapts the configuration to operators.Connections.
type Connections struct{ Config *config.Config }

// Connection returns a named connection, PODFLOW_CONN_<ID> first.
func (c Connections) Connection(id string) (map[string]any, bool) {
	m, err := c.Config.Connection(id, os.Getenv)
	if err != nil || m == nil {
		return nil, false
	}
	return m, true
}

// Secrets builds a process's secret resolver from the configuration: the
// keyring, the masker (Airflow's sensitive names plus
// sensitive_var_conn_names), podflow.yaml's connections and, when st is
// not nil, the database's variables and connections.
func Secrets(cfg *config.Config, st *store.Store) (*secrets.Resolver, error) {
	keys, err := secrets.ParseKeyring(cfg.SecretKey.Reveal())
	if err != nil {
		return nil, fmt.Errorf("secret key (PODFLOW_SECRET_KEY, secret_key or secret_key_file): %w", err)
	}
	m := secrets.NewMasker(cfg.SensitiveVarConnNames)
	r := &secrets.Resolver{FileConnections: cfg.Connections, Masker: m}
	if k := cfg.KubernetesSecrets; k != nil {
		cl, err := kube.NewClients().Get(kube.Cluster{InCluster: k.InCluster, ConfigFile: k.ConfigFile, Context: k.ClusterContext})
		if err != nil {
			return nil, fmt.Errorf("secrets_backend.kubernetes: %w", err)
		}
		r.Backend = &secrets.KubeBackend{Client: cl.Kubernetes, Namespace: k.Namespace, Selector: k.LabelSelector,
			TTL: cfg.KubernetesSecretsTTL, Masker: m}
	}
	if st != nil {
		r.Vault = &secrets.Vault{Store: st, Keys: keys, Masker: m}
	}
	return r, nil
}

// Operators returns the operator registry of a command that runs no
// daemon (the CLI).
func Operators(logger hclog.Logger) *operators.Registry {
	return builtin.Registry(builtin.Deps{Logger: logger})
}

// SchedulerConfig turns the configuration into the scheduler's.
func SchedulerConfig(cfg *config.Config, logger hclog.Logger) scheduler.Config {
	return scheduler.Config{
		DagsFolder:       cfg.DagsFolder,
		Workers:          cfg.Workers,
		PausedAtCreation: cfg.DagsArePausedAtCreation,
		Limits:           store.Limits{Pools: cfg.Pools, DefaultSlot: config.DefaultPoolSlots},
		ZombieThreshold:  cfg.ZombieThreshold,
		MaxMapLength:     cfg.MaxMapLength,
		Connections:      Connections{Config: cfg},
		Logger:           logger,
	}
}

// OpenStore connects to the database and applies migrations.
func OpenStore(ctx context.Context, url string) (*store.Store, error) {
	if url == "" {
		return nil, fmt.Errorf("no database: set DATABASE_URL (or --database-url, or database_url in podflow.yaml)")
	}
	openCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return store.Open(openCtx, url)
}

// BindTriggererFlags binds the triggerer's own flags.
func BindTriggererFlags(fs *pflag.FlagSet, f *config.Flags) {
	fs.IntVar(&f.Capacity, "capacity", 0, "triggers this triggerer runs at once (env PODFLOW_CAPACITY, default 1000)")
}

// TriggererConfig turns the configuration into the triggerer's.
func TriggererConfig(cfg *config.Config, logger hclog.Logger) triggerer.Config {
	return triggerer.Config{Capacity: cfg.Capacity, HeartbeatThreshold: cfg.ZombieThreshold, Logger: logger}
}

// Run runs the daemons asked for — a scheduler, a triggerer or both (podflow
// standalone) — in this process until ctx ends, with /healthz and /metrics
// on cfg.HealthAddr when set.
func Run(ctx context.Context, st *store.Store, cfg *config.Config, logger hclog.Logger, withScheduler, withTriggerer bool) error {
	return RunParts(ctx, st, cfg, logger, Parts{Scheduler: withScheduler, Triggerer: withTriggerer})
}

// Parts are what one process runs.
type Parts struct {
	Scheduler, Triggerer bool
	// Webserver, when set, builds the web UI and REST API server that runs
	// beside them (podflow standalone's --webserver-addr), given the
	// process's metrics registry; see internal/webserver.
	Webserver func(reg *prometheus.Registry, logger hclog.Logger) (run func(context.Context) error, err error)
}

// RunParts is Run for any mix of scheduler, triggerer and webserver.
func RunParts(ctx context.Context, st *store.Store, cfg *config.Config, logger hclog.Logger, p Parts) error {
	withScheduler, withTriggerer := p.Scheduler, p.Triggerer
	res, err := Secrets(cfg, st)
	if err != nil {
		return err
	}
	// Known secrets are masked from the first line on; those added to the
	// database later are masked when a task resolves them. A row that cannot
	// be decrypted must not stop the other DAGs: it fails the tasks that use it.
	if err := res.LoadMasker(ctx, os.Environ()); err != nil {
		logger.Warn("not every secret could be loaded for masking", "error", err)
	}
	m := metrics.New()
	m.RegisterDatabase(st)
	runs := []func(context.Context) error{func(ctx context.Context) error { reloadMasker(ctx, res, logger); return nil }}
	clients := kube.NewClients()
	clients.ObserveRequests(func(method string, code int) {
		m.PodAPIRequests.WithLabelValues(method, strconv.Itoa(code)).Inc()
	})
	// One LISTEN connection for the whole process, shared by its daemons
	// and by the waits on other DAGs' states (dagwatch).
	n := notifier.New(st.Pool.Config().ConnConfig, logger.Named("notifier"),
		store.ChannelTaskQueued, store.ChannelSchedulerWake, store.ChannelTaskStopped, store.ChannelTriggerCreated,
		store.ChannelStateChanged)
	runs = append(runs, func(ctx context.Context) error { n.Run(ctx); return nil })
	hub, err := dagwatch.New(st, n, logger.Named("dagwatch"))
	if err != nil {
		return err
	}
	runs = append(runs, hub.Run)
	deps := builtin.Deps{Logger: logger, Clients: clients, Connections: res.ForTasks(),
		FileRoots: append([]string{cfg.DagsFolder}, cfg.AllowedPaths...), Hub: hub, Store: st}
	checks := []health.Check{{Name: "database", Run: st.Ping}}
	// One registry: the pod operator and the pod trigger share its clients
	// and its pod watches.
	ops := builtin.Registry(deps)
	if withScheduler {
		sc := SchedulerConfig(cfg, logger.Named("scheduler"))
		sc.Metrics = m
		sc.Notifier = n
		sc.Connections = res.ForTasks()
		sc.Mask = res.Masker.Mask
		d, err := Deliverer(st, cfg, logger.Named("alerts"), m)
		if err != nil {
			return err
		}
		sc.Alerts = d
		s := scheduler.New(st, ops, sc)
		checks = append(checks, heartbeatCheck(st, s.ID(), cfg.ZombieThreshold))
		runs = append(runs, s.Run)
	}
	if withTriggerer {
		tc := TriggererConfig(cfg, logger.Named("triggerer"))
		tc.Metrics = m
		tc.Notifier = n
		t := triggerer.New(st, ops.Triggers(), tc)
		m.RegisterTriggererCapacity(t.Running, t.Capacity())
		checks = append(checks, heartbeatCheck(st, t.ID(), cfg.ZombieThreshold))
		runs = append(runs, t.Run)
	}
	if p.Webserver != nil {
		serve, err := p.Webserver(m.Registry, logger.Named("webserver"))
		if err != nil {
			return err
		}
		runs = append(runs, serve)
	}
	if cfg.HealthAddr != "" {
		h := health.Handler(m.Registry, checks...)
		runs = append(runs, func(ctx context.Context) error {
			return health.Serve(ctx, cfg.HealthAddr, h, func(a net.Addr) { logger.Info("serving /healthz and /metrics", "addr", a.String()) })
		})
	}
	errs := make(chan error, len(runs))
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, run := range runs {
		go func() {
			err := run(runCtx)
			if err != nil {
				cancel() // one part failing stops the process
			}
			errs <- err
		}()
	}
	var first error
	for range runs {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// maskerReload is how often a daemon re-reads the secrets it masks, so a
// secret added to the database (or a Kubernetes Secret) after it started is
// masked even in a task that never resolves it through podflow.
const maskerReload = 30 * time.Second

func reloadMasker(ctx context.Context, res *secrets.Resolver, logger hclog.Logger) {
	t := time.NewTicker(maskerReload)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := res.LoadMasker(ctx, os.Environ()); err != nil && ctx.Err() == nil {
			logger.Debug("reload secrets to mask", "error", err)
		}
	}
}

// Deliverer is the alert delivery of a scheduler: the config's notifiers
// (their secrets read now: a missing one stops the start with its name),
// its retry policy, and the metrics.
func Deliverer(st *store.Store, cfg *config.Config, logger hclog.Logger, m *metrics.Metrics) (*alerts.Deliverer, error) {
	senders, err := alerts.Senders(cfg, os.Getenv)
	if err != nil {
		return nil, fmt.Errorf("podflow.yaml notifiers: %w", err)
	}
	a := cfg.Alerts
	d := &alerts.Deliverer{Store: st, Senders: senders, BaseURL: a.BaseURL, Log: logger,
		Policy: alerts.Policy{Backoff: a.Backoff, MaxBackoff: a.MaxBackoff, GiveUpAfter: a.GiveUpAfter, Timeout: a.Timeout}}
	if m != nil {
		d.Sent = func(notifier, result string) { m.AlertsSent.WithLabelValues(notifier, result).Inc() }
		m.RegisterOutbox(st.OutboxDepth)
	}
	return d, nil
}

// heartbeatCheck fails when the process's heartbeat is missing or older
// than the threshold (its loops are stuck or the database lags).
func heartbeatCheck(st *store.Store, id string, threshold time.Duration) health.Check {
	return health.Check{Name: "heartbeat", Run: func(ctx context.Context) error {
		age, ok, err := st.HeartbeatAge(ctx, id)
		switch {
		case err != nil:
			return err
		case !ok:
			return fmt.Errorf("no heartbeat of %s yet", id)
		case age > threshold:
			return fmt.Errorf("heartbeat of %s is %s old (threshold %s)", id, age.Round(time.Second), threshold)
		}
		return nil
	}}
}

// Command is the main command of a daemon binary (cmd/scheduler,
// cmd/triggerer): flags, configuration, the database, then Run.
func Command(name, short string, withScheduler, withTriggerer bool) *cobra.Command {
	var flags config.Flags
	cmd := &cobra.Command{
		Use:           name,
		Short:         short,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(flags, os.Getenv)
			if err != nil {
				return err
			}
			st, err := OpenStore(cmd.Context(), cfg.DatabaseURL)
			if err != nil {
				return err
			}
			defer st.Close()
			return Run(cmd.Context(), st, cfg, Logger(name), withScheduler, withTriggerer)
		},
	}
	BindCommonFlags(cmd.Flags(), &flags)
	if withScheduler {
		BindSchedulerFlags(cmd.Flags(), &flags)
	}
	if withTriggerer {
		BindTriggererFlags(cmd.Flags(), &flags)
		if !withScheduler {
			cmd.Flags().DurationVar(&flags.ZombieThreshold, "heartbeat-threshold", 0, "a triggerer silent this long loses its triggers to the others (default 30s)")
			cmd.Flags().StringVar(&flags.HealthAddr, "health-addr", "", "address for /healthz and /metrics, e.g. :8080 (env PODFLOW_HEALTH_ADDR; off when empty)")
		}
	}
	return cmd
}

// Main runs a daemon command until SIGINT or SIGTERM and exits.
func Main(cmd *cobra.Command) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cmd.ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, cmd.Name()+":", err)
		os.Exit(1)
	}
}

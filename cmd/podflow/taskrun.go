package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/internal/templating"
	"github.com/podflow/podflow/operators"
	"github.com/podflow/podflow/xcomstore"
)

// runFlags are how `test` and `dry-run` choose the run a task renders in:
// a sample run (logical date now, --conf as dag_run.conf) or, with
// --run-id, a real run's conf, dates and XComs from the database; --xcom
// supplies an upstream's XCom by hand (over the run's).
type runFlags struct {
	conf  confFlags
	runID string
	xcoms []string
}

func (f *runFlags) register(cmd *cobra.Command) {
	f.conf.register(cmd)
	cmd.Flags().StringVar(&f.runID, "run-id", "", "render with this run's conf, dates and XComs (needs the database)")
	cmd.Flags().StringArrayVar(&f.xcoms, "xcom", nil, "an XCom for xcom_pull, TASK=JSON (return_value) or TASK:KEY=JSON; repeatable")
}

// taskRun builds the run. sampleKind is the run type of a sample run id
// ("test", "manual"). close releases the database, if one was opened.
func (f *runFlags) taskRun(ctx context.Context, app *App, cmd *cobra.Command, d *dag.DAG, sampleKind string) (run operators.TaskRun, close func(), err error) {
	close = func() {}
	given, err := parseXComFlags(f.xcoms)
	if err != nil {
		return run, close, err
	}
	if f.runID == "" {
		_, confMap, err := f.conf.load(cmd.InOrStdin())
		if err != nil {
			return run, close, err
		}
		if err := d.CheckConf(confMap); err != nil {
			return run, close, err
		}
		now := time.Now().UTC().Truncate(time.Second)
		return operators.TaskRun{RunID: dag.RunID(sampleKind, now), TryNumber: 1, LogicalDate: now, Conf: confMap,
			XCom: layeredXCom{given: given, under: noXCom{}}}, close, nil
	}
	if f.conf.inline != "" || f.conf.file != "" {
		return run, close, &exitError{code: 2, msg: "--conf with --run-id: the run's own conf is used; drop one of them"}
	}
	st, err := app.Store(ctx)
	if err != nil {
		return run, close, err
	}
	r, err := findRun(ctx, st, d.ID, f.runID)
	if err != nil {
		st.Close()
		return run, close, err
	}
	return runOf(st, r, given), st.Close, nil
}

// runOf is the TaskRun of a stored run, its XComs read from the database
// under the given ones.
func runOf(st *store.Store, r store.Run, given map[string]any) operators.TaskRun {
	conf, err := dag.ParseConf(r.Conf)
	if err != nil {
		conf = map[string]any{} // stored confs were checked when the run was created
	}
	return operators.TaskRun{RunID: r.RunID, TryNumber: 1, LogicalDate: r.LogicalDate,
		DataIntervalStart: r.DataIntervalStart, DataIntervalEnd: r.DataIntervalEnd, Conf: conf,
		XCom: layeredXCom{given: given, under: st.XComPuller(r.DagID, r.RunID)}}
}

// parseXComFlags reads --xcom TASK=JSON and TASK:KEY=JSON.
func parseXComFlags(flags []string) (map[string]any, error) {
	out := map[string]any{}
	for _, f := range flags {
		target, value, ok := strings.Cut(f, "=")
		task, key, hasKey := strings.Cut(target, ":")
		if !hasKey {
			key = xcomstore.ReturnValue
		}
		if !ok || task == "" || key == "" {
			return nil, &exitError{code: 2, msg: fmt.Sprintf("--xcom %q: want TASK=JSON or TASK:KEY=JSON", f)}
		}
		if !json.Valid([]byte(value)) {
			return nil, &exitError{code: 2, msg: fmt.Sprintf("--xcom %s: the value is not JSON (a string needs quotes: %s='\"text\"')", target, target)}
		}
		out[task+"/"+key] = json.RawMessage(value)
	}
	return out, nil
}

// layeredXCom answers xcom_pull from the --xcom values first, then from
// under (a run's stored XComs, or nothing).
type layeredXCom struct {
	given map[string]any
	under templating.XComPuller
}

func (l layeredXCom) Pull(ctx context.Context, taskID, key string) (any, bool, error) {
	if v, ok := l.given[taskID+"/"+key]; ok {
		return v, true, nil
	}
	return l.under.Pull(ctx, taskID, key)
}

type noXCom struct{}

func (noXCom) Pull(context.Context, string, string) (any, bool, error) { return nil, false, nil }

// newTasksRenderCmd is `podflow tasks render DAG RUN TASK`, as `airflow
// tasks render`: every templated option of the task, rendered in the run
// (the DAG version the run uses, its conf, dates and XComs).
func newTasksRenderCmd(app *App) *cobra.Command {
	var xcoms []string
	cmd := &cobra.Command{
		Use:   "render DAG_ID RUN_ID TASK_ID",
		Short: "Print every templated option of a task rendered in a run (as airflow tasks render)",
		Args:  cobra.ExactArgs(3),
		RunE: app.withStore(func(cmd *cobra.Command, args []string, st *store.Store) error {
			ctx := cmd.Context()
			given, err := parseXComFlags(xcoms)
			if err != nil {
				return err
			}
			r, err := findRun(ctx, st, args[0], args[1])
			if err != nil {
				return err
			}
			d, err := app.RunDAG(ctx, st, r)
			if err != nil {
				return err
			}
			task := d.Task(args[2])
			if task == nil {
				return &exitError{code: 1, msg: withSuggestion(fmt.Sprintf("DAG %s has no task %q", d.ID, args[2]), args[2], d.TaskIDs())}
			}
			op, ok := app.Operators().Lookup(task.Operator)
			if !ok {
				return fmt.Errorf("task %s: unknown operator %q", task.ID, task.Operator)
			}
			res, err := app.Secrets(st)
			if err != nil {
				return err
			}
			mask := res.Masker.Mask
			tc := operators.NewTaskContext(d, task, runOf(st, r, given), &printLog{w: cmd.ErrOrStderr(), mask: mask}, res.ForTasks())
			out := cmd.OutOrStdout()
			failed := 0
			for _, opt := range op.Schema().Options {
				v, set := task.Options[opt.Name]
				if !opt.Templated || !set {
					continue
				}
				rendered, err := operators.RenderValue(ctx, tc, opt.Name, v)
				if err != nil {
					fmt.Fprintf(out, "# %s: %s\n", opt.Name, mask(err.Error()))
					failed++
					continue
				}
				fmt.Fprintf(out, "# ----------------------------------------------------------\n# property: %s\n# ----------------------------------------------------------\n", opt.Name)
				// Rendered fields show secrets as ***, as Airflow's UI does.
				if s, ok := rendered.(string); ok {
					fmt.Fprintln(out, mask(s))
				} else {
					b, _ := json.MarshalIndent(res.Masker.MaskValue(rendered), "", "  ")
					fmt.Fprintln(out, string(b))
				}
			}
			if failed > 0 {
				return &exitError{code: 1, msg: fmt.Sprintf("%d option(s) of task %s do not render", failed, task.ID)}
			}
			return nil
		}),
	}
	cmd.Flags().StringArrayVar(&xcoms, "xcom", nil, "an XCom for xcom_pull, TASK=JSON or TASK:KEY=JSON, over the run's; repeatable")
	return cmd
}

package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/mapping"
	"github.com/podflow/podflow/operators"
	"github.com/podflow/podflow/operators/kubernetes"
)

func init() {
	extraCommands = append(extraCommands, func(app *App, root, _ *cobra.Command) {
		root.AddCommand(newDryRunCmd(app))
	})
}

func newDryRunCmd(app *App) *cobra.Command {
	var runf runFlags
	cmd := &cobra.Command{
		Use:   "dry-run DAG_FILE_OR_ID TASK_ID",
		Short: "Print the pod manifest a kubernetes_pod task would create, touching no cluster",
		Long: "Print the complete Pod manifest (YAML, apiVersion and kind included) that a kubernetes_pod task " +
			"would create, with templates rendered in a sample context (logical date now, run_id manual__<now>, " +
			"--conf as dag_run.conf, --xcom for xcom_pull) or, with --run-id, in a real run's conf, dates and XComs. Only the manifest goes to stdout, so `podflow dry-run DAG TASK | kubectl " +
			"create -f -` works; messages go to stderr. No cluster is contacted.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := app.FindDAG(args[0])
			if err != nil {
				return err
			}
			task := d.Task(args[1])
			if task == nil {
				return &exitError{code: 1, msg: withSuggestion(fmt.Sprintf("DAG %s has no task %q", d.ID, args[1]), args[1], d.TaskIDs())}
			}
			if task.Operator != kubernetes.OperatorName {
				return fmt.Errorf("task %s of DAG %s is a %s task; dry-run prints the pod of kubernetes_pod tasks", task.ID, d.ID, task.Operator)
			}
			run, closeRun, err := runf.taskRun(cmd.Context(), app, cmd, d, "manual")
			if err != nil {
				return err
			}
			defer closeRun()
			res, closeSecrets, err := app.taskSecrets(cmd.Context())
			if err != nil {
				return err
			}
			defer closeSecrets()
			op, _ := app.Operators().Lookup(kubernetes.OperatorName)
			pods, ok := op.(*kubernetes.Operator)
			if !ok {
				pods = kubernetes.New()
			}
			if task.Mapped() {
				if task, err = firstMappedInstance(cmd, d, task, run); err != nil {
					return err
				}
				run.Mapped, run.MapIndex = true, 0
			}
			tc := operators.NewTaskContext(d, task, run, &printLog{w: cmd.ErrOrStderr(), mask: res.Masker.Mask}, res.ForTasks())
			pod, err := pods.DryRun(cmd.Context(), tc)
			if err != nil {
				return err
			}
			manifest, err := kubernetes.ManifestYAML(pod)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(manifest)
			return err
		},
	}
	runf.register(cmd)
	return cmd
}

// firstMappedInstance is instance 0 of a mapped task (see mappedInstance).
func firstMappedInstance(cmd *cobra.Command, d *dag.DAG, t *dag.Task, run operators.TaskRun) (*dag.Task, error) {
	return mappedInstance(cmd, d, t, run, 0)
}

// mappedInstance is instance index of a mapped task, when its list can be
// known without running anything (a literal, params, conf, or the XComs of
// --run-id / --xcom); it says on stderr what it maps over. Otherwise a
// clear error says why not.
func mappedInstance(cmd *cobra.Command, d *dag.DAG, t *dag.Task, run operators.TaskRun, index int) (*dag.Task, error) {
	tc := operators.NewTaskContext(d, t, run, &printLog{w: io.Discard}, nil)
	render := func(option, src string) (string, error) { return operators.Render(cmd.Context(), tc, option, src) }
	args, err := mapping.Resolve(t, render, 0)
	if err != nil {
		return nil, &exitError{code: 1, msg: fmt.Sprintf("task %s is mapped and its list is known only at run time (%v); "+
			"give --run-id of a run whose upstream tasks are done, or --xcom, to see an instance's pod", t.ID, err)}
	}
	if len(args) == 0 {
		return nil, &exitError{code: 1, msg: fmt.Sprintf("task %s maps over an empty list: it would be skipped", t.ID)}
	}
	if index < 0 || index >= len(args) {
		return nil, &exitError{code: 1, msg: fmt.Sprintf("task %s maps over %d instances: there is no map index %d", t.ID, len(args), index)}
	}
	b, err := json.Marshal(args[index])
	if err != nil {
		return nil, err
	}
	all, err := json.Marshal(args)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "task %s maps over %d instances: %s\nthis is instance %d, with %s\n", t.ID, len(args), excerptBytes(all, 400), index, b)
	return mapping.Instance(t, b)
}

// excerptBytes is b, cut to about n bytes with "…" when longer.
func excerptBytes(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "…"
}

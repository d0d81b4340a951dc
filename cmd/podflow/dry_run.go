package main

import (
	"fmt"

	"github.com/spf13/cobra"

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

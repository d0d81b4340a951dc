package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/podflow/podflow/operators"
)

func init() {
	extraCommands = append(extraCommands, func(app *App, root, _ *cobra.Command) {
		root.AddCommand(newTestCmd(app))
	})
}

func newTestCmd(app *App) *cobra.Command {
	var runf runFlags
	var mapIndex int
	cmd := &cobra.Command{
		Use:   "test DAG_FILE_OR_ID TASK_ID [--map-index N]",
		Short: "Run one task here and now, without a scheduler or database; its log goes to stdout",
		Long: "Run one task here and now, without a scheduler or database: templates render with a sample " +
			"context (logical date now, --conf as dag_run.conf; xcom_pull finds only --xcom values), or with --run-id " +
			"in a real run's conf, dates and XComs. {{ var.… }} and {{ conn.… }} read the environment, podflow.yaml and, when a " +
			"database is configured, its variables and connections; the log shows their secrets as ***. Exit 0 on success, 1 on failure.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			d, err := app.FindDAG(args[0])
			if err != nil {
				return err
			}
			task := d.Task(args[1])
			if task == nil {
				return &exitError{code: 1, msg: withSuggestion(fmt.Sprintf("DAG %s has no task %q", d.ID, args[1]), args[1], d.TaskIDs())}
			}
			op, ok := app.Operators().Lookup(task.Operator)
			if !ok {
				return fmt.Errorf("unknown operator %q", task.Operator)
			}
			run, closeRun, err := runf.taskRun(ctx, app, cmd, d, "test")
			if err != nil {
				return err
			}
			defer closeRun()
			sec, closeSecrets, err := app.taskSecrets(ctx)
			if err != nil {
				return err
			}
			defer closeSecrets()
			if task.Mapped() {
				if task, err = mappedInstance(cmd, d, task, run, mapIndex); err != nil {
					return err
				}
				run.Mapped, run.MapIndex = true, mapIndex
			}
			tc := operators.NewTaskContext(d, task, run, &printLog{w: cmd.OutOrStdout(), mask: sec.Masker.Mask}, sec.ForTasks())
			if task.ExecutionTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, task.ExecutionTimeout)
				defer cancel()
			}
			res, err := op.Execute(ctx, tc)
			switch {
			case err != nil && operators.IsSkip(err):
				fmt.Fprintf(cmd.OutOrStdout(), "task %s skipped: %v\n", task.ID, err)
				return nil
			case err != nil:
				return &exitError{code: 1, msg: sec.Masker.Mask(err.Error())}
			case res != nil && res.Deferral != nil:
				return &exitError{code: 1, msg: fmt.Sprintf("task %s deferred to a %s trigger: `podflow test` runs no triggerer; run it through the scheduler", task.ID, res.Deferral.Kind)}
			}
			if res != nil {
				for k, v := range res.XCom {
					b, _ := json.Marshal(v)
					fmt.Fprintf(cmd.OutOrStdout(), "xcom %s = %s\n", k, b)
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "task %s succeeded\n", task.ID)
			return nil
		},
	}
	cmd.Flags().IntVar(&mapIndex, "map-index", 0, "of a mapped task, which instance to run")
	runf.register(cmd)
	return cmd
}

// printLog writes a task's log to a terminal.
type printLog struct {
	mu   sync.Mutex
	w    io.Writer
	mask func(string) string // nil: none
}

func (l *printLog) Printf(format string, args ...any) {
	l.Line("podflow", fmt.Sprintf(format, args...))
}

func (l *printLog) Line(source, text string) { l.LineAt(time.Now(), source, text) }

// LineAt prints a line with its own time (a pod's log timestamps).
func (l *printLog) LineAt(at time.Time, source, text string) {
	if l.mask != nil {
		text = l.mask(text)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s [%s] %s\n", at.Local().Format("15:04:05.000"), source, text)
}

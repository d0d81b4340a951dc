package main

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/podflow/podflow/dag"
)

func newValidateCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "validate [PATH...]",
		Short: "Check DAG files and print every problem, file:line:col",
		Long: `Validate parses DAG files (each PATH a file or a folder, searched
recursively for *.yaml and *.yml; default: the DAGs folder) and checks
them without running anything. Every problem is printed to stderr as
path:line:col: message and the command exits 1. When all files are valid
it prints one line per DAG: its id, number of tasks, schedule and the
next run the schedule will create.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			paths := args
			if len(paths) == 0 {
				paths = []string{app.DagsFolder()}
			}
			folder := app.Parser().LoadPaths(paths...)
			errs := folder.AllErrors()
			if cfg, err := app.Config(); err == nil {
				for _, d := range folder.DAGs {
					errs = append(errs, d.CheckNotifiers(cfg.NotifierNames())...)
				}
			}
			if len(errs) > 0 {
				for _, e := range errs {
					fmt.Fprintln(cmd.ErrOrStderr(), e)
				}
				return &exitError{code: 1, msg: fmt.Sprintf("%s in %s", plural(len(errs), "problem"), plural(filesOf(errs), "file"))}
			}
			for _, d := range folder.DAGs {
				for _, uri := range dag.UnproducedAssets(d, folder.DAGs) {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s: DAG %s is scheduled on asset %s, which no task's outlets in %v produce: it never runs by itself\n",
						d.Path, d.ID, uri, paths)
				}
			}
			if len(folder.DAGs) == 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "no DAG files (*.yaml, *.yml) in %v\n", paths)
				return nil
			}
			return printDAGSummaries(cmd, folder.DAGs, time.Now())
		},
	}
}

// printDAGSummaries prints one line per DAG, by id.
func printDAGSummaries(cmd *cobra.Command, dags []*dag.DAG, now time.Time) error {
	sorted := append([]*dag.DAG(nil), dags...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ID < sorted[j].ID })
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "DAG_ID\tTASKS\tSCHEDULE\tNEXT RUN")
	for _, d := range sorted {
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\n", d.ID, len(d.Tasks), scheduleText(d), nextRunText(d, now))
	}
	return w.Flush()
}

// scheduleText shows a DAG's schedule with its timezone.
func scheduleText(d *dag.DAG) string {
	if d.Consumes() {
		mode := "assets: "
		if d.Assets.Any {
			mode = "assets (any): "
		}
		return mode + strings.Join(d.Assets.URIs, ", ")
	}
	if d.Schedule == "" {
		return "manual"
	}
	if d.Timezone != nil && d.Timezone != time.UTC {
		return d.Schedule + " (" + d.Timezone.String() + ")"
	}
	return d.Schedule
}

// nextRunText says when the schedule next creates a run, and for which
// logical date.
func nextRunText(d *dag.DAG, now time.Time) string {
	logical, due, ok := d.NextDue(now)
	if !ok {
		return "-"
	}
	const layout = "2006-01-02 15:04 MST"
	loc := d.Timezone
	if loc == nil {
		loc = time.UTC
	}
	if logical.Equal(due) {
		return due.In(loc).Format(layout)
	}
	return fmt.Sprintf("%s (logical date %s)", due.In(loc).Format(layout), logical.In(loc).Format(layout))
}

// plural formats a count with its noun.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// filesOf counts the files errs are in.
func filesOf(errs []*dag.Error) int {
	files := map[string]bool{}
	for _, e := range errs {
		files[e.Path] = true
	}
	return len(files)
}

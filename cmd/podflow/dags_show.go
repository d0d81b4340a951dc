package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/podflow/podflow/dag"
)

func newDagsShowCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "show FILE_OR_DAG_ID",
		Short: "Print a DAG's tasks in the order they can run, with their upstreams",
		Long: `Show parses one DAG, from a file or by id from the DAGs folder, and
prints its settings and its tasks in topological order: every task after
the tasks it waits for.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := app.FindDAG(args[0])
			if err != nil {
				return err
			}
			return printDAG(cmd, d, time.Now())
		},
	}
}

// printDAG prints a DAG's header and its task graph.
func printDAG(cmd *cobra.Command, d *dag.DAG, now time.Time) error {
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "dag_id:    %s\n", d.ID)
	if d.Description != "" {
		fmt.Fprintf(out, "about:     %s\n", d.Description)
	}
	fmt.Fprintf(out, "file:      %s\n", d.Path)
	fmt.Fprintf(out, "schedule:  %s\n", scheduleText(d))
	fmt.Fprintf(out, "next run:  %s\n", nextRunText(d, now))
	fmt.Fprintln(out)

	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TASK\tOPERATOR\tTRIGGER RULE\tUPSTREAM")
	for _, t := range d.TopoOrder() {
		upstream := "-"
		if len(t.Upstream) > 0 {
			upstream = strings.Join(t.Upstream, ", ")
		}
		op := t.Operator
		if t.Mapped() {
			op += " [mapped]"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", t.ID, op, t.TriggerRule, upstream)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	printGroups(out, d)
	return nil
}

// printGroups draws the DAG's task groups as a tree, each with its tasks.
func printGroups(out io.Writer, d *dag.DAG) {
	if len(d.Groups) == 0 {
		return
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "task groups:")
	var draw func(parent, indent string)
	draw = func(parent, indent string) {
		for _, g := range d.Groups {
			if g.Parent != parent {
				continue
			}
			fmt.Fprintf(out, "%s[%s]\n", indent, g.ID)
			for _, t := range d.Tasks {
				if t.Group == g.ID {
					fmt.Fprintf(out, "%s  - %s\n", indent, t.ID)
				}
			}
			draw(g.ID, indent+"  ")
		}
	}
	draw("", "  ")
}

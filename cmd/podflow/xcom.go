package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/podflow/podflow/internal/store"

	"github.com/podflow/podflow/xcomstore"
)

func init() {
	extraCommands = append(extraCommands, func(app *App, root, _ *cobra.Command) {
		x := &cobra.Command{Use: "xcom", Short: "Read XCom values"}
		x.AddCommand(newXComGetCmd(app))
		root.AddCommand(x)
	})
}

func newXComGetCmd(app *App) *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use:   "get DAG_ID RUN_ID TASK_ID",
		Short: "Print a task's XCom value as JSON",
		Args:  cobra.ExactArgs(3),
		RunE: app.withStore(func(cmd *cobra.Command, args []string, st *store.Store) error {
			ctx := cmd.Context()
			raw, ok, err := st.XCom(ctx, args[0], args[1], args[2], key)
			if err != nil {
				return err
			}
			if !ok {
				run, err := findRun(ctx, st, args[0], args[1])
				if err != nil {
					return err
				}
				if _, err := findTaskInstance(ctx, st, run, args[2]); err != nil {
					return err
				}
				keys, err := st.XComKeys(ctx, args[0], args[1], args[2])
				if err != nil {
					return err
				}
				msg := fmt.Sprintf("no XCom %q for task %s in run %s of %s", key, args[2], args[1], args[0])
				if len(keys) == 0 {
					msg += "; the task pushed none"
				} else {
					msg += fmt.Sprintf("; its keys: %s (choose with --key)", strings.Join(keys, ", "))
				}
				return &exitError{code: 1, msg: msg}
			}
			// XComs are stored as the task pushed them (downstream tasks read
			// them); they are shown masked.
			fmt.Fprintln(cmd.OutOrStdout(), app.Masker(ctx, st).Mask(string(raw)))
			return nil
		}),
	}
	cmd.Flags().StringVar(&key, "key", xcomstore.ReturnValue, "XCom key")
	return cmd
}

package main

import (
	"fmt"

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
				return &exitError{code: 1, msg: fmt.Sprintf("no XCom %q for task %s in run %s of %s", key, args[2], args[1], args[0])}
			}
			fmt.Fprintln(cmd.OutOrStdout(), string(raw))
			return nil
		}),
	}
	cmd.Flags().StringVar(&key, "key", xcomstore.ReturnValue, "XCom key")
	return cmd
}

package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/podflow/podflow/internal/auth"
	"github.com/podflow/podflow/internal/store"
)

func init() {
	extraCommands = append(extraCommands, func(app *App, root, _ *cobra.Command) {
		keys := &cobra.Command{Use: "api-keys", Short: "Manage long-lived API keys (sent as Authorization: Bearer)"}
		keys.AddCommand(newAPIKeysCreateCmd(app), newAPIKeysListCmd(app), newAPIKeysRevokeCmd(app))
		root.AddCommand(keys)
	})
}

func newAPIKeysCreateCmd(app *App) *cobra.Command {
	var role, name string
	cmd := &cobra.Command{
		Use:   "create --name NAME --role viewer|op|admin",
		Short: "Create an API key and print it once",
		Args:  cobra.NoArgs,
		PreRunE: func(*cobra.Command, []string) error {
			if _, err := auth.ParseRole(role); err != nil {
				return fmt.Errorf("--role: %w", err)
			}
			return auth.CheckUsername(name)
		},
		RunE: app.withStore(func(cmd *cobra.Command, _ []string, st *store.Store) error {
			ctx := cmd.Context()
			key, prefix, hash, err := auth.NewAPIKey()
			if err != nil {
				return err
			}
			e := cliEvent("api_key_create", map[string]any{"name": name, "role": role, "prefix": prefix})
			err = st.InTx(ctx, func(q store.Q) error {
				err := q.CreateAPIKey(ctx, store.NewAPIKey{Name: name, Prefix: prefix, Hash: hash, Role: role, CreatedBy: e.Actor})
				if err != nil {
					return err
				}
				return q.RecordEvent(ctx, e)
			})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "created API key %s (role %s):\n%s\n", name, role, key)
			fmt.Fprintln(out, "Store it now: it will not be shown again (podflow keeps only a hash).")
			return nil
		}),
	}
	cmd.Flags().StringVar(&name, "name", "", "a unique name for the key (shown in the audit log as api-key:NAME)")
	cmd.Flags().StringVar(&role, "role", "", "the key's role: viewer, op or admin")
	_ = cmd.MarkFlagRequired("name")
	_ = cmd.MarkFlagRequired("role")
	return cmd
}

func newAPIKeysListCmd(app *App) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List API keys (never the keys themselves)",
		Args:    cobra.NoArgs,
		PreRunE: func(*cobra.Command, []string) error { return checkOutput(output) },
		RunE: app.withStore(func(cmd *cobra.Command, _ []string, st *store.Store) error {
			keys, err := st.APIKeys(cmd.Context())
			if err != nil {
				return err
			}
			l := listing{header: []string{"NAME", "PREFIX", "ROLE", "CREATED_BY", "CREATED", "LAST_USED", "REVOKED"}, records: keys}
			for _, k := range keys {
				l.add(k.Name, k.Prefix, k.Role, k.CreatedBy, fmtTime(&k.CreatedAt), fmtTime(k.LastUsedAt), fmtTime(k.RevokedAt))
			}
			return l.print(cmd.OutOrStdout(), output)
		}),
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func newAPIKeysRevokeCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke an API key; it is refused from the next request on",
		Args:  cobra.ExactArgs(1),
		RunE: app.withStore(func(cmd *cobra.Command, args []string, st *store.Store) error {
			ctx := cmd.Context()
			err := st.InTx(ctx, func(q store.Q) error {
				if err := q.RevokeAPIKey(ctx, args[0]); err != nil {
					return err
				}
				return q.RecordEvent(ctx, cliEvent("api_key_revoke", map[string]any{"name": args[0]}))
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked API key %s\n", args[0])
			return nil
		}),
	}
}

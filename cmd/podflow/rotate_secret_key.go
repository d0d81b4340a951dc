package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/podflow/podflow/internal/secrets"
	"github.com/podflow/podflow/internal/store"
)

func init() {
	extraCommands = append(extraCommands, func(app *App, root, _ *cobra.Command) {
		root.AddCommand(newRotateSecretKeyCmd(app))
	})
}

func newRotateSecretKeyCmd(app *App) *cobra.Command {
	var generate bool
	cmd := &cobra.Command{
		Use:   "rotate-secret-key [--generate]",
		Short: "Re-encrypt every variable and connection under the first configured secret key",
		Long: "Re-encrypt every variable and connection under the first key of PODFLOW_SECRET_KEY (or secret_key / " +
			"secret_key_file), reading them with any of the keys listed after it. Rotation: put the new key first and " +
			"keep the old one after it (\"new:…,old:…\") for every podflow process, run this command, then remove the old key. " +
			"All rows are re-encrypted in one transaction: if one cannot be decrypted, the error names it and nothing changes. " +
			"--generate prints a new random key instead.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if generate {
				k, err := secrets.GenerateKey(keyIDNow())
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), k)
				return nil
			}
			return app.withStore(func(cmd *cobra.Command, _ []string, st *store.Store) error {
				v, err := app.Vault(st)
				if err != nil {
					return err
				}
				r, err := v.RotateKey(cmd.Context())
				if err != nil {
					return &exitError{code: 1, msg: "nothing re-encrypted: " + err.Error()}
				}
				ids := v.Keys.IDs()
				if err := st.RecordEvent(cmd.Context(), cliEvent("secret_key_rotate", map[string]any{"key_id": ids[0],
					"variables": r.Variables, "connections": r.Connections})); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "re-encrypted %d variables and %d connections under key %s (%d rows were already under it)\n",
					r.Variables, r.Connections, ids[0], r.Unchanged)
				if len(ids) > 1 {
					fmt.Fprintf(cmd.OutOrStdout(), "no row needs key %s any more: remove it from the configuration of every podflow process\n",
						strings.Join(ids[1:], ", "))
				}
				return nil
			})(cmd, args)
		},
	}
	cmd.Flags().BoolVar(&generate, "generate", false, "print a new random key (id:base64) and change nothing")
	return cmd
}

// keyIDNow names a generated key by its creation time, so a keyring says
// which key is newer.
func keyIDNow() string { return "k" + time.Now().UTC().Format("20060102150405") }

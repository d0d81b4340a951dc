package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/spf13/cobra"

	"github.com/podflow/podflow/internal/secrets"
	"github.com/podflow/podflow/internal/store"
)

func init() {
	extraCommands = append(extraCommands, func(app *App, root, _ *cobra.Command) {
		vars := &cobra.Command{Use: "variables", Short: "Manage variables ({{ var.value.KEY }}), stored encrypted when a secret key is set"}
		vars.AddCommand(newVariablesSetCmd(app), newVariablesGetCmd(app), newVariablesListCmd(app),
			newVariablesDeleteCmd(app), newVariablesImportCmd(app), newVariablesExportCmd(app))
		root.AddCommand(vars)
	})
}

func newVariablesSetCmd(app *App) *cobra.Command {
	var secret bool
	var description string
	cmd := &cobra.Command{
		Use:   "set KEY VALUE [--secret]",
		Short: "Create or replace a variable; --secret (or a sensitive key such as api_token) encrypts and masks it",
		Args:  cobra.ExactArgs(2),
		RunE: app.withStore(func(cmd *cobra.Command, args []string, st *store.Store) error {
			v, err := app.Vault(st)
			if err != nil {
				return err
			}
			in := secrets.Variable{Key: args[0], Value: args[1], Description: description, Secret: secret}
			if err := v.SetVariable(cmd.Context(), in); err != nil {
				return err
			}
			if err := st.RecordEvent(cmd.Context(), cliEvent("variable_set", map[string]any{"key": in.Key})); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "variable %s set%s\n", args[0], secretNote(v, in))
			return nil
		}),
	}
	cmd.Flags().BoolVar(&secret, "secret", false, "the value is secret: stored encrypted and masked in logs")
	cmd.Flags().StringVar(&description, "description", "", "what the variable is for")
	return cmd
}

func secretNote(v *secrets.Vault, in secrets.Variable) string {
	if in.Secret || v.Masker.IsSensitive(in.Key) {
		return " (secret: encrypted, masked in logs)"
	}
	return ""
}

func newVariablesGetCmd(app *App) *cobra.Command {
	var def string
	var hasDefault bool
	cmd := &cobra.Command{
		Use:   "get KEY [--default VALUE]",
		Short: "Print a variable's value (as a task would see it: PODFLOW_VAR_<KEY> first, then the database)",
		Args:  cobra.ExactArgs(1),
		RunE: app.withStore(func(cmd *cobra.Command, args []string, st *store.Store) error {
			r, err := app.Secrets(st)
			if err != nil {
				return err
			}
			v, found, err := r.Variable(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			hasDefault = cmd.Flags().Changed("default")
			switch {
			case found:
				fmt.Fprintln(cmd.OutOrStdout(), v.Value)
			case hasDefault:
				fmt.Fprintln(cmd.OutOrStdout(), def)
			default:
				return &exitError{code: 1, msg: fmt.Sprintf("variable %s does not exist", args[0])}
			}
			return nil
		}),
	}
	cmd.Flags().StringVar(&def, "default", "", "printed when the variable does not exist")
	return cmd
}

// variableRecord is a variable in `variables list -o json|yaml`: never the
// value of a secret one.
type variableRecord struct {
	Key         string `json:"key"`
	Value       string `json:"value"`
	Secret      bool   `json:"is_secret"`
	Description string `json:"description,omitempty"`
}

func newVariablesListCmd(app *App) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the database's variables (secret values shown as ***)",
		Args:  cobra.NoArgs,
		PreRunE: func(*cobra.Command, []string) error {
			return checkOutput(format)
		},
		RunE: app.withStore(func(cmd *cobra.Command, _ []string, st *store.Store) error {
			v, err := app.Vault(st)
			if err != nil {
				return err
			}
			vars, err := v.Variables(cmd.Context())
			if err != nil {
				return err
			}
			l := &listing{header: []string{"KEY", "VALUE", "SECRET", "DESCRIPTION"}}
			recs := []variableRecord{}
			for _, x := range vars {
				val := x.Value
				if x.Secret {
					val = secrets.Masked
				}
				recs = append(recs, variableRecord{Key: x.Key, Value: val, Secret: x.Secret, Description: x.Description})
				l.add(x.Key, oneLine(val, 60), yesNo(x.Secret), x.Description)
			}
			l.records = recs
			return l.print(cmd.OutOrStdout(), format)
		}),
	}
	addOutputFlag(cmd, &format)
	return cmd
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func oneLine(s string, n int) string {
	r := []rune(s)
	for i, c := range r {
		if c == '\n' || c == '\r' {
			r = append(r[:i:i], []rune("…")...)
			break
		}
	}
	if len(r) > n {
		r = append(r[:n:n], []rune("…")...)
	}
	return string(r)
}

func newVariablesDeleteCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "delete KEY",
		Short: "Delete a variable",
		Args:  cobra.ExactArgs(1),
		RunE: app.withStore(func(cmd *cobra.Command, args []string, st *store.Store) error {
			v, err := app.Vault(st)
			if err != nil {
				return err
			}
			if err := v.DeleteVariable(cmd.Context(), args[0]); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					return &exitError{code: 1, msg: fmt.Sprintf("variable %s does not exist", args[0])}
				}
				return err
			}
			if err := st.RecordEvent(cmd.Context(), cliEvent("variable_delete", map[string]any{"key": args[0]})); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "variable %s deleted\n", args[0])
			return nil
		}),
	}
}

// readVariablesFile reads Airflow's variables file: a JSON object of key →
// value, a non-string value stored as its JSON text. Every problem is
// reported before anything is written.
func readVariablesFile(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%s: want a JSON object of key → value: %w", path, err)
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		if k == "" {
			return nil, fmt.Errorf("%s: a variable has an empty key", path)
		}
		var s string
		if json.Unmarshal(v, &s) == nil {
			out[k] = s
		} else {
			out[k] = string(v)
		}
	}
	return out, nil
}

func newVariablesImportCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "import FILE",
		Short: "Create or replace variables from a JSON file ({\"key\": \"value\", ...}, Airflow's format)",
		Args:  cobra.ExactArgs(1),
		RunE: app.withStore(func(cmd *cobra.Command, args []string, st *store.Store) error {
			vals, err := readVariablesFile(args[0])
			if err != nil {
				return err
			}
			v, err := app.Vault(st)
			if err != nil {
				return err
			}
			keys := make([]string, 0, len(vals))
			for k := range vals {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			in := make([]secrets.Variable, 0, len(keys))
			for _, k := range keys {
				in = append(in, secrets.Variable{Key: k, Value: vals[k]})
			}
			if err := v.SetVariables(cmd.Context(), in); err != nil {
				return fmt.Errorf("%s: nothing imported: %w", args[0], err)
			}
			if err := st.RecordEvent(cmd.Context(), cliEvent("variables_import", map[string]any{"keys": keys})); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d variables imported from %s\n", len(keys), args[0])
			return nil
		}),
	}
}

func newVariablesExportCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "export FILE",
		Short: "Write every variable, decrypted, to a JSON file readable only by you (mode 0600)",
		Args:  cobra.ExactArgs(1),
		RunE: app.withStore(func(cmd *cobra.Command, args []string, st *store.Store) error {
			v, err := app.Vault(st)
			if err != nil {
				return err
			}
			vars, err := v.Variables(cmd.Context())
			if err != nil {
				return err
			}
			out := map[string]string{}
			for _, x := range vars {
				out[x.Key] = x.Value
			}
			b, err := json.MarshalIndent(out, "", "  ")
			if err != nil {
				return err
			}
			if err := os.WriteFile(args[0], append(b, '\n'), 0o600); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d variables exported to %s\n", len(vars), args[0])
			return nil
		}),
	}
}

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/podflow/podflow/internal/secrets"
	"github.com/podflow/podflow/internal/store"
)

func init() {
	extraCommands = append(extraCommands, func(app *App, root, _ *cobra.Command) {
		conns := &cobra.Command{Use: "connections", Short: "Manage connections ({{ conn.ID.host }}, kubernetes_conn_id); passwords and extras stored encrypted"}
		conns.AddCommand(newConnectionsAddCmd(app), newConnectionsGetCmd(app), newConnectionsListCmd(app),
			newConnectionsDeleteCmd(app), newConnectionsImportCmd(app), newConnectionsExportCmd(app))
		root.AddCommand(conns)
	})
}

func newConnectionsAddCmd(app *App) *cobra.Command {
	var uri, port string
	var c secrets.Connection
	cmd := &cobra.Command{
		Use:   "add CONN_ID (--conn-uri URI | --conn-type TYPE [--conn-host …])",
		Short: "Add a connection, from an Airflow URI (postgres://user:pass@host:5432/db) or from its fields",
		Args:  cobra.ExactArgs(1),
		RunE: app.withStore(func(cmd *cobra.Command, args []string, st *store.Store) error {
			in := c
			in.ConnID = args[0]
			switch {
			case uri != "" && (in.Type != "" || in.Host != "" || in.Login != "" || in.Password != "" || in.Schema != "" || port != ""):
				return &exitError{code: 2, msg: "--conn-uri cannot be combined with --conn-type, --conn-host, --conn-login, --conn-password, --conn-schema or --conn-port (--conn-extra and --conn-description can)"}
			case uri != "":
				parsed, err := secrets.ParseURI(args[0], uri)
				if err != nil {
					return &exitError{code: 2, msg: err.Error()}
				}
				parsed.Description = in.Description
				if in.Extra != "" {
					parsed.Extra = in.Extra
				}
				in = *parsed
			case in.Type == "":
				return &exitError{code: 2, msg: "give --conn-uri, or --conn-type with the other --conn-* fields"}
			}
			if port != "" {
				p, err := strconv.Atoi(port)
				if err != nil || p <= 0 || p > 65535 {
					return &exitError{code: 2, msg: fmt.Sprintf("--conn-port %q: want a port number", port)}
				}
				in.Port = p
			}
			if err := in.CheckExtra(); err != nil {
				return &exitError{code: 2, msg: "--conn-extra: " + err.Error()}
			}
			v, err := app.Vault(st)
			if err != nil {
				return err
			}
			if _, found, err := v.Connection(cmd.Context(), in.ConnID); found || err != nil {
				if err == nil {
					err = fmt.Errorf("connection %s already exists (delete it first, or import a file to replace it)", in.ConnID)
				}
				return &exitError{code: 1, msg: err.Error()}
			}
			if err := v.SetConnection(cmd.Context(), in); err != nil {
				return err
			}
			if err := st.RecordEvent(cmd.Context(), cliEvent("connection_set", map[string]any{"connection_id": in.ConnID})); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "connection %s added (%s)\n", in.ConnID, maskedURI(in, v.Masker))
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&uri, "conn-uri", "", "the connection as an Airflow URI, e.g. postgres://user:pass@host:5432/db")
	f.StringVar(&c.Type, "conn-type", "", "connection type, e.g. postgres, http, kubernetes")
	f.StringVar(&c.Host, "conn-host", "", "host")
	f.StringVar(&port, "conn-port", "", "port")
	f.StringVar(&c.Login, "conn-login", "", "login")
	f.StringVar(&c.Password, "conn-password", "", "password (stored encrypted)")
	f.StringVar(&c.Schema, "conn-schema", "", "schema (database)")
	f.StringVar(&c.Extra, "conn-extra", "", "extra fields as a JSON object (stored encrypted)")
	f.StringVar(&c.Description, "conn-description", "", "description")
	return cmd
}

// maskedURI is the connection's URI with the password and the sensitive
// extra fields shown as ***.
func maskedURI(c secrets.Connection, m *secrets.Masker) string {
	if c.Password != "" {
		c.Password = secrets.Masked
	}
	if extra := c.ExtraDejson(); len(extra) > 0 {
		if b, err := json.Marshal(m.MaskValue(extra)); err == nil {
			c.Extra = string(b)
		}
	}
	return c.URI()
}

// connectionRecord is a connection as `connections get/list -o json|yaml`
// print it: the password is *** unless --reveal.
type connectionRecord struct {
	ConnID      string         `json:"conn_id"`
	Type        string         `json:"conn_type"`
	Description string         `json:"description,omitempty"`
	Host        string         `json:"host,omitempty"`
	Schema      string         `json:"schema,omitempty"`
	Login       string         `json:"login,omitempty"`
	Password    string         `json:"password,omitempty"`
	Port        int            `json:"port,omitempty"`
	Extra       map[string]any `json:"extra,omitempty"`
	URI         string         `json:"uri,omitempty"`
}

func toRecord(c secrets.Connection, reveal bool, m *secrets.Masker) connectionRecord {
	r := connectionRecord{ConnID: c.ConnID, Type: c.Type, Description: c.Description, Host: c.Host, Schema: c.Schema,
		Login: c.Login, Password: c.Password, Port: c.Port, Extra: c.ExtraDejson(), URI: c.URI()}
	if len(r.Extra) == 0 {
		r.Extra = nil
	}
	if !reveal {
		if r.Password != "" {
			r.Password = secrets.Masked
		}
		if r.Extra != nil {
			r.Extra = m.MaskValue(r.Extra).(map[string]any)
		}
		r.URI = maskedURI(c, m)
	}
	return r
}

func newConnectionsGetCmd(app *App) *cobra.Command {
	var format string
	var reveal bool
	cmd := &cobra.Command{
		Use:   "get CONN_ID",
		Short: "Show a connection as a task would see it (environment, podflow.yaml, then the database); password *** unless --reveal",
		Args:  cobra.ExactArgs(1),
		PreRunE: func(*cobra.Command, []string) error {
			return checkOutput(format)
		},
		RunE: app.withStore(func(cmd *cobra.Command, args []string, st *store.Store) error {
			r, err := app.Secrets(st)
			if err != nil {
				return err
			}
			c, found, err := r.Connection(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if !found {
				return &exitError{code: 1, msg: fmt.Sprintf("connection %s does not exist", args[0])}
			}
			rec := toRecord(*c, reveal, r.Masker)
			l := &listing{header: []string{"CONN_ID", "TYPE", "URI"}, records: []connectionRecord{rec}}
			l.add(rec.ConnID, rec.Type, rec.URI)
			return l.print(cmd.OutOrStdout(), format)
		}),
	}
	addOutputFlag(cmd, &format)
	cmd.Flags().BoolVar(&reveal, "reveal", false, "show the password and secret extra fields in clear")
	return cmd
}

func newConnectionsListCmd(app *App) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the database's connections (passwords never shown)",
		Args:  cobra.NoArgs,
		PreRunE: func(*cobra.Command, []string) error {
			return checkOutput(format)
		},
		RunE: app.withStore(func(cmd *cobra.Command, _ []string, st *store.Store) error {
			r, err := app.Secrets(st)
			if err != nil {
				return err
			}
			conns, err := r.Vault.Connections(cmd.Context())
			if err != nil {
				return err
			}
			l := &listing{header: []string{"CONN_ID", "TYPE", "HOST", "PORT", "LOGIN", "SCHEMA"}}
			recs := []connectionRecord{}
			for _, c := range conns {
				rec := toRecord(c, false, r.Masker)
				recs = append(recs, rec)
				port := ""
				if c.Port != 0 {
					port = strconv.Itoa(c.Port)
				}
				l.add(c.ConnID, c.Type, c.Host, port, c.Login, c.Schema)
			}
			l.records = recs
			return l.print(cmd.OutOrStdout(), format)
		}),
	}
	addOutputFlag(cmd, &format)
	return cmd
}

func newConnectionsDeleteCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "delete CONN_ID",
		Short: "Delete a connection from the database",
		Args:  cobra.ExactArgs(1),
		RunE: app.withStore(func(cmd *cobra.Command, args []string, st *store.Store) error {
			v, err := app.Vault(st)
			if err != nil {
				return err
			}
			if err := v.DeleteConnection(cmd.Context(), args[0]); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					return &exitError{code: 1, msg: fmt.Sprintf("connection %s does not exist in the database", args[0])}
				}
				return err
			}
			if err := st.RecordEvent(cmd.Context(), cliEvent("connection_delete", map[string]any{"connection_id": args[0]})); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "connection %s deleted\n", args[0])
			return nil
		}),
	}
}

// readConnectionsFile reads Airflow's connections file (JSON or YAML): an
// object of conn_id → URI string or → fields (conn_type, host, port, login,
// password, schema, extra as an object or JSON text).
func readConnectionsFile(path string) ([]secrets.Connection, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var raw map[string]json.RawMessage
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%s: want an object of conn_id → URI or fields: %w", path, err)
	}
	ids := make([]string, 0, len(raw))
	for id := range raw {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var out []secrets.Connection
	for _, id := range ids {
		var uri string
		if json.Unmarshal(raw[id], &uri) == nil {
			c, err := secrets.ParseURI(id, uri)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			out = append(out, *c)
			continue
		}
		var fields map[string]any
		if err := json.Unmarshal(raw[id], &fields); err != nil {
			return nil, fmt.Errorf("%s: connection %s: want a URI or an object of fields", path, id)
		}
		c, err := secrets.ConnectionFromMap(id, fields)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, *c)
	}
	return out, nil
}

func newConnectionsImportCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "import FILE",
		Short: "Create or replace connections from a JSON or YAML file (conn_id → URI or fields); all or nothing",
		Args:  cobra.ExactArgs(1),
		RunE: app.withStore(func(cmd *cobra.Command, args []string, st *store.Store) error {
			conns, err := readConnectionsFile(args[0])
			if err != nil {
				return &exitError{code: 2, msg: err.Error()}
			}
			v, err := app.Vault(st)
			if err != nil {
				return err
			}
			if err := v.SetConnections(cmd.Context(), conns); err != nil {
				return fmt.Errorf("%s: nothing imported: %w", args[0], err)
			}
			ids := make([]string, len(conns))
			for i, c := range conns {
				ids[i] = c.ConnID
			}
			if err := st.RecordEvent(cmd.Context(), cliEvent("connections_import", map[string]any{"connection_ids": ids})); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d connections imported from %s\n", len(conns), args[0])
			return nil
		}),
	}
}

func newConnectionsExportCmd(app *App) *cobra.Command {
	var asURI bool
	cmd := &cobra.Command{
		Use:   "export FILE",
		Short: "Write the database's connections, decrypted, to a JSON file readable only by you (mode 0600)",
		Args:  cobra.ExactArgs(1),
		RunE: app.withStore(func(cmd *cobra.Command, args []string, st *store.Store) error {
			v, err := app.Vault(st)
			if err != nil {
				return err
			}
			conns, err := v.Connections(cmd.Context())
			if err != nil {
				return err
			}
			out := map[string]any{}
			for _, c := range conns {
				if asURI {
					out[c.ConnID] = c.URI()
					continue
				}
				rec := toRecord(c, true, nil)
				rec.URI = ""
				out[c.ConnID] = rec
			}
			b, err := json.MarshalIndent(out, "", "  ")
			if err != nil {
				return err
			}
			if err := os.WriteFile(args[0], append(b, '\n'), 0o600); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d connections exported to %s\n", len(conns), args[0])
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asURI, "uri", false, "write each connection as an Airflow URI")
	return cmd
}

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/podflow/podflow/internal/auth"
	"github.com/podflow/podflow/internal/store"
)

func init() {
	extraCommands = append(extraCommands, func(app *App, root, _ *cobra.Command) {
		users := &cobra.Command{Use: "users", Short: "Manage the webserver's users (auth: builtin)"}
		users.AddCommand(newUsersCreateCmd(app), newUsersListCmd(app), newUsersDeleteCmd(app), newUsersSetRoleCmd(app))
		root.AddCommand(users)
	})
}

func newUsersCreateCmd(app *App) *cobra.Command {
	var role string
	var fromStdin bool
	cmd := &cobra.Command{
		Use:   "create USERNAME --role viewer|op|admin [--password-stdin]",
		Short: "Create a user of the REST API; the password is prompted for, or read from stdin",
		Args:  cobra.ExactArgs(1),
		PreRunE: func(_ *cobra.Command, args []string) error {
			if _, err := auth.ParseRole(role); err != nil {
				return fmt.Errorf("--role: %w", err)
			}
			return auth.CheckUsername(args[0])
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			password, err := readNewPassword(cmd, fromStdin)
			if err != nil {
				return err
			}
			hash, err := auth.HashPassword(password)
			if err != nil {
				return err
			}
			return app.withStore(func(cmd *cobra.Command, args []string, st *store.Store) error {
				ctx := cmd.Context()
				err := st.InTx(ctx, func(q store.Q) error {
					if err := q.CreateUser(ctx, args[0], hash, role); err != nil {
						return err
					}
					return q.RecordEvent(ctx, cliEvent("user_create", map[string]any{"username": args[0], "role": role}))
				})
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "created user %s with role %s\n", args[0], role)
				return nil
			})(cmd, args)
		},
	}
	cmd.Flags().StringVar(&role, "role", "", "the user's role: viewer, op or admin")
	cmd.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from the first line of stdin instead of prompting")
	_ = cmd.MarkFlagRequired("role")
	return cmd
}

// readNewPassword reads the first line of stdin with --password-stdin, else
// prompts twice on the terminal without echo. It checks the length before
// anything touches the database.
func readNewPassword(cmd *cobra.Command, fromStdin bool) (string, error) {
	in := cmd.InOrStdin()
	if fromStdin {
		line, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read password from stdin: %w", err)
		}
		password := strings.TrimRight(line, "\r\n")
		return password, auth.CheckPassword(password)
	}
	f, ok := in.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", errors.New("stdin is not a terminal: pass the password on stdin with --password-stdin")
	}
	prompt := func(label string) (string, error) {
		fmt.Fprint(cmd.ErrOrStderr(), label)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		return string(b), nil
	}
	password, err := prompt("Password: ")
	if err != nil {
		return "", err
	}
	if err := auth.CheckPassword(password); err != nil {
		return "", err
	}
	again, err := prompt("Repeat password: ")
	if err != nil {
		return "", err
	}
	if again != password {
		return "", errors.New("the passwords do not match")
	}
	return password, nil
}

func newUsersListCmd(app *App) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List the users with their roles and last login",
		Args:    cobra.NoArgs,
		PreRunE: func(*cobra.Command, []string) error { return checkOutput(output) },
		RunE: app.withStore(func(cmd *cobra.Command, _ []string, st *store.Store) error {
			users, err := st.Users(cmd.Context())
			if err != nil {
				return err
			}
			l := listing{header: []string{"USERNAME", "ROLE", "CREATED", "LAST_LOGIN"}, records: users}
			for _, u := range users {
				l.add(u.Username, u.Role, fmtTime(&u.CreatedAt), fmtTime(u.LastLoginAt))
			}
			return l.print(cmd.OutOrStdout(), output)
		}),
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func newUsersDeleteCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "delete USERNAME",
		Short: "Delete a user; their tokens stop working at once",
		Args:  cobra.ExactArgs(1),
		RunE: app.withStore(func(cmd *cobra.Command, args []string, st *store.Store) error {
			ctx := cmd.Context()
			err := st.InTx(ctx, func(q store.Q) error {
				if err := q.DeleteUser(ctx, args[0]); err != nil {
					return err
				}
				return q.RecordEvent(ctx, cliEvent("user_delete", map[string]any{"username": args[0]}))
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted user %s\n", args[0])
			return nil
		}),
	}
}

func newUsersSetRoleCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "set-role USERNAME viewer|op|admin",
		Short: "Change a user's role; it applies to their next request",
		Args:  cobra.ExactArgs(2),
		PreRunE: func(_ *cobra.Command, args []string) error {
			_, err := auth.ParseRole(args[1])
			return err
		},
		RunE: app.withStore(func(cmd *cobra.Command, args []string, st *store.Store) error {
			ctx := cmd.Context()
			var old string
			err := st.InTx(ctx, func(q store.Q) error {
				var err error
				if old, err = q.SetUserRole(ctx, args[0], args[1]); err != nil {
					return err
				}
				return q.RecordEvent(ctx, cliEvent("user_set_role",
					map[string]any{"username": args[0], "role": args[1], "old_role": old}))
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "user %s: role %s (was %s)\n", args[0], args[1], old)
			return nil
		}),
	}
}

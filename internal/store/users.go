package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// User is an API user as listings show it (never with the password hash).
type User struct {
	ID          int64      `json:"-"`
	Username    string     `json:"username"`
	Role        string     `json:"role"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	LastLoginAt *time.Time `json:"last_login_at"`
}

// CreateUser adds a user with an already hashed password.
func (q Q) CreateUser(ctx context.Context, username, passwordHash, role string) error {
	_, err := q.db.Exec(ctx, `INSERT INTO users (username, password_hash, role) VALUES ($1, $2, $3)`,
		username, passwordHash, role)
	if isUniqueViolation(err) {
		return fmt.Errorf("user %q: %w", username, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create user %s: %w", username, err)
	}
	return nil
}

// Users lists the users by name.
func (q Q) Users(ctx context.Context) ([]User, error) {
	rows, err := q.db.Query(ctx, `SELECT id, username, role, created_at, updated_at, last_login_at
		FROM users ORDER BY username`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (User, error) {
		var u User
		err := r.Scan(&u.ID, &u.Username, &u.Role, &u.CreatedAt, &u.UpdatedAt, &u.LastLoginAt)
		return u, err
	})
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return users, nil
}

// DeleteUser removes a user; tokens issued to them stop working at once.
func (q Q) DeleteUser(ctx context.Context, username string) error {
	tag, err := q.db.Exec(ctx, `DELETE FROM users WHERE username = $1`, username)
	if err != nil {
		return fmt.Errorf("delete user %s: %w", username, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("user %q: %w", username, ErrNotFound)
	}
	return nil
}

// SetUserRole changes a user's role; it applies to their next request.
// It returns the role they had.
func (q Q) SetUserRole(ctx context.Context, username, role string) (old string, err error) {
	err = q.db.QueryRow(ctx, `UPDATE users u SET role = $2, updated_at = now()
		FROM users prev WHERE u.id = prev.id AND u.username = $1 RETURNING prev.role`, username, role).Scan(&old)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("user %q: %w", username, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("set role of user %s: %w", username, err)
	}
	return old, nil
}

// UserCredentials returns what a login checks: the user's id, password hash
// and role.
func (q Q) UserCredentials(ctx context.Context, username string) (id int64, passwordHash, role string, err error) {
	err = q.db.QueryRow(ctx, `SELECT id, password_hash, role FROM users WHERE username = $1`, username).
		Scan(&id, &passwordHash, &role)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, "", "", fmt.Errorf("user %q: %w", username, ErrNotFound)
	}
	if err != nil {
		return 0, "", "", fmt.Errorf("read user %s: %w", username, err)
	}
	return id, passwordHash, role, nil
}

// UserRole returns the current role of the user with this id and name
// (both must match: a user deleted and created again under the same name is
// another user, and the old one's tokens do not carry over).
func (q Q) UserRole(ctx context.Context, id int64, username string) (string, error) {
	var role string
	err := q.db.QueryRow(ctx, `SELECT role FROM users WHERE id = $1 AND username = $2`, id, username).Scan(&role)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("user %q: %w", username, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("read role of user %s: %w", username, err)
	}
	return role, nil
}

// SetUserLoggedIn records a successful login.
func (q Q) SetUserLoggedIn(ctx context.Context, id int64) error {
	if _, err := q.db.Exec(ctx, `UPDATE users SET last_login_at = now() WHERE id = $1`, id); err != nil {
		return fmt.Errorf("record login: %w", err)
	}
	return nil
}

// SecretOrCreate returns the stored secret called name, storing generated
// first if there is none yet. Several processes starting at once all get the
// one that was stored first.
func (q Q) SecretOrCreate(ctx context.Context, name string, generated []byte) ([]byte, error) {
	if _, err := q.db.Exec(ctx, `INSERT INTO auth_secrets (name, value) VALUES ($1, $2)
		ON CONFLICT (name) DO NOTHING`, name, generated); err != nil {
		return nil, fmt.Errorf("store secret %s: %w", name, err)
	}
	var v []byte
	if err := q.db.QueryRow(ctx, `SELECT value FROM auth_secrets WHERE name = $1`, name).Scan(&v); err != nil {
		return nil, fmt.Errorf("read secret %s: %w", name, err)
	}
	return v, nil
}

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// VariableRow is a variables row as stored: Value is ciphertext when
// Encrypted (internal/secrets encrypts and decrypts; the store never sees a
// key).
type VariableRow struct {
	Key         string
	Value       string
	Description string
	Secret      bool
	Encrypted   bool
}

// ConnectionRow is a connections row as stored: Password and Extra are
// ciphertext when Encrypted.
type ConnectionRow struct {
	ConnID      string
	Type        string
	Description string
	Host        string
	Schema      string
	Login       string
	Password    string
	Port        *int
	Extra       string
	Encrypted   bool
}

// PutVariable creates or replaces a variable.
func (q Q) PutVariable(ctx context.Context, v VariableRow) error {
	_, err := q.db.Exec(ctx, `INSERT INTO variables (key, val, description, is_secret, is_encrypted)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (key) DO UPDATE SET val = $2, description = $3, is_secret = $4, is_encrypted = $5, updated_at = now()`,
		v.Key, v.Value, v.Description, v.Secret, v.Encrypted)
	if err != nil {
		return fmt.Errorf("store variable %s: %w", v.Key, err)
	}
	return nil
}

// Variable reads one variable; ErrNotFound when there is none.
func (q Q) Variable(ctx context.Context, key string) (VariableRow, error) {
	var v VariableRow
	err := q.db.QueryRow(ctx, `SELECT key, val, description, is_secret, is_encrypted FROM variables WHERE key = $1`, key).
		Scan(&v.Key, &v.Value, &v.Description, &v.Secret, &v.Encrypted)
	if errors.Is(err, pgx.ErrNoRows) {
		return v, fmt.Errorf("variable %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return v, fmt.Errorf("read variable %s: %w", key, err)
	}
	return v, nil
}

// Variables lists every variable by key; forUpdate locks the rows (key
// rotation).
func (q Q) Variables(ctx context.Context, forUpdate bool) ([]VariableRow, error) {
	sql := `SELECT key, val, description, is_secret, is_encrypted FROM variables ORDER BY key`
	if forUpdate {
		sql += ` FOR UPDATE`
	}
	rows, err := q.db.Query(ctx, sql)
	if err != nil {
		return nil, fmt.Errorf("list variables: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (VariableRow, error) {
		var v VariableRow
		err := r.Scan(&v.Key, &v.Value, &v.Description, &v.Secret, &v.Encrypted)
		return v, err
	})
}

// DeleteVariable deletes a variable; ErrNotFound when there is none.
func (q Q) DeleteVariable(ctx context.Context, key string) error {
	tag, err := q.db.Exec(ctx, `DELETE FROM variables WHERE key = $1`, key)
	if err != nil {
		return fmt.Errorf("delete variable %s: %w", key, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("variable %s: %w", key, ErrNotFound)
	}
	return nil
}

const connectionColumns = `conn_id, conn_type, description, host, schema, login, password, port, extra, is_encrypted`

func scanConnection(r pgx.Row) (ConnectionRow, error) {
	var c ConnectionRow
	err := r.Scan(&c.ConnID, &c.Type, &c.Description, &c.Host, &c.Schema, &c.Login, &c.Password, &c.Port, &c.Extra, &c.Encrypted)
	return c, err
}

// PutConnection creates or replaces a connection.
func (q Q) PutConnection(ctx context.Context, c ConnectionRow) error {
	_, err := q.db.Exec(ctx, `INSERT INTO connections (`+connectionColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (conn_id) DO UPDATE SET conn_type = $2, description = $3, host = $4, schema = $5,
			login = $6, password = $7, port = $8, extra = $9, is_encrypted = $10, updated_at = now()`,
		c.ConnID, c.Type, c.Description, c.Host, c.Schema, c.Login, c.Password, c.Port, c.Extra, c.Encrypted)
	if err != nil {
		return fmt.Errorf("store connection %s: %w", c.ConnID, err)
	}
	return nil
}

// Connection reads one connection; ErrNotFound when there is none.
func (q Q) Connection(ctx context.Context, id string) (ConnectionRow, error) {
	c, err := scanConnection(q.db.QueryRow(ctx, `SELECT `+connectionColumns+` FROM connections WHERE conn_id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return c, fmt.Errorf("connection %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("read connection %s: %w", id, err)
	}
	return c, nil
}

// Connections lists every connection by id; forUpdate locks the rows (key
// rotation).
func (q Q) Connections(ctx context.Context, forUpdate bool) ([]ConnectionRow, error) {
	sql := `SELECT ` + connectionColumns + ` FROM connections ORDER BY conn_id`
	if forUpdate {
		sql += ` FOR UPDATE`
	}
	rows, err := q.db.Query(ctx, sql)
	if err != nil {
		return nil, fmt.Errorf("list connections: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ConnectionRow, error) { return scanConnection(r) })
}

// DeleteConnection deletes a connection; ErrNotFound when there is none.
func (q Q) DeleteConnection(ctx context.Context, id string) error {
	tag, err := q.db.Exec(ctx, `DELETE FROM connections WHERE conn_id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete connection %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("connection %s: %w", id, ErrNotFound)
	}
	return nil
}

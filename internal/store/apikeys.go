package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// APIKey is an API key as listings show it: never the key or its hash.
type APIKey struct {
	ID         int64      `json:"-"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	Role       string     `json:"role"`
	CreatedBy  string     `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

// NewAPIKey is a key to store: its lookup prefix and the SHA-256 of the key.
type NewAPIKey struct {
	Name      string
	Prefix    string
	Hash      []byte
	Role      string
	CreatedBy string
}

// CreateAPIKey stores a new key's prefix and hash.
func (q Q) CreateAPIKey(ctx context.Context, k NewAPIKey) error {
	_, err := q.db.Exec(ctx, `INSERT INTO api_keys (name, prefix, key_hash, role, created_by)
		VALUES ($1, $2, $3, $4, $5)`, k.Name, k.Prefix, k.Hash, k.Role, k.CreatedBy)
	if isUniqueViolation(err) {
		return fmt.Errorf("API key %q: %w (names stay taken after a revoke)", k.Name, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create API key %s: %w", k.Name, err)
	}
	return nil
}

// APIKeys lists the keys, revoked ones included, by name.
func (q Q) APIKeys(ctx context.Context) ([]APIKey, error) {
	rows, err := q.db.Query(ctx, `SELECT id, name, prefix, role, created_by, created_at, last_used_at, revoked_at
		FROM api_keys ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (APIKey, error) {
		var k APIKey
		err := r.Scan(&k.ID, &k.Name, &k.Prefix, &k.Role, &k.CreatedBy, &k.CreatedAt, &k.LastUsedAt, &k.RevokedAt)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	return keys, nil
}

// RevokeAPIKey revokes a key that is not revoked yet; it is refused from the
// next request on.
func (q Q) RevokeAPIKey(ctx context.Context, name string) error {
	tag, err := q.db.Exec(ctx, `UPDATE api_keys SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL`, name)
	if err != nil {
		return fmt.Errorf("revoke API key %s: %w", name, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("API key %q (not revoked yet): %w", name, ErrNotFound)
	}
	return nil
}

// APIKeyByPrefix returns the unrevoked key with this prefix and its hash.
func (q Q) APIKeyByPrefix(ctx context.Context, prefix string) (APIKey, []byte, error) {
	var k APIKey
	var hash []byte
	err := q.db.QueryRow(ctx, `SELECT id, name, prefix, role, created_by, created_at, last_used_at, revoked_at, key_hash
		FROM api_keys WHERE prefix = $1 AND revoked_at IS NULL`, prefix).
		Scan(&k.ID, &k.Name, &k.Prefix, &k.Role, &k.CreatedBy, &k.CreatedAt, &k.LastUsedAt, &k.RevokedAt, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return APIKey{}, nil, fmt.Errorf("API key: %w", ErrNotFound)
	}
	if err != nil {
		return APIKey{}, nil, fmt.Errorf("read API key: %w", err)
	}
	return k, hash, nil
}

// SetAPIKeyUsed records that a key was used. It writes at most once a
// minute per key, so a busy client does not turn every request into a row
// update.
func (q Q) SetAPIKeyUsed(ctx context.Context, id int64) error {
	_, err := q.db.Exec(ctx, `UPDATE api_keys SET last_used_at = now()
		WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')`, id)
	if err != nil {
		return fmt.Errorf("record API key use: %w", err)
	}
	return nil
}

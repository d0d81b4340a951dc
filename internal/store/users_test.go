package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/podflow/podflow/internal/store"
)

func TestUsersCreateListRoleDelete(t *testing.T) {
	b := setup(t)
	if err := b.st.CreateUser(b.ctx, "alice", "$2a$hash", "op"); err != nil {
		t.Fatal(err)
	}
	if err := b.st.CreateUser(b.ctx, "alice", "$2a$other", "admin"); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second alice: %v, want ErrExists", err)
	}
	if err := b.st.CreateUser(b.ctx, "bob", "$2a$hash", "root"); err == nil {
		t.Fatal("role root was stored")
	}
	id, hash, role, err := b.st.UserCredentials(b.ctx, "alice")
	if err != nil || hash != "$2a$hash" || role != "op" {
		t.Fatalf("credentials: %q %q %v", hash, role, err)
	}
	old, err := b.st.SetUserRole(b.ctx, "alice", "viewer")
	if err != nil || old != "op" {
		t.Fatalf("set role: old %q %v", old, err)
	}
	if role, err := b.st.UserRole(b.ctx, id, "alice"); err != nil || role != "viewer" {
		t.Fatalf("role after change: %q %v", role, err)
	}
	if err := b.st.SetUserLoggedIn(b.ctx, id); err != nil {
		t.Fatal(err)
	}
	users, err := b.st.Users(b.ctx)
	if err != nil || len(users) != 1 || users[0].Username != "alice" || users[0].LastLoginAt == nil {
		t.Fatalf("users: %+v %v", users, err)
	}
	if _, err := b.st.SetUserRole(b.ctx, "nobody", "op"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("set role of nobody: %v", err)
	}
	if err := b.st.DeleteUser(b.ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := b.st.DeleteUser(b.ctx, "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	// Created again under the same name, alice is another user: the old id
	// (carried by old tokens) no longer resolves.
	if err := b.st.CreateUser(b.ctx, "alice", "$2a$hash", "admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.st.UserRole(b.ctx, id, "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("old id of a re-created user: %v", err)
	}
}

func TestSecretOrCreateAgreesUnderConcurrency(t *testing.T) {
	b := setup(t)
	const n = 8
	got := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			v, err := b.st.SecretOrCreate(b.ctx, "jwt_signing_key", []byte(fmt.Sprintf("key-%d", i)))
			if err != nil {
				t.Error(err)
			}
			got[i] = v
		})
	}
	wg.Wait()
	for i := range n {
		if !bytes.Equal(got[i], got[0]) || len(got[0]) == 0 {
			t.Fatalf("process %d got %q, process 0 got %q", i, got[i], got[0])
		}
	}
}

func TestAPIKeysCreateRevokeLookup(t *testing.T) {
	b := setup(t)
	k := store.NewAPIKey{Name: "ci", Prefix: "pfk_0123456789ab", Hash: []byte("h1"), Role: "op", CreatedBy: "cli:root"}
	if err := b.st.CreateAPIKey(b.ctx, k); err != nil {
		t.Fatal(err)
	}
	dup := k
	dup.Prefix = "pfk_ffffffffffff"
	if err := b.st.CreateAPIKey(b.ctx, dup); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second ci: %v", err)
	}
	got, hash, err := b.st.APIKeyByPrefix(b.ctx, "pfk_0123456789ab")
	if err != nil || got.Name != "ci" || got.Role != "op" || string(hash) != "h1" {
		t.Fatalf("by prefix: %+v %q %v", got, hash, err)
	}
	if err := b.st.SetAPIKeyUsed(b.ctx, got.ID); err != nil {
		t.Fatal(err)
	}
	keys, err := b.st.APIKeys(b.ctx)
	if err != nil || len(keys) != 1 || keys[0].LastUsedAt == nil || keys[0].RevokedAt != nil {
		t.Fatalf("keys: %+v %v", keys, err)
	}
	first := *keys[0].LastUsedAt
	if err := b.st.SetAPIKeyUsed(b.ctx, got.ID); err != nil {
		t.Fatal(err)
	}
	keys, _ = b.st.APIKeys(b.ctx)
	if !keys[0].LastUsedAt.Equal(first) {
		t.Fatalf("last_used_at rewritten within a minute: %v then %v", first, keys[0].LastUsedAt)
	}
	if err := b.st.RevokeAPIKey(b.ctx, "ci"); err != nil {
		t.Fatal(err)
	}
	if err := b.st.RevokeAPIKey(b.ctx, "ci"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second revoke: %v", err)
	}
	if _, _, err := b.st.APIKeyByPrefix(b.ctx, "pfk_0123456789ab"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoked key found: %v", err)
	}
	keys, _ = b.st.APIKeys(b.ctx)
	if len(keys) != 1 || keys[0].RevokedAt == nil {
		t.Fatalf("revoked key not listed as revoked: %+v", keys)
	}
}

package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/podflow/podflow/internal/localenv/pgtest"
	"github.com/podflow/podflow/internal/store"
)

// BenchmarkAuthenticate measures what authentication adds to each API
// request: a podflow token (signature check + one indexed SELECT of the
// user's current role) and an API key (SHA-256 + one indexed SELECT).
func BenchmarkAuthenticate(b *testing.B) {
	ctx := context.Background()
	st, err := store.Open(ctx, pgtest.NewMigratedDatabase(b))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	svc, err := New(ctx, st, Config{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	h, _ := HashPassword("correct horse")
	if err := st.CreateUser(ctx, "alice", h, "op"); err != nil {
		b.Fatal(err)
	}
	tok, _, err := svc.Login(ctx, "alice", "correct horse", "127.0.0.1:1")
	if err != nil {
		b.Fatal(err)
	}
	key, prefix, hash, _ := NewAPIKey()
	if err := st.CreateAPIKey(ctx, store.NewAPIKey{Name: "ci", Prefix: prefix, Hash: hash, Role: "op", CreatedBy: "b"}); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, cred string }{{"token", tok}, {"api_key", key}} {
		b.Run(c.name, func(b *testing.B) {
			r := httptest.NewRequest(http.MethodGet, "/api/v1/dags", nil)
			r.Header.Set("Authorization", "Bearer "+c.cred)
			for b.Loop() {
				if _, err := svc.Authenticate(ctx, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

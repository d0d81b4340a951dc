package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/podflow/podflow/internal/config"
	"github.com/podflow/podflow/internal/localenv/pgtest"
	"github.com/podflow/podflow/internal/store"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// testBundle is one test's auth service on its own migrated database, with
// a clock the test moves.
type testBundle struct {
	t     *testing.T
	ctx   context.Context
	st    *store.Store
	clock *fakeClock
	svc   *Service
}

func setup(t *testing.T, cfg Config) *testBundle {
	t.Helper()
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	st, err := store.Open(ctx, pgtest.NewMigratedDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	b := &testBundle{t: t, ctx: ctx, st: st, clock: &fakeClock{t: time.Now()}}
	b.svc = b.service(cfg)
	return b
}

// service starts another service (another webserver) on the same database.
func (b *testBundle) service(cfg Config) *Service {
	b.t.Helper()
	svc, err := newService(b.ctx, b.st, cfg, nil, b.clock.now)
	if err != nil {
		b.t.Fatal(err)
	}
	return svc
}

func (b *testBundle) user(name, password, role string) {
	b.t.Helper()
	h, err := HashPassword(password)
	if err != nil {
		b.t.Fatal(err)
	}
	if err := b.st.CreateUser(b.ctx, name, h, role); err != nil {
		b.t.Fatal(err)
	}
}

func (b *testBundle) login(name, password string) string {
	b.t.Helper()
	tok, _, err := b.svc.Login(b.ctx, name, password, "10.0.0.1:5555")
	if err != nil {
		b.t.Fatalf("login %s: %v", name, err)
	}
	return tok
}

// as authenticates a request carrying the Authorization header value h.
func (b *testBundle) as(svc *Service, h string) (Principal, error) {
	r := httptest.NewRequest(http.MethodGet, "/api/v1/dags", nil)
	if h != "" {
		r.Header.Set("Authorization", h)
	}
	return svc.Authenticate(b.ctx, r)
}

func wantUnauthenticated(t *testing.T, what string, p Principal, err error) {
	t.Helper()
	if !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("%s: got %+v, %v; want ErrUnauthenticated", what, p, err)
	}
}

func TestTokenFollowsRoleChangeAndDeletion(t *testing.T) {
	b := setup(t, Config{})
	b.user("alice", "correct horse", "op")
	tok := b.login("alice", "correct horse")
	p, err := b.as(b.svc, "Bearer "+tok)
	if err != nil || p != (Principal{Kind: KindUser, Name: "alice", Role: RoleOp}) || p.Actor() != "alice" {
		t.Fatalf("alice's token: %+v %v", p, err)
	}
	if users, _ := b.st.Users(b.ctx); len(users) != 1 || users[0].LastLoginAt == nil {
		t.Errorf("last_login_at not recorded: %+v", users)
	}
	if _, err := b.st.SetUserRole(b.ctx, "alice", "viewer"); err != nil {
		t.Fatal(err)
	}
	if p, err := b.as(b.svc, "Bearer "+tok); err != nil || p.Role != RoleViewer {
		t.Fatalf("after set-role viewer the same token gives %+v %v", p, err)
	}
	if err := b.st.DeleteUser(b.ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	p, err = b.as(b.svc, "Bearer "+tok)
	wantUnauthenticated(t, "token of a deleted user", p, err)
	b.user("alice", "another password", "admin")
	p, err = b.as(b.svc, "Bearer "+tok)
	wantUnauthenticated(t, "old token of a re-created user", p, err)
}

func TestLoginRefusesWrongPasswordsAndUnknownUsers(t *testing.T) {
	b := setup(t, Config{})
	b.user("alice", "correct horse", "op")
	if _, _, err := b.svc.Login(b.ctx, "alice", "wrong horse", "10.0.0.1:1"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	start := time.Now()
	_, _, err := b.svc.Login(b.ctx, "mallory", "correct horse", "10.0.0.2:1")
	took := time.Since(start)
	if !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("unknown user: %v", err)
	}
	// An unknown name still costs a bcrypt comparison (tens of ms at the
	// default cost), so timing does not tell which names exist.
	if took < 10*time.Millisecond {
		t.Errorf("login of an unknown user took %v: no bcrypt comparison", took)
	}
	tok, exp, err := b.svc.Login(b.ctx, "alice", "correct horse", "10.0.0.1:1")
	if err != nil || tok == "" {
		t.Fatalf("right password: %v", err)
	}
	if d := exp.Sub(b.clock.now()); d < 59*time.Minute || d > time.Hour {
		t.Errorf("token valid for %v, want the default hour", d)
	}
	if strings.Contains(tok, "correct") {
		t.Error("the token contains the password")
	}
}

func TestLoginRateLimitPerUserAndAddress(t *testing.T) {
	b := setup(t, Config{})
	b.user("alice", "correct horse", "op")
	b.user("bob", "battery staple", "viewer")
	for i := range LoginFailures {
		if _, _, err := b.svc.Login(b.ctx, "alice", "guess", "10.0.0.9:"+string(rune('0'+i))); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	if _, _, err := b.svc.Login(b.ctx, "alice", "correct horse", "10.0.0.1:1"); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("alice after %d failures, from another address, right password: %v", LoginFailures, err)
	}
	if _, _, err := b.svc.Login(b.ctx, "bob", "battery staple", "10.0.0.9:7"); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("bob from the failing address: %v", err)
	}
	if _, _, err := b.svc.Login(b.ctx, "bob", "battery staple", "10.0.0.3:7"); err != nil {
		t.Fatalf("bob from another address: %v", err)
	}
	b.clock.advance(LoginWindow)
	if _, _, err := b.svc.Login(b.ctx, "alice", "correct horse", "10.0.0.9:1"); err != nil {
		t.Fatalf("alice after the window: %v", err)
	}
}

func TestTokenRefusals(t *testing.T) {
	b := setup(t, Config{TokenTTL: 10 * time.Minute})
	b.user("alice", "correct horse", "admin")
	tok := b.login("alice", "correct horse")
	id, _, _, _ := b.st.UserCredentials(b.ctx, "alice")
	claims := func(iss string, exp time.Time) tokenClaims {
		return tokenClaims{Role: "admin", UID: id, RegisteredClaims: jwt.RegisteredClaims{
			Issuer: iss, Subject: "alice", IssuedAt: jwt.NewNumericDate(b.clock.now()), ExpiresAt: jwt.NewNumericDate(exp)}}
	}
	sign := func(m jwt.SigningMethod, c tokenClaims, key any) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	later := b.clock.now().Add(time.Hour)
	parts := strings.Split(tok, ".")
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString(
		[]byte(`{"role":"admin","uid":1,"sub":"bob","iss":"podflow","exp":9999999999}`)) + "." + parts[2]
	for _, c := range []struct{ name, header string }{
		{"no header", ""},
		{"basic auth", "Basic YWxpY2U6eA=="},
		{"empty bearer", "Bearer "},
		{"garbage", "Bearer not-a-token"},
		{"another key", "Bearer " + sign(jwt.SigningMethodHS256, claims("podflow", later), []byte("another key of thirty-two bytes!!"))},
		{"alg none", "Bearer " + sign(jwt.SigningMethodNone, claims("podflow", later), jwt.UnsafeAllowNoneSignatureType)},
		{"HS512 with the right key", "Bearer " + sign(jwt.SigningMethodHS512, claims("podflow", later), b.svc.key)},
		{"other issuer, right key", "Bearer " + sign(jwt.SigningMethodHS256, claims("evil", later), b.svc.key)},
		{"no expiry", "Bearer " + sign(jwt.SigningMethodHS256, claims("podflow", time.Time{}), b.svc.key)},
		{"payload swapped", "Bearer " + forged},
	} {
		p, err := b.as(b.svc, c.header)
		wantUnauthenticated(t, c.name, p, err)
		if err != nil && strings.Contains(err.Error(), string(b.svc.key)) {
			t.Errorf("%s: the error shows the signing key", c.name)
		}
	}
	if p, err := b.as(b.svc, "bearer "+tok); err != nil || p.Name != "alice" {
		t.Fatalf("a valid token (lower-case scheme): %+v %v", p, err)
	}
	b.clock.advance(10*time.Minute + time.Second)
	p, err := b.as(b.svc, "Bearer "+tok)
	wantUnauthenticated(t, "expired token", p, err)
	if err != nil && !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired token: %v does not say it expired", err)
	}
}

func TestSigningKeySharedOrConfigured(t *testing.T) {
	b := setup(t, Config{})
	b.user("alice", "correct horse", "viewer")
	tok := b.login("alice", "correct horse")
	second := b.service(Config{}) // another webserver, same database
	if p, err := b.as(second, "Bearer "+tok); err != nil || p.Name != "alice" {
		t.Fatalf("a second webserver refuses the first's token: %+v %v", p, err)
	}
	configured := b.service(Config{SigningKey: config.Secret(strings.Repeat("k", 40))})
	p, err := b.as(configured, "Bearer "+tok)
	wantUnauthenticated(t, "token under the stored key, checked with a configured one", p, err)
	_, err = newService(b.ctx, b.st, Config{SigningKey: "tooshortsecret"}, nil, b.clock.now)
	if err == nil || strings.Contains(err.Error(), "tooshortsecret") || !strings.Contains(err.Error(), "PODFLOW_AUTH_SIGNING_KEY") {
		t.Fatalf("short configured key: %v", err)
	}
	if _, err := newService(b.ctx, b.st, Config{Mode: "open"}, nil, b.clock.now); err == nil {
		t.Fatal("auth mode open accepted")
	}
}

func TestAPIKeyAuthenticateAndRevoke(t *testing.T) {
	b := setup(t, Config{})
	key, prefix, hash, err := NewAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.st.CreateAPIKey(b.ctx, store.NewAPIKey{Name: "ci", Prefix: prefix, Hash: hash, Role: "op", CreatedBy: "cli:root"}); err != nil {
		t.Fatal(err)
	}
	p, err := b.as(b.svc, "Bearer "+key)
	if err != nil || p != (Principal{Kind: KindAPIKey, Name: "ci", Role: RoleOp}) || p.Actor() != "api-key:ci" {
		t.Fatalf("API key: %+v %v", p, err)
	}
	keys, _ := b.st.APIKeys(b.ctx)
	if len(keys) != 1 || keys[0].LastUsedAt == nil {
		t.Fatalf("last_used_at not recorded: %+v", keys)
	}
	wrong := key[:len(key)-2] + "AA"
	if wrong == key {
		wrong = key[:len(key)-2] + "BB"
	}
	p, err = b.as(b.svc, "Bearer "+wrong)
	wantUnauthenticated(t, "right prefix, wrong secret", p, err)
	p, err = b.as(b.svc, "Bearer pfk_000000000000_"+strings.Repeat("A", 43))
	wantUnauthenticated(t, "unknown prefix", p, err)
	if err := b.st.RevokeAPIKey(b.ctx, "ci"); err != nil {
		t.Fatal(err)
	}
	p, err = b.as(b.svc, "Bearer "+key)
	wantUnauthenticated(t, "revoked key", p, err)
}

func TestModeNoneIsAnonymousAdmin(t *testing.T) {
	t.Parallel()
	svc, err := New(context.Background(), nil, Config{Mode: ModeNone}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "/api/v1/dags/x/dagRuns", nil)
	p, err := svc.Authenticate(context.Background(), r)
	if err != nil || p.Kind != KindAnonymous || p.Role != RoleAdmin || p.Actor() != "anonymous" {
		t.Fatalf("auth none: %+v %v", p, err)
	}
	if _, _, err := svc.Login(context.Background(), "a", "b", "127.0.0.1:1"); !errors.Is(err, ErrLoginDisabled) {
		t.Fatalf("login with auth none: %v", err)
	}
}

// One service serves many requests at once (run with -race).
func TestConcurrentRequests(t *testing.T) {
	b := setup(t, Config{})
	b.user("alice", "correct horse", "op")
	tok := b.login("alice", "correct horse")
	key, prefix, hash, err := NewAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.st.CreateAPIKey(b.ctx, store.NewAPIKey{Name: "ci", Prefix: prefix, Hash: hash, Role: "viewer", CreatedBy: "t"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			cred := tok
			if i%2 == 1 {
				cred = key
			}
			for range 20 {
				if _, err := b.as(b.svc, "Bearer "+cred); err != nil {
					t.Error(err)
					return
				}
			}
			if i%3 == 0 { // 6 of the 16: more than LoginFailures
				_, _, _ = b.svc.Login(b.ctx, "mallory", "guess", "10.9.9.9:1")
			}
		})
	}
	wg.Wait()
	if _, _, err := b.svc.Login(b.ctx, "mallory", "guess", "10.9.9.9:1"); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("after 6 concurrent failures: %v, want ErrRateLimited", err)
	}
}

package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// issuer is an in-process OpenID Connect provider: a discovery document and
// a JWKS with one RSA key, and ID tokens signed with it.
type issuer struct {
	t   *testing.T
	srv *httptest.Server
	key *rsa.PrivateKey
}

func startIssuer(t *testing.T) *issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	is := &issuer{t: t, key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{
			"issuer":                                is.srv.URL,
			"authorization_endpoint":                is.srv.URL + "/authorize",
			"token_endpoint":                        is.srv.URL + "/token",
			"jwks_uri":                              is.srv.URL + "/jwks",
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{"keys": []map[string]string{{
			"kty": "RSA", "use": "sig", "alg": "RS256", "kid": "k1",
			"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes()),
		}}})
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	return is
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// token signs an ID token; edit changes its claims first.
func (is *issuer) token(key *rsa.PrivateKey, edit func(jwt.MapClaims)) string {
	is.t.Helper()
	now := time.Now()
	c := jwt.MapClaims{
		"iss": is.srv.URL, "aud": "podflow-web", "sub": "u-1234", "preferred_username": "carol",
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "groups": []string{"staff", "oncall"},
	}
	if edit != nil {
		edit(c)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	tok.Header["kid"] = "k1"
	s, err := tok.SignedString(key)
	if err != nil {
		is.t.Fatal(err)
	}
	return s
}

func TestOIDCTokens(t *testing.T) {
	is := startIssuer(t)
	b := setup(t, Config{OIDC: &OIDCConfig{
		IssuerURL: is.srv.URL, ClientID: "podflow-web",
		RoleMapping: map[string]string{"oncall": "op", "platform": "admin"},
	}})
	b.clock.t = time.Now()
	p, err := b.as(b.svc, "Bearer "+is.token(is.key, nil))
	if err != nil || p != (Principal{Kind: KindOIDC, Name: "carol", Role: RoleOp}) || p.Actor() != "oidc:carol" {
		t.Fatalf("valid token in group oncall: %+v %v", p, err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		tok  string
	}{
		{"wrong audience", is.token(is.key, func(c jwt.MapClaims) { c["aud"] = "another-app" })},
		{"expired", is.token(is.key, func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Minute).Unix() })},
		{"wrong issuer", is.token(is.key, func(c jwt.MapClaims) { c["iss"] = "https://evil.example.com" })},
		{"unmapped group", is.token(is.key, func(c jwt.MapClaims) { c["groups"] = []string{"sales"} })},
		{"no groups claim", is.token(is.key, func(c jwt.MapClaims) { delete(c, "groups") })},
		{"signed by another key", is.token(other, nil)},
		{"issuer's key, podflow's issuer name", is.token(is.key, func(c jwt.MapClaims) { c["iss"] = "podflow" })},
	} {
		p, err := b.as(b.svc, "Bearer "+c.tok)
		wantUnauthenticated(t, c.name, p, err)
		t.Logf("%s: %v", c.name, err)
	}
	p, err = b.as(b.svc, "Bearer "+is.token(is.key, func(c jwt.MapClaims) { c["groups"] = "platform" }))
	if err != nil || p.Role != RoleAdmin {
		t.Fatalf("group platform as a single string: %+v %v", p, err)
	}

	withDefault := b.service(Config{OIDC: &OIDCConfig{IssuerURL: is.srv.URL, ClientID: "podflow-web",
		RoleClaim: "roles", DefaultRole: "viewer"}})
	p, err = b.as(withDefault, "Bearer "+is.token(is.key, func(c jwt.MapClaims) { delete(c, "preferred_username") }))
	if err != nil || p.Role != RoleViewer || p.Name != "u-1234" {
		t.Fatalf("default role, no user name: %+v %v", p, err)
	}
}

func TestOIDCConfigRefused(t *testing.T) {
	is := startIssuer(t)
	b := setup(t, Config{})
	for _, c := range []struct {
		name string
		cfg  OIDCConfig
		want string
	}{
		{"no client id", OIDCConfig{IssuerURL: is.srv.URL}, "client_id"},
		{"bad mapped role", OIDCConfig{IssuerURL: is.srv.URL, ClientID: "x", RoleMapping: map[string]string{"g": "root"}}, `role_mapping["g"]`},
		{"bad default role", OIDCConfig{IssuerURL: is.srv.URL, ClientID: "x", DefaultRole: "root"}, "default_role"},
		{"issuer mismatch", OIDCConfig{IssuerURL: is.srv.URL + "/", ClientID: "x"}, "discover"},
		{"no provider", OIDCConfig{IssuerURL: "http://127.0.0.1:1", ClientID: "x"}, "discover"},
	} {
		_, err := newService(b.ctx, b.st, Config{OIDC: &c.cfg}, nil, b.clock.now)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error naming %s", c.name, err, c.want)
		}
	}
}

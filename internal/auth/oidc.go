package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// oidcVerifier accepts ID tokens of one OpenID Connect provider and maps a
// claim of theirs to a role.
type oidcVerifier struct {
	issuer   string
	verifier *oidc.IDTokenVerifier
	claim    string
	mapping  map[string]Role
	fallback Role // "" refuses tokens with no mapped value
}

func newOIDCVerifier(ctx context.Context, cfg OIDCConfig, now func() time.Time) (*oidcVerifier, error) {
	if cfg.IssuerURL == "" || cfg.ClientID == "" {
		return nil, errors.New("oidc: issuer_url and client_id are both required")
	}
	v := &oidcVerifier{issuer: cfg.IssuerURL, claim: cfg.RoleClaim, mapping: map[string]Role{}}
	if v.claim == "" {
		v.claim = "groups"
	}
	for value, name := range cfg.RoleMapping {
		r, err := ParseRole(name)
		if err != nil {
			return nil, fmt.Errorf("oidc: role_mapping[%q]: %w", value, err)
		}
		v.mapping[value] = r
	}
	if cfg.DefaultRole != "" {
		r, err := ParseRole(cfg.DefaultRole)
		if err != nil {
			return nil, fmt.Errorf("oidc: default_role: %w", err)
		}
		v.fallback = r
	}
	// Discovery happens once, at start: a wrong issuer URL fails the start
	// instead of every later login. The provider's keys are fetched (and
	// refreshed on rotation) by go-oidc when a token needs them.
	provider, err := oidc.NewProvider(ctx, cfg.IssuerURL)
	if err != nil {
		return nil, fmt.Errorf("oidc: discover %s: %w", cfg.IssuerURL, err)
	}
	v.verifier = provider.Verifier(&oidc.Config{ClientID: cfg.ClientID, Now: now})
	return v, nil
}

func (v *oidcVerifier) authenticate(ctx context.Context, raw string) (Principal, error) {
	tok, err := v.verifier.Verify(ctx, raw)
	var expired *oidc.TokenExpiredError
	switch {
	case errors.As(err, &expired):
		return Principal{}, unauthenticated("OIDC token expired")
	case err != nil:
		return Principal{}, unauthenticated("invalid OIDC token")
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return Principal{}, unauthenticated("invalid OIDC token")
	}
	role, ok := roleFromClaim(claims[v.claim], v.mapping, v.fallback)
	if !ok {
		return Principal{}, unauthenticated(fmt.Sprintf("the OIDC token's %q claim maps to no podflow role", v.claim))
	}
	return Principal{Kind: KindOIDC, Name: oidcName(claims, tok.Subject), Role: role}, nil
}

// roleFromClaim maps a claim value (a string or a list of strings) to the
// highest role any of its values maps to, else to fallback; ok is false
// when that leaves no role.
func roleFromClaim(value any, mapping map[string]Role, fallback Role) (role Role, ok bool) {
	var values []string
	switch v := value.(type) {
	case string:
		values = []string{v}
	case []any:
		for _, x := range v {
			if s, isString := x.(string); isString {
				values = append(values, s)
			}
		}
	case []string:
		values = v
	}
	for _, s := range values {
		if r, mapped := mapping[s]; mapped && r.rank() > role.rank() {
			role = r
		}
	}
	if role == "" {
		role = fallback
	}
	return role, role.Valid()
}

// oidcName is how the audit log names an OIDC user: a readable name when
// the provider gives one, else the (stable but opaque) subject.
func oidcName(claims map[string]any, subject string) string {
	for _, k := range []string{"preferred_username", "email"} {
		if s, ok := claims[k].(string); ok && s != "" {
			return s
		}
	}
	return subject
}

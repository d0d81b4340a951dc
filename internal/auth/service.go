package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/crypto/bcrypt"

	"github.com/podflow/podflow/internal/config"
	"github.com/podflow/podflow/internal/store"
)

// Config is how the webserver authenticates.
type Config struct {
	// Mode is ModeBuiltin (the default when empty) or ModeNone.
	Mode string
	// TokenTTL is how long a token from Login is valid; default 1h.
	TokenTTL time.Duration
	// SigningKey signs the JWTs (HS256), at least 32 bytes. When empty, a
	// random key is generated on the first start and kept in the database,
	// so every webserver shares it.
	SigningKey config.Secret
	// OIDC, when set, also accepts ID tokens from that issuer.
	OIDC *OIDCConfig
}

// OIDCConfig accepts ID tokens of an OpenID Connect provider.
type OIDCConfig struct {
	IssuerURL string
	ClientID  string // the tokens' audience
	// RoleClaim names the claim (a string or a list of strings) mapped to
	// a role; default "groups".
	RoleClaim string
	// RoleMapping maps claim values to role names. A token with several
	// mapped values gets the highest of their roles.
	RoleMapping map[string]string
	// DefaultRole is the role of a token with no mapped value; empty
	// refuses such tokens.
	DefaultRole string
}

// Defaults and limits.
const (
	DefaultTokenTTL = time.Hour
	MinSigningKey   = 32
	// Failed logins allowed per user name and per address in each window.
	LoginFailures = 5
	LoginWindow   = time.Minute
	loginKeysKept = 10000

	tokenIssuer   = "podflow"
	signingSecret = "jwt_signing_key"
	// apiKeyTouchEvery is how often one process records a key's use.
	apiKeyTouchEvery = time.Minute
)

// ErrLoginDisabled is Login's answer with auth none: there is nothing to
// log in to.
var ErrLoginDisabled = errors.New("logins are off: the webserver runs with auth none")

// Service authenticates requests with podflow's users, API keys and
// optionally OIDC; it implements Authenticator.
type Service struct {
	mode    string
	st      *store.Store
	log     hclog.Logger
	ttl     time.Duration
	key     []byte
	now     func() time.Time
	limiter *loginLimiter
	// dummyHash is compared against when the user does not exist, so an
	// unknown name costs the same bcrypt time as a wrong password.
	dummyHash []byte
	oidc      *oidcVerifier

	touchedMu sync.Mutex
	touched   map[int64]time.Time // API key id → when this process last recorded its use
}

var _ Authenticator = (*Service)(nil)

// New checks cfg and prepares the service: it loads or creates the signing
// key and, with OIDC, fetches the provider's discovery document.
func New(ctx context.Context, st *store.Store, cfg Config, logger hclog.Logger) (*Service, error) {
	return newService(ctx, st, cfg, logger, time.Now)
}

func newService(ctx context.Context, st *store.Store, cfg Config, logger hclog.Logger, now func() time.Time) (*Service, error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	s := &Service{mode: cfg.Mode, st: st, log: logger, ttl: cfg.TokenTTL, now: now,
		limiter: newLoginLimiter(LoginFailures, LoginWindow, loginKeysKept, now), touched: map[int64]time.Time{}}
	switch s.mode {
	case ModeNone:
		logger.Warn("authentication is off (auth: none): every request acts as admin")
		return s, nil
	case "", ModeBuiltin:
		s.mode = ModeBuiltin
	default:
		return nil, fmt.Errorf("auth %q: want builtin or none", cfg.Mode)
	}
	if s.ttl <= 0 {
		s.ttl = DefaultTokenTTL
	}
	if err := s.loadSigningKey(ctx, cfg.SigningKey); err != nil {
		return nil, err
	}
	dummy, err := bcrypt.GenerateFromPassword(randomBytes(16), bcrypt.DefaultCost)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	s.dummyHash = dummy
	if cfg.OIDC != nil {
		if s.oidc, err = newOIDCVerifier(ctx, *cfg.OIDC, now); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// ConfigFrom takes the auth settings of podflow.yaml and the environment.
func ConfigFrom(c *config.Config) Config {
	out := Config{Mode: c.Auth, TokenTTL: c.AuthTokenTTL, SigningKey: c.AuthSigningKey}
	if o := c.OIDC; o != nil {
		out.OIDC = &OIDCConfig{IssuerURL: o.IssuerURL, ClientID: o.ClientID, RoleClaim: o.RoleClaim,
			RoleMapping: o.RoleMapping, DefaultRole: o.DefaultRole}
	}
	return out
}

func (s *Service) loadSigningKey(ctx context.Context, configured config.Secret) error {
	if configured != "" {
		if len(configured) < MinSigningKey {
			// The key itself is never part of the message.
			return fmt.Errorf("auth_signing_key (or PODFLOW_AUTH_SIGNING_KEY) is %d bytes: want at least %d random bytes",
				len(configured), MinSigningKey)
		}
		s.key = []byte(configured.Reveal())
		return nil
	}
	key, err := s.st.SecretOrCreate(ctx, signingSecret, randomBytes(32))
	if err != nil {
		return fmt.Errorf("auth: signing key: %w", err)
	}
	s.key = key
	return nil
}

// Mode is the service's auth mode (ModeBuiltin or ModeNone).
func (s *Service) Mode() string { return s.mode }

// Login checks a user's password and returns a signed token.
func (s *Service) Login(ctx context.Context, username, password, remote string) (string, time.Time, error) {
	if s.mode == ModeNone {
		return "", time.Time{}, ErrLoginDisabled
	}
	keys := []string{"user:" + clip(username), "addr:" + clip(remoteHost(remote))}
	if !s.limiter.Allowed(keys...) {
		return "", time.Time{}, ErrRateLimited
	}
	id, hash, role, err := s.st.UserCredentials(ctx, username)
	switch {
	case errors.Is(err, store.ErrNotFound):
		_ = bcrypt.CompareHashAndPassword(s.dummyHash, []byte(password))
		s.limiter.Fail(keys...)
		return "", time.Time{}, ErrBadCredentials
	case err != nil:
		return "", time.Time{}, fmt.Errorf("login: %w", err)
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		s.limiter.Fail(keys...)
		return "", time.Time{}, ErrBadCredentials
	}
	s.limiter.Forget(keys[0])
	if err := s.st.SetUserLoggedIn(ctx, id); err != nil {
		return "", time.Time{}, fmt.Errorf("login: %w", err)
	}
	return s.issue(id, username, Role(role))
}

// tokenClaims are a podflow token's claims. UID ties the token to one user
// row: a user deleted and created again under the same name does not
// inherit the old tokens.
type tokenClaims struct {
	Role string `json:"role"`
	UID  int64  `json:"uid"`
	jwt.RegisteredClaims
}

func (s *Service) issue(uid int64, username string, role Role) (string, time.Time, error) {
	now := s.now()
	exp := now.Add(s.ttl)
	claims := tokenClaims{Role: string(role), UID: uid, RegisteredClaims: jwt.RegisteredClaims{
		Issuer:    tokenIssuer,
		Subject:   username,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(exp),
		ID:        fmt.Sprintf("%x", randomBytes(16)),
	}}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign token: %w", err)
	}
	return signed, exp.Truncate(time.Second), nil
}

// Authenticate returns who makes r: a user with a podflow token, an API
// key, or an OIDC user.
func (s *Service) Authenticate(ctx context.Context, r *http.Request) (Principal, error) {
	if s.mode == ModeNone {
		return Principal{Kind: KindAnonymous, Name: "anonymous", Role: RoleAdmin}, nil
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return Principal{}, unauthenticated("no Authorization header")
	}
	scheme, cred, _ := strings.Cut(h, " ")
	cred = strings.TrimSpace(cred)
	if !strings.EqualFold(scheme, "Bearer") || cred == "" {
		return Principal{}, unauthenticated("the Authorization header is not Bearer <token>")
	}
	if IsAPIKey(cred) {
		return s.authenticateAPIKey(ctx, cred)
	}
	var peek jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(cred, &peek); err != nil {
		return Principal{}, unauthenticated("the bearer credential is neither a token nor an API key")
	}
	switch {
	case peek.Issuer == tokenIssuer:
		return s.authenticateToken(ctx, cred)
	case s.oidc != nil && peek.Issuer == s.oidc.issuer:
		return s.oidc.authenticate(ctx, cred)
	}
	return Principal{}, unauthenticated("token from an unknown issuer")
}

func (s *Service) authenticateToken(ctx context.Context, token string) (Principal, error) {
	var c tokenClaims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return s.key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(tokenIssuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(s.now))
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return Principal{}, unauthenticated("token expired: log in again")
	case err != nil:
		return Principal{}, unauthenticated("invalid token")
	case c.Subject == "":
		return Principal{}, unauthenticated("invalid token")
	}
	// The role comes from the database, not the token, so a role change or
	// a deletion applies to the very next request.
	role, err := s.st.UserRole(ctx, c.UID, c.Subject)
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, unauthenticated("the token's user no longer exists")
	}
	if err != nil {
		return Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	return Principal{Kind: KindUser, Name: c.Subject, Role: Role(role)}, nil
}

func (s *Service) authenticateAPIKey(ctx context.Context, key string) (Principal, error) {
	const refused = "unknown or revoked API key"
	prefix, err := apiKeyPrefix(key)
	if err != nil {
		return Principal{}, unauthenticated(refused)
	}
	k, hash, err := s.st.APIKeyByPrefix(ctx, prefix)
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, unauthenticated(refused)
	}
	if err != nil {
		return Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	if !apiKeyMatches(key, hash) {
		return Principal{}, unauthenticated(refused)
	}
	s.recordKeyUse(ctx, k.ID)
	return Principal{Kind: KindAPIKey, Name: k.Name, Role: Role(k.Role)}, nil
}

// recordKeyUse updates last_used_at at most once a minute per key and
// process; a failure to record it does not refuse the request.
func (s *Service) recordKeyUse(ctx context.Context, id int64) {
	now := s.now()
	s.touchedMu.Lock()
	last, ok := s.touched[id]
	if ok && now.Sub(last) < apiKeyTouchEvery {
		s.touchedMu.Unlock()
		return
	}
	s.touched[id] = now
	s.touchedMu.Unlock()
	if err := s.st.SetAPIKeyUsed(ctx, id); err != nil {
		s.log.Warn("could not record API key use", "error", err)
	}
}

func unauthenticated(reason string) error { return fmt.Errorf("%s: %w", reason, ErrUnauthenticated) }

// remoteHost is the address part of host:port, so one client counts as one
// whatever its source port.
func remoteHost(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return h
	}
	return remote
}

// clip bounds a rate-limit key, so memory stays bounded however long the
// names a caller sends.
func clip(s string) string {
	const max = 256
	if len(s) > max {
		return s[:max]
	}
	return s
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return b
}

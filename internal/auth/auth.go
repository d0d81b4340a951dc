// Package auth authenticates API callers and says what their role allows.
//
// This file is the contract the API server builds on: roles, the principal
// a request is made by, and the errors an authenticator returns. The
// implementation (users with bcrypt passwords, signed JWTs, API keys, OIDC,
// rate limits) lives beside it.
package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Role is what a principal may do. Each role includes the ones below it.
type Role string

// The roles, least privileged first.
const (
	RoleViewer Role = "viewer" // read everything except secrets
	RoleOp     Role = "op"     // plus trigger, clear, mark, pause
	RoleAdmin  Role = "admin"  // plus users, API keys, pools
)

// Roles lists the roles, least privileged first.
var Roles = []Role{RoleViewer, RoleOp, RoleAdmin}

func (r Role) rank() int {
	for i, x := range Roles {
		if x == r {
			return i + 1
		}
	}
	return 0
}

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool { return r.rank() > 0 }

// Allows reports whether a principal with role r may do what needs role need.
func (r Role) Allows(need Role) bool { return r.rank() > 0 && r.rank() >= need.rank() }

// ParseRole checks a role name given by a user.
func ParseRole(s string) (Role, error) {
	if r := Role(s); r.Valid() {
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q: want viewer, op or admin", s)
}

// Principal kinds.
const (
	KindUser      = "user"
	KindAPIKey    = "api_key"
	KindOIDC      = "oidc"
	KindAnonymous = "anonymous" // only with auth: none, on loopback
)

// Principal is who makes a request.
type Principal struct {
	Kind string
	Name string // user name, API key name or OIDC subject
	Role Role
}

// Actor is the principal as the audit log names it.
func (p Principal) Actor() string {
	switch p.Kind {
	case KindUser:
		return p.Name
	case KindAPIKey:
		return "api-key:" + p.Name
	case KindOIDC:
		return "oidc:" + p.Name
	default:
		return "anonymous"
	}
}

// Errors an Authenticator returns. The API maps them to 401 and 429.
var (
	ErrUnauthenticated = errors.New("authentication required: send Authorization: Bearer <token or API key>")
	ErrBadCredentials  = errors.New("wrong user name or password")
	ErrRateLimited     = errors.New("too many failed logins; try again later")
)

// Authenticator is what the API server needs from this package.
type Authenticator interface {
	// Authenticate returns the request's principal, or ErrUnauthenticated
	// (wrapped with the reason) when it has no valid credentials.
	Authenticate(ctx context.Context, r *http.Request) (Principal, error)
	// Login checks a user name and password and returns a signed,
	// short-lived token. remote is the caller's address, for rate limits.
	Login(ctx context.Context, username, password, remote string) (token string, expires time.Time, err error)
}

package api

import (
	"errors"
	"net/http"
	"net/url"
)

// SessionCookie holds a browser's token (the web UI's login sets it,
// HttpOnly and SameSite=Strict). A request without an Authorization
// header authenticates with it.
const SessionCookie = "podflow_session"

// CSRFHeader must accompany a cookie-authenticated request that changes
// something, with the value CSRFValue. A page of another origin cannot
// send a custom header without a CORS preflight, which this server never
// grants, so its forged form posts and fetches are refused.
const (
	CSRFHeader = "X-Requested-With"
	CSRFValue  = "podflow"
)

// errCrossSite is the answer to a cookie-authenticated change without the
// header, or from another origin.
var errCrossSite = errors.New("a change made with the session cookie needs the header " + CSRFHeader + ": " + CSRFValue +
	" and, when the browser sends Origin, this server's origin (cross-site request refused)")

// withSession turns a session cookie into the bearer credential the
// authenticator reads, after the CSRF checks. A request with an
// Authorization header is left as it is.
func withSession(r *http.Request) (*http.Request, error) {
	if r.Header.Get("Authorization") != "" {
		return r, nil
	}
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return r, nil
	}
	if !safeMethod(r.Method) {
		if r.Header.Get(CSRFHeader) != CSRFValue || !sameOrigin(r) {
			return nil, errCrossSite
		}
	}
	r2 := r.Clone(r.Context())
	r2.Header.Set("Authorization", "Bearer "+c.Value)
	return r2, nil
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// sameOrigin says whether the request's Origin (when sent) names this host.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true // same-origin GET/HEAD-like requests may omit it; the header check still holds
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

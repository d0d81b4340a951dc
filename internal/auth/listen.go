package auth

import (
	"fmt"
	"net"
	"strings"
)

// Modes of the auth setting.
const (
	ModeNone    = "none"    // every request is an anonymous admin; loopback only
	ModeBuiltin = "builtin" // users, API keys and optionally OIDC
)

// CheckListen refuses auth mode none unless the server listens on a
// loopback address only: without authentication anyone who can reach the
// port is an admin who can run pods with the cluster's secrets.
func CheckListen(mode, addr string) error {
	if mode != ModeNone {
		return nil
	}
	if isLoopback(addr) {
		return nil
	}
	return fmt.Errorf("auth is none (`auth: none` in podflow.yaml or PODFLOW_AUTH=none) but the webserver "+
		"listens on %q, which is not a loopback address: anyone who reaches it would be an admin. "+
		"Listen on 127.0.0.1 or localhost, or set auth to builtin and create a user with `podflow users create`", addr)
}

// isLoopback reports whether addr (host:port, or a bare host) binds to
// loopback only. An empty host (":8080") and 0.0.0.0 or :: bind to every
// interface, so they are not loopback.
func isLoopback(addr string) bool {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

package main

import (
	"encoding/json"
	"os"
	"os/user"
	"strconv"

	"github.com/podflow/podflow/internal/store"
)

// cliEvent is an audit-log entry for a change made with this CLI: the
// actor is "cli:" + the OS user, the source "cli@" + the host name. The CLI
// talks to the database directly, so the OS user is the best name it has.
func cliEvent(event string, extra map[string]any) store.EventLog {
	e := store.EventLog{Actor: "cli:" + osUser(), Source: "cli@" + hostname(), Event: event}
	if len(extra) > 0 {
		if b, err := json.Marshal(extra); err == nil {
			e.Extra = b
		}
	}
	return e
}

func osUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "uid" + strconv.Itoa(os.Getuid())
}

func hostname() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "unknown"
}

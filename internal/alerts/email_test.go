package alerts_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/podflow/podflow/internal/alerts"
)

// Email over implicit TLS works; STARTTLS required from a server that does
// not offer it fails without sending (no downgrade), and so does a password
// over a plain connection.
func TestEmailTLSModes(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m := alerts.Message{ID: "0b5f1e56-0000-4000-8000-000000000001", Event: "failure", DagID: "d", RunID: "r", TaskID: "t",
		TryNumber: 1, State: "failed", Error: "exit code 1", Title: "Task t of d failed", Text: "Task t of d failed\nexit code 1",
		Link: "http://ui/dags/d/runs/r"}

	tlsSrv := newSMTPServerMode(t, "tls")
	e := tlsSrv.sender()
	e.TLS = "tls"
	res, err := e.Send(ctx, m)
	if err != nil || res.StatusCode != 250 {
		t.Fatalf("implicit TLS: %+v %v", res, err)
	}
	got := tlsSrv.messages()
	if len(got) != 1 || !got[0].tls || got[0].delivery != m.ID {
		t.Fatalf("implicit TLS: received %+v", got)
	}
	if text, html := got[0].parts(); !strings.Contains(text, "exit code 1") || !strings.Contains(html, "<h2>Task t of d failed</h2>") {
		t.Errorf("parts %q / %q", text, html)
	}

	plain := newSMTPServerMode(t, "none")
	e = plain.sender() // tls: starttls
	if _, err := e.Send(ctx, m); err == nil || !strings.Contains(err.Error(), "does not offer STARTTLS") {
		t.Errorf("STARTTLS from a server without it: %v", err)
	}
	e.TLS = "none"
	if _, err := e.Send(ctx, m); err == nil || !strings.Contains(err.Error(), "SMTP auth") {
		t.Errorf("a password over a plain connection: %v", err) // the server offers no AUTH without TLS
	}
	e.Username = ""
	if _, err := e.Send(ctx, m); err != nil {
		t.Errorf("no TLS, no auth: %v", err)
	}
	if n := len(plain.messages()); n != 1 {
		t.Errorf("the plain server received %d messages, want only the unauthenticated one", n)
	}
}

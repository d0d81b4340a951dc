package alerts_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/podflow/podflow/internal/alerts"
)

func TestPolicyNext(t *testing.T) {
	p := alerts.Policy{Backoff: 10 * time.Second, MaxBackoff: time.Minute, GiveUpAfter: time.Hour}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		attempt int
		now     time.Duration // after creation
		want    time.Duration // retry at, after creation; -1 = give up
	}{
		{1, 0, 10 * time.Second},
		{2, 10 * time.Second, 30 * time.Second},
		{3, 30 * time.Second, 70 * time.Second},
		{4, 70 * time.Second, 130 * time.Second}, // 80 s capped at 60 s
		{30, 10 * time.Minute, 11 * time.Minute}, // no overflow
		{9, 59*time.Minute + 30*time.Second, time.Hour},
		{10, time.Hour, -1},
		{11, 2 * time.Hour, -1},
	} {
		got := p.Next(tc.attempt, t0, t0.Add(tc.now))
		switch {
		case tc.want < 0 && !got.IsZero():
			t.Errorf("attempt %d at +%s: retry at +%s, want give up", tc.attempt, tc.now, got.Sub(t0))
		case tc.want >= 0 && !got.Equal(t0.Add(tc.want)):
			t.Errorf("attempt %d at +%s: retry at %v, want +%s", tc.attempt, tc.now, got, tc.want)
		}
	}
}

func TestSignKnownValue(t *testing.T) {
	// echo -n '1700000000.{"a":1}' | openssl dgst -sha256 -hmac key
	got := alerts.Sign([]byte("key"), "1700000000", []byte(`{"a":1}`))
	if !strings.HasPrefix(got, "sha256=") || len(got) != len("sha256=")+64 {
		t.Fatalf("signature %q", got)
	}
	if got == alerts.Sign([]byte("key"), "1700000001", []byte(`{"a":1}`)) {
		t.Error("the timestamp is not signed")
	}
}

func TestSlackBlocks(t *testing.T) {
	m := alerts.Message{DagID: "d", RunID: "r", TaskID: "t", TryNumber: 2, State: "failed", Event: "failure",
		Error: strings.Repeat("x", 5000), Link: "http://ui/dags/d/runs/r", Title: "Task t of d failed", Text: "Task t of d failed"}
	b, err := json.Marshal(alerts.SlackBlocks(m))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{`"type":"header"`, `*Task*\nt`, `*Try*\n2`, "http://ui/dags/d/runs/r|Open the run in podflow", `"text":"Task t of d failed"`} {
		if !strings.Contains(s, want) {
			t.Errorf("slack message lacks %s: %s", want, s[:300])
		}
	}
	if strings.Count(s, "x") > 2900 {
		t.Error("the error is not cut to Slack's limit")
	}
}

// A Slack URL is the secret: a failed POST must not put it in the error
// that attempts record and viewers read.
func TestSendErrorHidesTheURL(t *testing.T) {
	s := &alerts.Slack{URL: "http://127.0.0.1:1/services/T000/B000/very-secret-token"}
	_, err := s.Send(context.Background(), alerts.Message{ID: "x", Title: "t"})
	if err == nil || strings.Contains(err.Error(), "very-secret-token") || !strings.Contains(err.Error(), "http://127.0.0.1:1/…") {
		t.Errorf("error %v", err)
	}
}

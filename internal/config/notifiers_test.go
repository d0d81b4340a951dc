package config

import (
	"strings"
	"testing"
	"time"
)

func TestNotifierSettings(t *testing.T) {
	c, err := loadWith(t, `notifiers:
  ops: {type: webhook, url: "https://h.example/x", secret_env: HOOK_SECRET, headers: {X-Team: data}}
  chat: {type: slack, url_env: SLACK_URL, timeout: 3s}
  mail: {type: email, host: smtp.example.com, from: a@example.com, to: [b@example.com], tls: tls}
alerts: {base_url: "https://podflow.example.com/", backoff: 1s}
`, map[string]string{"PODFLOW_ALERTS_GIVE_UP_AFTER": "2h"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.NotifierNames(), ","); got != "chat,mail,ops" {
		t.Errorf("names %s", got)
	}
	a := c.Alerts
	if a.BaseURL != "https://podflow.example.com" || a.Backoff != time.Second || a.GiveUpAfter != 2*time.Hour ||
		a.MaxBackoff != DefaultAlertMaxBackoff || a.Timeout != DefaultAlertTimeout {
		t.Errorf("alerts %+v", a)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"notifiers: {ops: {type: webhook, url: x, secret: inline}}", "field secret not found"},
		{"notifiers: {ops: {type: slack, url: https://hooks.slack.com/T/B/x}}", "notifiers.ops: slack: the incoming-webhook URL is a secret"},
		{"notifiers: {ops: {type: pager}}", `notifiers.ops: type "pager": want webhook, slack or email`},
		{"notifiers: {ops: {url: x}}", "notifiers.ops: type: required"},
		{"notifiers: {m: {type: email, host: h, from: a@b, to: [c@d], tls: ssl}}", `notifiers.m: email: tls "ssl"`},
		{"notifiers: {m: {type: email, host: h}}", "notifiers.m: email: host, from and to are required"},
		{"alerts: {backoff: soon}", `alerts.backoff "soon"`},
	} {
		if _, err := loadWith(t, tc.yaml, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.yaml, err, tc.want)
		}
	}
	if _, err := NotifierSecret("notifier ops secret", "UNSET_VAR", "", func(string) string { return "" }); err == nil ||
		!strings.Contains(err.Error(), "notifier ops secret: environment variable UNSET_VAR is not set") {
		t.Errorf("unset secret variable: %v", err)
	}
}
